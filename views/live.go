package views

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/apply"
	"github.com/gsd-deploy/gsd/plan"
	"github.com/pterm/pterm"
)

// LiveApply shows an apply on a terminal: the plain lines scroll by as a
// log, and below them a live area keeps one line per host with its phase
// (a progress bar with bytes and rate while uploading, a spinner while
// its change or health gate runs) under the rollout's position. The area
// is redrawn a few times a second and removed at the end, leaving the log.
type LiveApply struct {
	mu    sync.Mutex
	plain *ApplyHooks
	log   bytes.Buffer // plain lines not yet printed above the area
	out   io.Writer
	area  *pterm.AreaPrinter
	drawn bool // the area is on the screen
	now   func() time.Time

	order    []string
	hosts    map[string]*liveHost
	position string // the rollout's position: "service.api: batch 2 of 3 (web2, web3)"
	frame    int

	stop chan struct{}
	done chan struct{}
}

// liveHost is what the area shows of one host.
type liveHost struct {
	phase string
	// detail is what the host's agent said last in this phase.
	detail   string
	active   bool // a spinner turns
	failed   bool
	finished bool
	since    time.Time
	upload   *liveUpload
}

type liveUpload struct {
	name        string
	sent, total int64
	started     time.Time
}

var _ apply.Hooks = (*LiveApply)(nil)

// liveRedraw is how often the area is drawn again.
const liveRedraw = 100 * time.Millisecond

// NewLiveApply starts the live view on out, which must be a terminal.
// Close ends it.
func NewLiveApply(out io.Writer) *LiveApply {
	v := newLive(out, time.Now)
	v.area = v.newArea()
	go v.loop()
	return v
}

// newLive is the view's state without its drawing loop.
func newLive(out io.Writer, now func() time.Time) *LiveApply {
	v := &LiveApply{out: out, now: now, hosts: map[string]*liveHost{}, stop: make(chan struct{}), done: make(chan struct{})}
	v.plain = NewApplyHooks(&v.log, true).WithClock(now)
	return v
}

func (v *LiveApply) newArea() *pterm.AreaPrinter {
	a := pterm.DefaultArea.WithRemoveWhenDone()
	a.SetWriter(v.out)
	return a
}

func (v *LiveApply) loop() {
	defer close(v.done)
	t := time.NewTicker(liveRedraw)
	defer t.Stop()
	for {
		select {
		case <-v.stop:
			return
		case <-t.C:
			v.mu.Lock()
			v.frame++
			v.draw()
			v.mu.Unlock()
		}
	}
}

// draw prints the log lines gathered since the last draw above the
// area, then the area. Called with mu held.
func (v *LiveApply) draw() {
	if v.log.Len() > 0 {
		v.clearArea()
		v.out.Write(v.log.Bytes())
		v.log.Reset()
		v.area = v.newArea()
	}
	v.area.Update(v.render())
	v.drawn = true
}

// clearArea removes the area from the screen. pterm's area has nothing to
// clear (and panics if asked) until it was first drawn: log lines may come
// before the first frame, and a run may end before it.
func (v *LiveApply) clearArea() {
	if v.drawn {
		v.area.Clear()
		v.drawn = false
	}
}

// Close removes the area and prints what is left of the log.
func (v *LiveApply) Close() {
	close(v.stop)
	<-v.done
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clearArea()
	v.out.Write(v.log.Bytes())
	v.log.Reset()
}

func (v *LiveApply) render() string {
	var b strings.Builder
	if v.position != "" {
		b.WriteString(pterm.Bold.Sprint(v.position) + "\n")
	}
	width := 0
	for _, h := range v.order {
		width = max(width, len(h))
	}
	spinner := pterm.DefaultSpinner.Sequence
	for _, name := range v.order {
		h := v.hosts[name]
		icon := pterm.Gray("·")
		switch {
		case h.failed:
			icon = pterm.Red("✗")
		case h.finished:
			icon = pterm.Green("✓")
		case h.active:
			icon = pterm.Cyan(strings.TrimSpace(spinner[v.frame%len(spinner)]))
		}
		fmt.Fprintf(&b, "%s host.%-*s  %s", icon, width, name, h.phase)
		if u := h.upload; u != nil {
			b.WriteString("  " + progressBar(u.sent, u.total, 24) + "  " + humanBytes(u.sent) + " / " + humanBytes(u.total))
			b.WriteString(rateText(u.sent, v.now().Sub(u.started)))
		} else if h.active && !h.since.IsZero() {
			fmt.Fprintf(&b, "  %s", v.now().Sub(h.since).Truncate(time.Second))
		}
		if h.detail != "" && h.upload == nil {
			b.WriteString("  " + pterm.Gray(h.detail))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// progressBar draws done of total in width cells.
func progressBar(done, total int64, width int) string {
	filled := width
	if total > 0 {
		filled = int(min(done, total) * int64(width) / total)
	}
	return pterm.Cyan(strings.Repeat("█", filled)) + pterm.Gray(strings.Repeat("░", width-filled))
}

// host returns the host's line, adding it the first time; lines are in
// host name order.
func (v *LiveApply) host(name string) *liveHost {
	h, ok := v.hosts[name]
	if !ok {
		h = &liveHost{phase: "waiting"}
		v.hosts[name] = h
		v.order = append(v.order, name)
		slices.Sort(v.order)
	}
	return h
}

// update applies one event: its plain line to the log, and set to the
// host's line.
func (v *LiveApply) update(host string, plain func(*ApplyHooks), set func(*liveHost)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	plain(v.plain)
	if host != "" && set != nil {
		set(v.host(host))
	}
}

func (v *LiveApply) phase(host, phase string, active bool) func(*liveHost) {
	return func(h *liveHost) {
		h.phase, h.active, h.upload, h.since, h.detail = phase, active, nil, v.now(), ""
	}
}

func (v *LiveApply) HostStart(host string) {
	v.update(host, func(*ApplyHooks) {}, v.phase(host, "connecting, locking", true))
}

func (v *LiveApply) Uploading(host string, u plan.Upload) {
	v.update(host, func(p *ApplyHooks) { p.Uploading(host, u) }, func(h *liveHost) {
		h.phase, h.active = "uploading "+u.Name, true
		h.upload = &liveUpload{name: u.Name, total: u.Size, started: v.now()}
	})
}

func (v *LiveApply) UploadProgress(host string, u plan.Upload, sent int64) {
	v.update(host, func(*ApplyHooks) {}, func(h *liveHost) {
		if h.upload != nil {
			h.upload.sent = sent
		}
	})
}

func (v *LiveApply) Uploaded(host string, u plan.Upload) {
	v.update(host, func(p *ApplyHooks) { p.Uploaded(host, u) }, v.phase(host, "uploaded "+u.Name, true))
}

func (v *LiveApply) Staged(host string, s *plan.Step, release string) {
	v.update(host, func(p *ApplyHooks) { p.Staged(host, s, release) }, v.phase(host, s.Address+": staged, waiting for its batch", false))
}

func (v *LiveApply) Message(host, message string) {
	v.update(host, func(p *ApplyHooks) { p.Message(host, message) }, func(h *liveHost) { h.detail = message })
}

func (v *LiveApply) Batch(r *plan.Rollout, n int, hosts []string) {
	v.update("", func(p *ApplyHooks) { p.Batch(r, n, hosts) }, nil)
	v.mu.Lock()
	v.position = fmt.Sprintf("%s: batch %d of %d (%s)", r.Address, n, len(r.Batches), strings.Join(hosts, ", "))
	v.mu.Unlock()
}

func (v *LiveApply) StepStart(host string, s *plan.Step) {
	v.update(host, func(p *ApplyHooks) { p.StepStart(host, s) }, v.phase(host, s.Address+": "+string(s.Action), true))
}

func (v *LiveApply) StepDone(host string, s *plan.Step) {
	v.update(host, func(p *ApplyHooks) { p.StepDone(host, s) }, v.phase(host, s.Address+": "+string(s.Action)+" complete", false))
}

func (v *LiveApply) StepFailed(host string, s *plan.Step, err error) {
	v.update(host, func(p *ApplyHooks) { p.StepFailed(host, s, err) }, func(h *liveHost) {
		v.phase(host, s.Address+": "+string(s.Action)+" failed", false)(h)
		h.failed = true
	})
}

func (v *LiveApply) Health(host string, s *plan.Step) {
	v.update(host, func(p *ApplyHooks) { p.Health(host, s) }, v.phase(host, s.Address+": health check", true))
}

func (v *LiveApply) Healthy(host string, s *plan.Step, res *protocol.HealthResult) {
	v.update(host, func(p *ApplyHooks) { p.Healthy(host, s, res) }, v.phase(host, s.Address+": healthy", false))
}

func (v *LiveApply) Unhealthy(host string, s *plan.Step, res *protocol.HealthResult, err error) {
	v.update(host, func(p *ApplyHooks) { p.Unhealthy(host, s, res, err) }, func(h *liveHost) {
		v.phase(host, s.Address+": unhealthy", false)(h)
		h.failed = true
	})
}

func (v *LiveApply) RollingBack(host string, s *plan.Step) {
	v.update(host, func(p *ApplyHooks) { p.RollingBack(host, s) }, v.phase(host, s.Address+": rolling back", true))
}

func (v *LiveApply) RolledBack(host string, s *plan.Step, err error) {
	v.update(host, func(p *ApplyHooks) { p.RolledBack(host, s, err) }, v.phase(host, s.Address+": rolled back", false))
}

func (v *LiveApply) Paused(r *plan.Rollout, hosts []string) {
	v.update("", func(p *ApplyHooks) { p.Paused(r, hosts) }, nil)
}

func (v *LiveApply) HostDone(host string, err error) {
	v.update(host, func(p *ApplyHooks) { p.HostDone(host, err) }, func(h *liveHost) {
		h.active, h.upload = false, nil
		if err != nil {
			h.failed = true
			return
		}
		h.finished = true
		h.phase = "done"
	})
}
