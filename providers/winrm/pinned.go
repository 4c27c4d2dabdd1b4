package winrm

import (
	"io"
	"net/http"
	"sync"
)

// NTLM authenticates a TCP connection, not a request: its three legs must
// travel on one connection. go-ntlmssp's Negotiator sends each leg as its
// own round trip on the transport it wraps, so with one shared
// http.Transport another goroutine of the same session (the Send loop,
// the Receive loop, a second command) can take the connection back from
// the idle pool between the challenge and the answer. The answer then
// arrives on a connection the host never challenged, and the host says
// 401. It happened under load, rarely, against the sandbox; Windows
// behaves the same.
//
// pinnedPool hands each request a transport of its own, holding at most
// one connection, for the whole exchange including every NTLM leg, and
// takes it back only when the response body is closed. A connection is
// therefore only ever used by one exchange at a time, and stays
// authenticated for the next request that checks it out.
type pinnedPool struct {
	mu      sync.Mutex
	idle    []http.RoundTripper
	newLane func() (http.RoundTripper, *http.Transport)
	lanes   map[http.RoundTripper]*http.Transport
	maxIdle int
}

func newPinnedPool(maxIdle int, newLane func() (http.RoundTripper, *http.Transport)) *pinnedPool {
	return &pinnedPool{newLane: newLane, lanes: map[http.RoundTripper]*http.Transport{}, maxIdle: maxIdle}
}

func (p *pinnedPool) get() http.RoundTripper {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.idle); n > 0 {
		rt := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return rt
	}
	rt, tr := p.newLane()
	p.lanes[rt] = tr
	return rt
}

func (p *pinnedPool) put(rt http.RoundTripper) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) < p.maxIdle {
		p.idle = append(p.idle, rt)
		return
	}
	p.lanes[rt].CloseIdleConnections()
	delete(p.lanes, rt)
}

// RoundTrip runs the whole exchange on one lane.
func (p *pinnedPool) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := p.get()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		p.put(rt)
		return nil, err
	}
	resp.Body = &release{ReadCloser: resp.Body, done: func() { p.put(rt) }}
	return resp, nil
}

// CloseIdleConnections closes the connections of lanes nobody holds;
// http.Client calls it.
func (p *pinnedPool) CloseIdleConnections() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rt := range p.idle {
		p.lanes[rt].CloseIdleConnections()
	}
}

// release gives the lane back once, when the body is closed.
type release struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (r *release) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.done)
	return err
}
