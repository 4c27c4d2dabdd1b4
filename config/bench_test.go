package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// generated returns a configuration with n services spread over n/10+1
// hosts, each service with the features validation works hardest on:
// dependencies, files, recovery, health and rollout.
func generated(n int) map[string][]byte {
	var b strings.Builder
	b.WriteString(`variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}
build "app" {
  package = "./cmd/app"
}
`)
	hosts := n/10 + 1
	for h := 0; h < hosts; h++ {
		fmt.Fprintf(&b, `host "h%d" {
  address = "h%d.example.internal"
  labels  = { group = "g%d" }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}
`, h, h, h%5)
	}
	for i := 0; i < n; i++ {
		dep := ""
		if i%10 != 0 {
			dep = fmt.Sprintf("depends_on = [service.s%d, \"Tcpip\"]", i-1)
		}
		fmt.Fprintf(&b, `service "s%d" {
  hosts        = ["h%d"]
  binary       = build.app
  display_name = "Service %d"
  args         = ["-port", "%d"]
  env          = { ID = "%d", SECRET = var.pw }
  %s
  file "config.yaml" {
    content   = jsonencode({ id = %d, port = %d })
    on_change = "reload"
  }
  recovery {
    actions = ["restart/5s", "restart/30s", "none"]
  }
  health {
    http    = "http://localhost:%d/healthz"
    timeout = "30s"
  }
  rollout {
    max_parallel = "25%%"
  }
}
`, i, i/10, i, 8000+i, i, dep, i, 8000+i, 8000+i)
	}
	return map[string][]byte{"gen.hcl": []byte(b.String())}
}

func loadGenerated(b *testing.B, src map[string][]byte, dir string) {
	cfg, diags := Load(Options{Sources: src, Dir: dir})
	if diags.HasErrors() {
		b.Fatal(diags.Error())
	}
	_ = cfg
}

func BenchmarkValidate100(b *testing.B) {
	src, dir := generated(100), b.TempDir()
	for b.Loop() {
		loadGenerated(b, src, dir)
	}
}

func BenchmarkValidate1000(b *testing.B) {
	src, dir := generated(1000), b.TempDir()
	for b.Loop() {
		loadGenerated(b, src, dir)
	}
}

// BenchmarkValidateScaling measures 100 and 1,000 services in the same
// run, interleaved so machine noise hits both alike, and reports the ratio
// (target: at most 12, i.e. linear) and the 1,000-service time.
func BenchmarkValidateScaling(b *testing.B) {
	small, large, dir := generated(100), generated(1000), b.TempDir()
	var tSmall, tLarge time.Duration
	for b.Loop() {
		start := time.Now()
		loadGenerated(b, small, dir)
		mid := time.Now()
		loadGenerated(b, large, dir)
		tSmall += mid.Sub(start)
		tLarge += time.Since(mid)
	}
	b.ReportMetric(float64(tLarge)/float64(tSmall), "ratio_1000/100")
	b.ReportMetric(float64(tLarge.Milliseconds())/float64(b.N), "ms/1000svc")
}
