// Command hello is the example web service the gsd examples deploy. It
// answers /healthz, / and /config (its config file as last read),
// re-reads its optional config file on reload, and
// on Windows runs under the service control manager.
//
// For trying out health-gated rollouts it can fail its health check on
// purpose: with -unhealthy (or HELLO_UNHEALTHY=1 in its environment), or
// with -unhealthy-if-exists PATH while that file exists ("{version}" in
// PATH stands for the binary's version, so one release can be made to
// fail on one machine), /healthz answers 503 and the service says so on
// stderr ("healthz: failing on purpose"); everything else is unchanged.
// -start-delay D waits D before listening (reporting START_PENDING to the
// service manager meanwhile), to mimic a service that is slow to start.
// -foreground serves in the foreground at once, without trying the
// Windows service dispatcher first (for mode = "wrapped").
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
	"strings"
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
	// unhealthy makes /healthz fail; unhealthyIf does while that file
	// exists.
	unhealthy   bool
	unhealthyIf string
	startDelay  time.Duration
	foreground  bool
}

func main() {
	s := &server{}
	flag.StringVar(&s.listen, "listen", "127.0.0.1:8080", "address to serve on")
	flag.StringVar(&s.configPath, "config", "", "optional config file, re-read on reload")
	asService := flag.Bool("service", false, "run under the Windows service manager without trying to detect it")
	flag.BoolVar(&s.unhealthy, "unhealthy", os.Getenv("HELLO_UNHEALTHY") == "1", "fail /healthz on purpose (also HELLO_UNHEALTHY=1)")
	flag.StringVar(&s.unhealthyIf, "unhealthy-if-exists", "", "fail /healthz on purpose while this file exists; {version} stands for the version")
	flag.DurationVar(&s.startDelay, "start-delay", 0, "wait this long before listening")
	flag.BoolVar(&s.foreground, "foreground", false, "serve in the foreground without trying the Windows service dispatcher")
	flag.Parse()
	s.unhealthyIf = strings.ReplaceAll(s.unhealthyIf, "{version}", version)
	if s.unhealthy {
		log.Print("healthz: failing on purpose (-unhealthy)")
	}
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
		if why := s.failing(); why != "" {
			log.Printf("healthz: failing on purpose (%s)", why)
			http.Error(w, "failing on purpose", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", version)
	})
	mux.HandleFunc("/config", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, s.config.Load().(string))
	})
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Print(err)
		}
	}()
	return nil
}

// failing says why /healthz fails on purpose, or "" when it does not.
func (s *server) failing() string {
	if s.unhealthy {
		return "-unhealthy"
	}
	if s.unhealthyIf != "" {
		if _, err := os.Stat(s.unhealthyIf); err == nil {
			return s.unhealthyIf + " exists"
		}
	}
	return ""
}

func (s *server) stop(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = s.http.Shutdown(ctx)
}
