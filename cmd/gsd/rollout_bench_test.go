package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkRollout measures rolling upgrades of the hello service on six
// sandbox hosts (make bench-rollout), each figure beside its reference
// from the same run:
//
//   - the unavailability window of one host while gsd apply upgrades it:
//     /healthz polled every 10 ms over the sandbox bridge, the longest run
//     of failed polls (first failed poll to the next answered one), beside
//     the agent's stop and start of the service, timed from apply's own
//     event lines ("stop", "start", "replace complete") as they arrive.
//     Target: window ≤ stop + start + 200 ms.
//   - the rollout of a new release to six hosts with max_parallel = 2
//     (three batches) beside the same change to two hosts (one batch),
//     each from its "batch 1" line to its last host's "healthy" line.
//     Target: six hosts ≤ 3.3 × one batch.
func BenchmarkRollout(b *testing.B) {
	l := startRolloutLab(b, 6)
	dir := l.caseDir(b)
	hostList := func(n int) string {
		var names []string
		for i := range n {
			names = append(names, fmt.Sprintf("%q", l.hosts[i].Name))
		}
		return "[" + strings.Join(names, ", ") + "]"
	}
	const winPort = 8190
	versions := map[string]string{"w1": "1.0.0", "r2": "1.0.0", "r6": "1.0.0"}
	write := func() {
		writeHCL(b, dir,
			l.helloHCL("w1", versions["w1"], hostList(1), "native", winPort, nil, "")+
				l.helloHCL("r2", versions["r2"], hostList(2), "native", 8191, nil, "    max_parallel = 2")+
				l.helloHCL("r6", versions["r6"], hostList(6), "native", 8192, nil, "    max_parallel = 2"))
	}
	write()
	l.gsdRun(b, dir, 0, "apply", "-auto-approve", "-parallelism", "6")

	// apply runs gsd apply and returns its timed lines; it must succeed.
	apply := func() []timedLine {
		wait := l.streamGsd(b, dir, nil, "apply", "-auto-approve", "-parallelism", "6")
		lines, code := wait()
		if code != 0 {
			b.Fatalf("apply: exit %d\n%s", code, joinLines(lines))
		}
		return lines
	}
	at := func(lines []timedLine, want string, last bool) time.Time {
		var t time.Time
		for _, ln := range lines {
			if ln.text == want {
				t = ln.at
				if !last {
					break
				}
			}
		}
		if t.IsZero() {
			b.Fatalf("apply printed no %q:\n%s", want, joinLines(lines))
		}
		return t
	}
	// rolloutTime is from a service's first batch line to its last host's
	// healthy line.
	rolloutTime := func(lines []timedLine, svc string, hosts int) time.Duration {
		var first, last time.Time
		healthy := 0
		for _, ln := range lines {
			if first.IsZero() && strings.HasPrefix(ln.text, "service."+svc+": batch 1 of ") {
				first = ln.at
			}
			if strings.HasSuffix(ln.text, ": service."+svc+": healthy") {
				last = ln.at
				healthy++
			}
		}
		if first.IsZero() || healthy != hosts {
			b.Fatalf("rollout of %s: %d healthy hosts, want %d:\n%s", svc, healthy, hosts, joinLines(lines))
		}
		return last.Sub(first)
	}

	var window, stop, start, one, six time.Duration
	k := 1
	for b.Loop() {
		k++
		v := fmt.Sprintf("1.0.%d", k)

		// (i) The unavailability window of one host.
		versions["w1"] = v
		write()
		p := startPoller(fmt.Sprintf("http://%s:%d/healthz", l.hosts[0].Address, winPort), 10*time.Millisecond)
		lines := apply()
		w := p.finish()
		host := "host." + l.hosts[0].Name + ": service.w1: "
		tStop, tStart, tDone := at(lines, host+"stop", false), at(lines, host+"start", false), at(lines, host+"replace complete", false)
		window += w
		stop += tStart.Sub(tStop)
		start += tDone.Sub(tStart)
		b.Logf("window %v; stop %v, start %v (%d polls)", w, tStart.Sub(tStop), tDone.Sub(tStart), p.polls)

		// (ii) One batch of two hosts, then three batches over six.
		versions["r2"] = v
		write()
		one += rolloutTime(apply(), "r2", 2)
		versions["r6"] = v
		write()
		six += rolloutTime(apply(), "r6", 6)
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(ms(window), "window-ms")
	b.ReportMetric(ms(stop), "stop-ms")
	b.ReportMetric(ms(start), "start-ms")
	b.ReportMetric(float64(window)/float64(stop+start), "window/(stop+start)")
	b.ReportMetric(ms(window-stop-start), "window-minus-stop+start-ms")
	b.ReportMetric(ms(one), "ms/1batch-2hosts")
	b.ReportMetric(ms(six), "ms/3batches-6hosts")
	b.ReportMetric(float64(six)/float64(one), "ratio_6/2")
}

// poller asks a URL at a fixed interval and keeps the longest run of
// failed answers (anything but 200, or no answer).
type poller struct {
	stopc   chan struct{}
	done    sync.WaitGroup
	polls   int
	longest time.Duration
}

func startPoller(url string, every time.Duration) *poller {
	p := &poller{stopc: make(chan struct{})}
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		var failedSince time.Time
		for {
			select {
			case <-p.stopc:
				if !failedSince.IsZero() {
					p.longest = max(p.longest, time.Since(failedSince))
				}
				return
			case <-tick.C:
			}
			t := time.Now()
			ok := false
			if resp, err := c.Get(url); err == nil {
				ok = resp.StatusCode == http.StatusOK
				resp.Body.Close()
			}
			p.polls++
			switch {
			case !ok && failedSince.IsZero():
				failedSince = t
			case ok && !failedSince.IsZero():
				p.longest = max(p.longest, t.Sub(failedSince))
				failedSince = time.Time{}
			}
		}
	}()
	return p
}

// finish stops polling and returns the longest failed run.
func (p *poller) finish() time.Duration {
	close(p.stopc)
	p.done.Wait()
	return p.longest
}
