package protocol

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func fullSpec() ServiceSpec {
	return ServiceSpec{
		Name: "api", Mode: ModeNative, Artifact: strings.Repeat("a", 64), Version: "1.0",
		Args: []string{"-token", "s3cret-arg"}, SensitiveArgs: true,
		Account: Account{Name: `.\svc`, Password: "s3cret-pw", PasswordSet: true},
		Env:     map[string]string{"TOKEN": "s3cret-env", "PORT": "8080"},
		Files: []FileSpec{
			{Name: "app.yaml", Content: []byte("port: 8080"), SHA256: SHA256Hex([]byte("port: 8080"))},
			{Name: "key.pem", Content: []byte("s3cret-key"), SHA256: SHA256Hex([]byte("s3cret-key")), Sensitive: true},
		},
	}
}

func TestSecretsTravelApartAndComeBackWhole(t *testing.T) {
	full := fullSpec()
	for _, form := range []ServiceSpec{full.WithoutSecrets(), full.Blind(), full.Redacted()} {
		b, _ := json.Marshal(form)
		if strings.Contains(string(b), "s3cret") {
			t.Errorf("a spec without secrets holds one: %s", b)
		}
	}
	blind, _ := json.Marshal(full.Blind())
	for _, h := range []string{SHA256Hex([]byte("s3cret-env")), SHA256Hex([]byte("s3cret-key"))} {
		if strings.Contains(string(blind), h) {
			t.Errorf("the blind form holds the hash of a secret: %s", blind)
		}
	}
	keys := full.SecretKeys()
	want := []string{"account.password", "args", "env.PORT", "env.TOKEN", "file.key.pem"}
	if !reflect.DeepEqual(keys, want) || !reflect.DeepEqual(full.WithoutSecrets().SecretKeys(), want) || !reflect.DeepEqual(full.Blind().SecretKeys(), want) {
		t.Fatalf("secret keys %v, want %v in every form", keys, want)
	}
	for _, form := range []ServiceSpec{full.WithoutSecrets(), full.Blind()} {
		back, err := form.WithSecrets(full.Secrets())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, full) {
			t.Errorf("round trip:\n got %+v\nwant %+v", back, full)
		}
	}
}

func TestWithSecretsRefusesWrongOrMissingValues(t *testing.T) {
	full := fullSpec()
	base := full.WithoutSecrets()
	wrong := full.Secrets()
	wrong["env.TOKEN"] = "guess"
	if _, err := base.WithSecrets(wrong); err == nil || !strings.Contains(err.Error(), "env.TOKEN") {
		t.Errorf("a value other than the planned one: %v", err)
	}
	missing := full.Secrets()
	delete(missing, "account.password")
	if _, err := base.WithSecrets(missing); err == nil || !strings.Contains(err.Error(), "account.password") {
		t.Errorf("a missing secret: %v", err)
	}
	extra := full.Secrets()
	extra["env.OTHER"] = "x"
	if _, err := base.WithSecrets(extra); err == nil || !strings.Contains(err.Error(), "env.OTHER") {
		t.Errorf("an extra secret: %v", err)
	}
	if _, err := base.WithSecrets(map[string]string{"args": "not json"}); err == nil {
		t.Error("unparseable args accepted")
	}
}

func TestSpecChangesNamesEveryAttribute(t *testing.T) {
	a := fullSpec().Redacted()
	b := fullSpec()
	b.Artifact, b.Version, b.DisplayName = strings.Repeat("b", 64), "2.0", "New"
	b.Env["PORT"] = "9090"
	b.Files[0].Content = []byte("port: 9090")
	b.Files[0].SHA256 = SHA256Hex(b.Files[0].Content)
	got := SpecChanges(a, b.Redacted())
	want := []string{"binary", "version", "display_name", "env.PORT", "file.app.yaml"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	if got := SpecChanges(a, a); len(got) != 0 {
		t.Errorf("a spec differs from itself: %v", got)
	}
}
