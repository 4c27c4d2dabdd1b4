package winrm_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers/winrm"
)

// With auth = "ntlm", a host (or anyone in the path) that offers only
// Basic must never receive the password as Basic.
func TestNTLMNeverFallsBackToBasic(t *testing.T) {
	var sawBasic atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Authorization"), "Basic ") {
			sawBasic.Store(true)
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="WSMAN"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	p, _ := strconv.Atoi(port)
	cfg := &config.Host{Name: "web1", Address: host, TransportName: "winrm", WinRM: &config.WinRM{
		HTTPS: false, AllowUnencrypted: true, Port: p, Auth: "ntlm", User: "deploy",
		Password: config.Text{Value: "Sup3rSecret", Sensitive: true}, Timeout: 5 * time.Second,
	}}
	tr, err := winrm.New(cfg, winrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = run(t, tr, "")
	if err == nil {
		t.Fatal("a Basic-only host was accepted with auth = ntlm")
	}
	if sawBasic.Load() {
		t.Fatal("the password was sent as Basic")
	}
	if strings.Contains(err.Error(), "Sup3rSecret") || !strings.Contains(err.Error(), "does not offer NTLM (it offers Basic)") {
		t.Errorf("error: %v", err)
	}
}

// A host that sends the response headers and then falls silent must fail
// with a timeout, not hold gsd forever.
func TestStallAfterHeadersTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("<s:Envelope"))
		w.(http.Flusher).Flush()
		<-release
	}))
	defer srv.Close()
	defer close(release)
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	p, _ := strconv.Atoi(port)
	cfg := &config.Host{Name: "web1", Address: host, TransportName: "winrm", WinRM: &config.WinRM{
		HTTPS: false, AllowUnencrypted: true, Port: p, Auth: "basic", User: "deploy",
		Password: config.Text{Value: "pw", Sensitive: true}, Timeout: time.Second,
	}}
	tr, err := winrm.New(cfg, winrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := run(t, tr, ""); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a stalled host was taken as answering")
		}
		t.Logf("%v", err)
	case <-time.After(time.Minute):
		t.Fatal("a host stalled after its headers held the transport")
	}
}
