package views

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
)

const accountsHCL = `
variable "pw" {
  type      = string
  sensitive = true
  default   = "s3cret-pw"
}
host "web1" {
  address = "web1.example.internal"
  winrm {
    user     = "deploy"
    password = var.pw
  }
}
build "api" {
  package = "./cmd/api"
}
service "api" {
  hosts  = ["web1"]
  binary = build.api
}
service "monitor" {
  hosts  = ["web1"]
  binary = build.api
  account {
    name = "LocalSystem"
  }
}
service "batch" {
  hosts    = ["web1"]
  binary   = build.api
  mode     = "wrapped"
  work_dir = "D:\\data\\batch"
  account {
    name     = ".\\svc-batch"
    password = var.pw
  }
}
service "web" {
  hosts  = ["web1"]
  binary = build.api
  account {
    name = "CORP\\web$"
  }
}
task "report" {
  hosts  = ["web1"]
  binary = build.api
  trigger { daily = "02:00" }
  account {
    name = "CORP\\report$"
  }
}
task "cleanup" {
  hosts  = ["web1"]
  binary = build.api
  trigger { every = "15m" }
}
`

// The plan shows each service's account with what it may do, an account
// change as a restart, and what the host said about a group managed
// service account it cannot use, for a task too (which runs as
// LocalSystem when it names no account); made by plan.Make from a
// configuration and facts, as gsd plan makes it.
func TestPlanAccountsGolden(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(accountsHCL), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(config.Options{Paths: []string{dir}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	sha := strings.Repeat("a", 64)
	arts := map[string]*build.Artifact{"build.api": {Build: "api", Path: "/cache/api.exe", SHA256: sha, Size: 1000}}
	// monitor runs as its virtual account, the default before it said
	// LocalSystem.
	monitor := plan.Spec(cfg.Service("monitor"), arts["build.api"])
	monitor.Account.Name = `NT SERVICE\monitor`
	last := monitor.Redacted()
	facts := &protocol.Facts{
		Host: protocol.HostFacts{Machine: "WEB1", Repairs: []string{`C:\ProgramData\gsd was owned by S-1-5-21-1-2-3-1001, who could change what it holds; Administrators own it now and only SYSTEM and Administrators may use it`}},
		Services: []protocol.ServiceFacts{{
			Name: "monitor", Mode: monitor.Mode, Installed: true, BinarySHA256: sha, LastApplied: &last,
			Config: &protocol.SCMConfig{BinaryPath: `C:\ProgramData\gsd\artifacts\` + sha + `\api.exe`, StartType: "auto", Account: `NT SERVICE\monitor`, DisplayName: "monitor", Dependencies: []string{}},
			Status: &protocol.ServiceStatus{State: "running"}, Current: &protocol.Release{ID: "r-11112222333344445555", Version: monitor.Version, Artifact: sha},
		}},
		Accounts: []protocol.AccountFacts{
			{Name: `CORP\web$`, Problem: "this computer may not retrieve the account's password; add it to PrincipalsAllowedToRetrieveManagedPassword"},
			{Name: `CORP\report$`, Problem: "the account does not exist"},
		},
	}
	if got := strings.Join(plan.FactsArgs(cfg, "web1").Accounts, " "); got != `CORP\web$ CORP\report$` {
		t.Fatalf("planning asks about %v, want the gMSAs", got)
	}
	p, err := plan.Make(cfg, arts, map[string]plan.HostFacts{"web1": {Facts: facts}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Plan(&out, p, false); err != nil {
		t.Fatal(err)
	}
	golden(t, "plan-accounts.txt", out.Bytes())
}
