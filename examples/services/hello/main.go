// Command hello is the example web service the gsd examples deploy. It
// answers /healthz and /, re-reads its optional config file on reload, and
// on Windows runs under the service control manager.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

type server struct {
	listen     string
	configPath string
	config     atomic.Value // string: the config file's contents
	http       *http.Server
}

func main() {
	s := &server{}
	flag.StringVar(&s.listen, "listen", "127.0.0.1:8080", "address to serve on")
	flag.StringVar(&s.configPath, "config", "", "optional config file, re-read on reload")
	asService := flag.Bool("service", false, "run under the Windows service manager without trying to detect it")
	flag.Parse()
	if err := s.reload(); err != nil {
		log.Fatal(err)
	}
	if err := run(s, *asService); err != nil {
		log.Fatal(err)
	}
}

func (s *server) reload() error {
	if s.configPath == "" {
		s.config.Store("")
		return nil
	}
	b, err := os.ReadFile(s.configPath)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	s.config.Store(string(b))
	return nil
}

// start listens and serves in the background; it fails at once if the
// address is taken, so the service manager sees the failure.
func (s *server) start() error {
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", version)
	})
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Print(err)
		}
	}()
	return nil
}

func (s *server) stop(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = s.http.Shutdown(ctx)
}
