//go:build windows

package agent

import (
	"testing"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/internal/wine"
)

// Facts say when the root could not be restricted to administrators: Wine
// accepts the protected DACL but does not keep it. Windows proper must
// apply it (or the agent refuses to work, see state.SecureRoot).
func TestFactsReportRootACLGap(t *testing.T) {
	a, _ := newTestAgent(t, testfs.TempDir(t))
	f, err := a.Facts()
	if err != nil {
		t.Fatal(err)
	}
	gap := f.Host.Gaps["root_acl"]
	if wine.Detected() != (gap != "") {
		t.Fatalf("under Wine=%v, root_acl gap = %q", wine.Detected(), gap)
	}
	t.Logf("root_acl gap: %q", gap)
}
