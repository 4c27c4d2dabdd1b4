package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
)

// fileMagic opens every saved plan, so gsd apply can tell a plan file
// from any other JSON.
const fileMagic = "gsd-plan"

type savedPlan struct {
	Magic string `json:"magic"`
	*Plan
}

// Write saves the plan for gsd apply FILE. The plan holds no secret, so
// neither does the file.
func Write(w io.Writer, p *Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(savedPlan{Magic: fileMagic, Plan: p})
}

// Read loads a saved plan, refusing files that are not plans or were
// written in a format this gsd does not know.
func Read(r io.Reader) (*Plan, error) {
	var sp savedPlan
	dec := json.NewDecoder(io.LimitReader(r, 256<<20))
	if err := dec.Decode(&sp); err != nil {
		return nil, fmt.Errorf("not a gsd plan file: %w", err)
	}
	if sp.Magic != fileMagic || sp.Plan == nil {
		return nil, errors.New("not a gsd plan file")
	}
	if sp.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("the plan file has format version %d, but this gsd reads version %d; make the plan again with this gsd", sp.FormatVersion, FormatVersion)
	}
	return sp.Plan, nil
}

// SecretsOf are a service's secret values on a host by key (see
// protocol.ServiceSpec.Secrets), resolved from the configuration: what
// apply fills into a step's release.
func SecretsOf(svc *config.Service, host string) map[string]string {
	return Spec(svc.On(host), &build.Artifact{}).Secrets()
}

// ConfigFingerprints are the config and secrets fingerprints of the
// configuration as it is now, with the artifacts a saved plan names
// (artifact key -> SHA-256) standing in for a build: what CheckSaved
// compares with the plan's.
func ConfigFingerprints(cfg *config.Config, artifacts map[string]string) (configFP, secretsFP string, err error) {
	desired, err := desiredAll(cfg, func(b config.Binary) *build.Artifact {
		if sha, ok := artifacts[ArtifactKey(b)]; ok {
			return &build.Artifact{SHA256: sha}
		}
		return nil
	})
	if err != nil {
		return "", "", fmt.Errorf("%w, which the saved plan did not build", err)
	}
	configFP = fingerprintDesired(desired)
	return configFP, SecretsFingerprint(configFP, desired), nil
}

// FactsFingerprint is the fingerprint a plan keeps of a host's facts.
func FactsFingerprint(f *protocol.Facts) string { return fingerprintFacts(f) }

// CheckSaved says whether a saved plan may still be applied, without
// building or planning again: the configuration and the secrets resolved
// now (from ConfigFingerprints) are those it was made with, every artifact
// it uploads still has its hash on disk, and every host it changes
// reports the facts it was planned against. It says in words what changed.
func CheckSaved(saved *Plan, configFP, secretsFP string, facts map[string]HostFacts, hashFile func(path string) (string, error)) error {
	var why []string
	switch {
	case configFP != saved.Fingerprints.Config:
		why = append(why, "the configuration (or a variable) changed")
	case secretsFP != saved.Fingerprints.Secrets:
		why = append(why, "a secret value (a sensitive variable) changed")
	}
	shas := make([]string, 0, len(saved.Artifacts))
	for sha := range saved.Artifacts {
		shas = append(shas, sha)
	}
	sort.Strings(shas)
	for _, sha := range shas {
		a := saved.Artifacts[sha]
		got, err := hashFile(a.Path)
		switch {
		case err != nil:
			why = append(why, fmt.Sprintf("artifact %s is no longer at %s (%v)", ShortHash(sha), a.Path, err))
		case got != sha:
			why = append(why, fmt.Sprintf("artifact %s (%s) was rebuilt with a different hash", ShortHash(sha), a.Path))
		}
	}
	now := map[string]string{}
	for host, hf := range facts {
		if hf.Err != nil || hf.Facts == nil {
			why = append(why, fmt.Sprintf("host %s could not be read: %v", host, hf.Err))
			continue
		}
		now[host] = fingerprintFacts(hf.Facts)
	}
	for _, hp := range saved.Hosts {
		if hp.Error != "" {
			continue
		}
		h, ok := now[hp.Host]
		switch {
		case !ok:
			why = append(why, fmt.Sprintf("host %s was not read", hp.Host))
		case h != saved.Fingerprints.Facts[hp.Host]:
			why = append(why, fmt.Sprintf("host %s changed since the plan was made", hp.Host))
		}
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("the saved plan is stale: %s. Run gsd plan again", strings.Join(why, "; "))
}
