package agent

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sort"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/servicehost"
	"github.com/gsd-deploy/gsd/agent/state"
)

func (a *Agent) opFacts(_ context.Context, req protocol.Request, _ progressFunc) (any, error) {
	var args protocol.FactsArgs
	if err := protocol.DecodeArgs(req, &args); err != nil {
		return nil, failf(protocol.CodeBadRequest, "%v", err)
	}
	if len(args.Accounts) > 100 {
		return nil, failf(protocol.CodeBadRequest, "facts: %d accounts to check; at most 100", len(args.Accounts))
	}
	f, err := a.Facts()
	if err != nil {
		return nil, err
	}
	for _, acct := range args.Accounts {
		f.Accounts = append(f.Accounts, a.accountFacts(acct))
	}
	return f, nil
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
	if err := a.secureRoot(); err != nil {
		f.Host.Gaps = map[string]string{"root_acl": err.Error()}
	} else if a.rootGap != "" {
		f.Host.Gaps = map[string]string{"root_acl": a.rootGap}
	}
	f.Host.Repairs = a.rootRepairs
	if f.Lock, err = state.ReadHolder(a.layout); err != nil {
		// A damaged lock must not hide the rest of the host's facts.
		f.Lock, f.LockError = nil, err.Error()
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
	f.Artifacts = a.lastingArtifacts(st, f.Artifacts)
	for _, name := range st.ServiceNames() {
		sf := a.serviceFacts(name, st.Services[name])
		var unreadable string
		if sf.LogonRight, unreadable = logonRightFact(st, st.Services[name].Spec.Account.Name); unreadable != "" {
			addUnreadable(&sf, "logon_right", unreadable)
		}
		f.Services = append(f.Services, sf)
	}
	for _, kind := range slices.Sorted(maps.Keys(st.Resources)) {
		h, ok := a.handlers[kind]
		if !ok {
			for _, name := range st.ResourceNames(kind) {
				f.Resources = append(f.Resources, protocol.ResourceFacts{Kind: kind, Name: name,
					Unreadable: map[string]string{"kind": fmt.Sprintf("this agent (%s) has no handler for it", Version)}})
			}
			continue
		}
		f.Resources = append(f.Resources, handlerKind{kind: kind, h: h}.facts(st)...)
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
		sf.Config, sf.Status, sf.Recovery = &cfg, &status, obs.Recovery
		// Registry values may be secrets: names and hashes only.
		sf.EnvSHA256 = protocol.HashEnv(obs.Env)
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
		if _, gap := sf.Unreadable["env"]; gap && rec.EnvSHA256 != nil {
			sf.EnvSHA256 = rec.EnvSHA256
			setSource(&sf, "env")
		}
	}
	if spec.Mode == protocol.ModeWrapped {
		sf.EnvSHA256 = spec.EnvSHA256
		if sf.Sources == nil {
			sf.Sources = map[string]string{}
		}
		sf.Sources["env"] = protocol.SourceWrapper
		sf.Wrapper = servicehost.ReadStatus(a.layout.WrapperStatus(name))
	}
	if s.Password != nil {
		// Salt and salted hash only, so gsd can compare the configured
		// password at plan time without sending it.
		pw := *s.Password
		sf.Password = &pw
	}
	sf.Current, sf.Previous = s.Current(), s.Previous()
	sf.Releases = s.Releases
	if bin := a.runningBinary(spec.Mode, sf.Config, s); bin != "" {
		if sum, err := a.hashes.Sum(bin); err == nil {
			sf.BinarySHA256 = sum
		} else {
			addUnreadable(&sf, "binary_sha256", err.Error())
		}
	}
	files := s.Spec.Files
	if len(files) == 0 {
		// Managed files recorded by an agent before releases kept them.
		for n := range s.Files {
			files = append(files, protocol.FileSpec{Name: n})
		}
		sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	}
	for _, f := range files {
		ff := protocol.FileFacts{Name: f.Name, Path: f.Path}
		if sum, err := a.hashes.Sum(a.filePath(name, f)); err == nil {
			ff.SHA256 = sum
		} else {
			ff.Missing = true
		}
		sf.Files = append(sf.Files, ff)
	}
	return sf
}

// lastingArtifacts leaves out artifacts that the next activation may prune
// (unused and staged more than half of artifactPruneGrace ago): a client
// that saw one listed would skip staging it and then find it gone. Such an
// artifact is simply staged again, which renews it.
func (a *Agent) lastingArtifacts(st *state.State, all []string) []string {
	keep, err := a.neededArtifacts(st)
	if err != nil {
		keep = st.ReferencedArtifacts()
	}
	out := all[:0]
	for _, sha := range all {
		if staged, err := a.store.StagedAt(sha); keep[sha] || (err == nil && time.Since(staged) < artifactPruneGrace/2) {
			out = append(out, sha)
		}
	}
	return out
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
