package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// A stored release, which is what a journal names and what a recovery
// replays, carries the account but not its password, nor sensitive
// arguments: those are kept only sealed.
func TestStoredReleaseCarriesNoPasswords(t *testing.T) {
	root := testfs.TempDir(t)
	a, _ := newTestAgent(t, root)
	s := startSession(t, a)
	art := s.stage("st", "api.exe", []byte("bin"), 10).SHA256
	spec := nativeSpec("api", art, "1")
	spec.Account = protocol.Account{Name: `CORP\svc`, Password: "hunter2-secret"}
	spec.Args, spec.SensitiveArgs = []string{"-token", "argument-secret"}, true
	id := s.stageRelease("st1", spec)
	s.close()
	b, err := os.ReadFile(filepath.Join(root, "releases", id, "release.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2-secret", "argument-secret"} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("%s kept in the stored release: %s", secret, b)
		}
	}
	var stored struct {
		Spec protocol.ServiceSpec `json:"spec"`
	}
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	if got := stored.Spec; got.Account.Name != `CORP\svc` || !got.Account.PasswordSet || got.Args != nil || got.ArgsSHA256 == "" {
		t.Fatalf("the stored spec lost what stands for the secrets: %+v", got)
	}
	if got := openSealed(t, root)[id]; got[protocol.SecretPassword] != "hunter2-secret" || !strings.Contains(got[protocol.SecretArgs], "argument-secret") {
		t.Fatalf("sealed secrets %v", got)
	}
}
