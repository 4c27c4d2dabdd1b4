// Command ticker is the example console program the gsd wrapped-mode
// example hosts as a service: it prints a line per tick to stdout, a
// progress note to stderr now and then, and stops cleanly when asked.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"
)

func main() {
	interval := flag.Duration("interval", time.Second, "time between ticks")
	flag.Parse()
	prefix := os.Getenv("TICKER_PREFIX")
	if prefix == "" {
		prefix = "tick"
	}
	// os.Interrupt is Ctrl-C or Ctrl-Break on Windows, which is how a
	// wrapper asks a console program to stop.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	t := time.NewTicker(*interval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-stop:
			fmt.Println("stopping")
			return
		case <-t.C:
			fmt.Printf("%s %d\n", prefix, n)
			if n%10 == 0 {
				fmt.Fprintf(os.Stderr, "%d ticks so far\n", n)
			}
		}
	}
}
