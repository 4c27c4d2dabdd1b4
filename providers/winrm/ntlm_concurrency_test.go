package winrm_test

import (
	"sync"
	"testing"

	"github.com/gsd-deploy/gsd/providers/winrm"
)

// NTLM authenticates a connection, so its legs must share one. Many
// commands at once on one transport, with kept-alive connections dropped
// now and then so new ones must authenticate while others are busy, must
// never see a 401: a handshake's answer must not travel on a connection
// another exchange took from the pool meanwhile.
func TestNTLMHandshakesUnderConcurrency(t *testing.T) {
	h := startHost(t, hostOptions{runner: echoRunner{}})
	tr, err := winrm.New(h.config(defaultScheme), winrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16*15)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				if g == 0 && i%3 == 0 {
					tr.CloseIdleConnections()
				}
				if _, err := run(t, tr, "hello"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
