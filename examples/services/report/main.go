// Command report is the example program the gsd tasks example runs from
// the Task Scheduler: each run writes one line about itself, to stdout
// and, with -out, to a dated file in that folder, and exits. Its exit
// code is the run's result.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	out := flag.String("out", "", "folder to write the report file to")
	flag.Parse()
	kind := os.Getenv("REPORT_KIND")
	if kind == "" {
		kind = "ad hoc"
	}
	now := time.Now().UTC()
	line := fmt.Sprintf("%s report at %s\n", kind, now.Format(time.RFC3339))
	fmt.Print(line)
	if *out == "" {
		return
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	path := filepath.Join(*out, "report-"+now.Format("2006-01-02")+".txt")
	if err := os.WriteFile(path, []byte(line), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
