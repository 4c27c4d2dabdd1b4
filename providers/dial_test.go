package providers

import (
	"context"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/config"
)

// A host with both blocks is reached the way its transport says; the
// other block is never used. Port 1 on loopback refuses at once, and the
// error names the transport that was tried.
func TestDialFollowsTransport(t *testing.T) {
	for _, want := range []string{"winrm", "ssh"} {
		h := &config.Host{Name: "dual", Address: "127.0.0.1", TransportName: want,
			WinRM: &config.WinRM{HTTPS: false, AllowUnencrypted: true, Port: 1, Auth: "basic", User: "u", Password: config.Text{Value: "p", Sensitive: true}, Timeout: 5e9},
			SSH:   &config.SSH{User: "u", Port: 1, Password: config.Text{Value: "p", Sensitive: true}, Timeout: 5e9},
		}
		_, err := Dial(context.Background(), h, Options{Agent: AgentFromBytes([]byte("MZ"))})
		if err == nil {
			t.Fatalf("%s: dial to a closed port succeeded", want)
		}
		other := map[string]string{"winrm": "ssh", "ssh": "winrm"}[want]
		msg := strings.ToLower(err.Error())
		if strings.Contains(msg, other) && !strings.Contains(msg, want) {
			t.Errorf("transport %s: the error speaks of %s: %v", want, other, err)
		}
		t.Logf("%s: %v", want, err)
	}
}
