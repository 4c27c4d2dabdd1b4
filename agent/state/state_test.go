package state

import (
	"errors"
	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
)

func TestActivateKeepsNewestAndReportsDropped(t *testing.T) {
	var s Service
	var dropped []protocol.Release
	for _, a := range []string{"a", "b", "c", "d"} {
		dropped = append(dropped, s.Activate(protocol.Release{Artifact: a}, 3)...)
	}
	if got := artifacts(s.Releases); got != "d,c,b" {
		t.Fatalf("releases %s, want d,c,b", got)
	}
	if got := artifacts(dropped); got != "a" {
		t.Fatalf("dropped %s, want a", got)
	}
	// Rolling back to a kept release moves it to the front, no duplicate.
	s.Activate(protocol.Release{Artifact: "c"}, 3)
	if got := artifacts(s.Releases); got != "c,d,b" {
		t.Fatalf("after rollback %s, want c,d,b", got)
	}
	if s.Current().Artifact != "c" || s.Previous().Artifact != "d" {
		t.Fatalf("current/previous wrong: %+v", s.Releases)
	}
}

func artifacts(rs []protocol.Release) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Artifact)
	}
	return strings.Join(out, ",")
}

func TestSaveLoadRoundTripRedactsPasswords(t *testing.T) {
	l := Layout{Root: testfs.TempDir(t)}
	st := New()
	st.Services["api"] = &Service{Spec: protocol.ServiceSpec{Name: "api", Account: protocol.Account{Name: `CORP\svc`, Password: "s3cret-pw"}}}
	if err := st.Save(l); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(l.StateFile())
	if strings.Contains(string(raw), "s3cret-pw") {
		t.Fatal("password reached state.json")
	}
	got, err := Load(l)
	if err != nil || got.Services["api"].Spec.Account.Name != `CORP\svc` {
		t.Fatalf("load: %+v, %v", got, err)
	}
}

func TestLoadRefusesNewerSchema(t *testing.T) {
	l := Layout{Root: testfs.TempDir(t)}
	os.WriteFile(l.StateFile(), []byte(`{"schema":99}`), 0o644)
	if _, err := Load(l); err == nil || !strings.Contains(err.Error(), "upgrade the agent") {
		t.Fatalf("got %v", err)
	}
}

func TestSecondAcquireSeesHolder(t *testing.T) {
	l := Layout{Root: testfs.TempDir(t)}
	first, err := Acquire(l, "alice")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(l, "bob")
	var locked *LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("second acquire: got %v, want LockedError", err)
	}
	if locked.Holder.Operator != "alice" || locked.Holder.PID != os.Getpid() || locked.Holder.Machine == "" || locked.Holder.Since.IsZero() {
		t.Fatalf("holder not named: %+v", locked.Holder)
	}
	if !strings.Contains(err.Error(), "alice") {
		t.Fatalf("message does not name holder: %v", err)
	}
	first.Release()
	second, err := Acquire(l, "bob")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	second.Release()
}

func TestAcquireTakesOverLockOfDeadProcess(t *testing.T) {
	l := Layout{Root: testfs.TempDir(t)}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	host, _ := os.Hostname()
	os.WriteFile(l.LockFile(), []byte(`{"user":"x","machine":"`+host+`","pid":`+strconv.Itoa(dead)+`,"since":"2026-01-01T00:00:00Z"}`), 0o644)
	lk, err := Acquire(l, "carol")
	if err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
	defer lk.Release()
	if lk.BrokeStale == nil || lk.BrokeStale.PID != dead {
		t.Fatalf("BrokeStale = %+v, want pid %d", lk.BrokeStale, dead)
	}
}

// state.json written by an older agent held environment values; they are
// reduced to hashes on load and gone from the file after the next save.
func TestLoadHashesLegacyEnvValues(t *testing.T) {
	l := Layout{Root: testfs.TempDir(t)}
	const secret = "legacy-secret-value"
	old := `{"schema":1,"keep_releases":3,"services":{"api":{"spec":{"name":"api","mode":"native","artifact":"","env":{"K":"` + secret + `"}},"releases":[],"recorded":{"env":{"K":"` + secret + `"}}}}}`
	if err := os.WriteFile(l.StateFile(), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Load(l)
	if err != nil {
		t.Fatal(err)
	}
	want := protocol.HashEnv(map[string]string{"K": secret})
	svc := st.Services["api"]
	if svc.Spec.Env != nil || svc.Spec.EnvSHA256["K"] != want["K"] || svc.Recorded.LegacyEnv != nil || svc.Recorded.EnvSHA256["K"] != want["K"] {
		t.Fatalf("loaded spec env %v/%v, recorded %v/%v", svc.Spec.Env, svc.Spec.EnvSHA256, svc.Recorded.LegacyEnv, svc.Recorded.EnvSHA256)
	}
	if err := st.Save(l); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(l.StateFile()); strings.Contains(string(b), secret) {
		t.Fatalf("value still in state.json: %s", b)
	}
}
