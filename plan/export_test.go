package plan

import (
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
)

// Fixtures and internals for the tests in package plan_test, which see
// every kind of resource (the kinds' packages import plan).
var (
	BaseForTest = base
	ArtsForTest = arts
)

// DesiredForTest is every kind's releases for cfg.
func DesiredForTest(cfg *config.Config, artifacts map[string]*build.Artifact) (map[string]map[string]Desired, error) {
	return desiredAll(cfg, func(b config.Binary) *build.Artifact { return artifacts[ArtifactKey(b)] })
}
