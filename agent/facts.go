package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/gsd-deploy/gsd/agent/artifacts"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
)

func (a *Agent) opFacts(_ context.Context, req protocol.Request, _ progressFunc) (any, error) {
	if err := protocol.DecodeArgs(req, &struct{}{}); err != nil {
		return nil, failf(protocol.CodeBadRequest, "%v", err)
	}
	return a.Facts()
}

// Facts gathers the actual state of every managed service on this host.
func (a *Agent) Facts() (*protocol.Facts, error) {
	st, err := a.loadState()
	if err != nil {
		return nil, err
	}
	f := &protocol.Facts{
		Host: protocol.HostFacts{
			Machine:      hostname(),
			OS:           runtime.GOOS,
			AgentVersion: Version,
			Root:         a.layout.Root,
			KeepReleases: st.KeepReleases,
		},
		Services: make([]protocol.ServiceFacts, 0, len(st.Services)),
	}
	if f.Lock, err = state.ReadHolder(a.layout); err != nil {
		return nil, err
	}
	j, err := state.LoadJournal(a.layout)
	if err != nil {
		return nil, err
	}
	if j != nil {
		f.Journal = j.Summary()
	}
	if f.Artifacts, err = a.store.List(); err != nil {
		return nil, err
	}
	for _, name := range st.ServiceNames() {
		f.Services = append(f.Services, a.serviceFacts(name, st.Services[name]))
	}
	return f, nil
}

func (a *Agent) serviceFacts(name string, s *state.Service) protocol.ServiceFacts {
	spec := s.Spec.Redacted()
	sf := protocol.ServiceFacts{Name: name, Mode: spec.Mode, LastApplied: &spec}
	if spec.Mode == "" {
		sf.LastApplied = nil // only files are managed so far
	}
	obs, err := a.opts.Services.Query(name)
	if err != nil {
		sf.Unreadable = map[string]string{"scm": err.Error()}
	} else if obs.Installed {
		sf.Installed = true
		cfg, status := obs.Config, obs.Status
		sf.Config, sf.Status, sf.Recovery, sf.Env = &cfg, &status, obs.Recovery, obs.Env
		sf.Unreadable = obs.Unreadable
		for k, v := range obs.Sources {
			if sf.Sources == nil {
				sf.Sources = map[string]string{}
			}
			sf.Sources[k] = v
		}
	}
	rec := s.Recorded
	if rec != nil && sf.Installed {
		if _, gap := sf.Unreadable["recovery"]; gap && rec.Recovery != nil {
			sf.Recovery = rec.Recovery
			setSource(&sf, "recovery")
		}
		if _, gap := sf.Unreadable["delayed_start"]; gap && rec.DelayedStart != nil {
			sf.Config.DelayedStart = *rec.DelayedStart
			if sf.Config.DelayedStart && sf.Config.StartType == protocol.StartAuto {
				sf.Config.StartType = protocol.StartDelayed
			}
			setSource(&sf, "delayed_start")
		}
		if _, gap := sf.Unreadable["env"]; gap && rec.Env != nil {
			sf.Env = rec.Env
			setSource(&sf, "env")
		}
	}
	if spec.Mode == protocol.ModeWrapped {
		sf.Env = spec.Env
		if sf.Sources == nil {
			sf.Sources = map[string]string{}
		}
		sf.Sources["env"] = protocol.SourceWrapper
		sf.Wrapper = readWrapperStatus(a.layout.WrapperStatus(name))
	}
	sf.Current, sf.Previous = s.Current(), s.Previous()
	sf.Releases = s.Releases
	if bin := a.runningBinary(spec.Mode, sf.Config, s); bin != "" {
		if sum, err := a.hashes.sum(bin); err == nil {
			sf.BinarySHA256 = sum
		} else {
			addUnreadable(&sf, "binary_sha256", err.Error())
		}
	}
	names := make([]string, 0, len(s.Files))
	for n := range s.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ff := protocol.FileFacts{Name: n}
		if sum, err := a.hashes.sum(filepath.Join(a.layout.FilesDir(name), filepath.FromSlash(n))); err == nil {
			ff.SHA256 = sum
		} else {
			ff.Missing = true
		}
		sf.Files = append(sf.Files, ff)
	}
	return sf
}

// runningBinary is the file whose hash tells whether the intended release
// runs: the SCM's image for native services, the wrapped program otherwise.
func (a *Agent) runningBinary(mode string, cfg *protocol.SCMConfig, s *state.Service) string {
	if mode == protocol.ModeWrapped {
		if cur := s.Current(); cur != nil {
			return cur.Path
		}
		return ""
	}
	if cfg != nil {
		return cfg.BinaryPath
	}
	return ""
}

func setSource(sf *protocol.ServiceFacts, setting string) {
	if sf.Sources == nil {
		sf.Sources = map[string]string{}
	}
	sf.Sources[setting] = protocol.SourceAgentState
}

func addUnreadable(sf *protocol.ServiceFacts, setting, reason string) {
	if sf.Unreadable == nil {
		sf.Unreadable = map[string]string{}
	}
	sf.Unreadable[setting] = reason
}

func readWrapperStatus(path string) *protocol.WrapperStatus {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var ws protocol.WrapperStatus
	if json.Unmarshal(b, &ws) != nil {
		return nil
	}
	return &ws
}

// hashCache avoids rehashing unchanged binaries on every facts call; a file
// is rehashed whenever its size or modification time changes.
type hashCache struct {
	mu sync.Mutex
	m  map[string]hashEntry
}

type hashEntry struct {
	size int64
	mod  time.Time
	sum  string
}

func (c *hashCache) sum(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	e, ok := c.m[path]
	c.mu.Unlock()
	if ok && e.size == fi.Size() && e.mod.Equal(fi.ModTime()) {
		return e.sum, nil
	}
	sum, err := artifacts.FileSHA256(path)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]hashEntry{}
	}
	c.m[path] = hashEntry{size: fi.Size(), mod: fi.ModTime(), sum: sum}
	c.mu.Unlock()
	return sum, nil
}
