package config

import (
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

const testKRB5Conf = `[libdefaults]
  default_realm = CORP.EXAMPLE
  dns_lookup_kdc = false
[realms]
  CORP.EXAMPLE = {
    kdc = 127.0.0.1:88
  }
`

// testKeytab is a keytab holding one key of principal@realm.
func testKeytab(t *testing.T, principal, realm string) string {
	t.Helper()
	kt := keytab.New()
	if err := kt.AddEntry(principal, realm, "not-a-real-password", time.Unix(1700000000, 0), 1, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
		t.Fatal(err)
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func winrmHost(name, address, body string) string {
	return "host \"" + name + "\" {\n  address = \"" + address + "\"\n  winrm {\n" + body + "\n  }\n}\n"
}

// TestKerberosIdentities: each way of having a Kerberos identity loads
// with its paths resolved and the SPN defaulted from the host's name.
func TestKerberosIdentities(t *testing.T) {
	cfg := mustLoad(t, map[string]string{
		"krb5.conf":     testKRB5Conf,
		"deploy.keytab": testKeytab(t, "deploy", "CORP.EXAMPLE"),
		"main.hcl": winrmHost("cache", "web1.corp.example.", `auth = "kerberos"
    ccache = "FILE:tickets/krb5cc"
    krb5_conf = "krb5.conf"`) +
			winrmHost("ci", "10.0.0.12", `auth = "kerberos"
    https = true
    spn = "HTTP/web2.corp.example"
    user = "deploy@CORP.EXAMPLE"
    keytab = "deploy.keytab"`) +
			winrmHost("laptop", "web3.corp.example", `auth = "negotiate"
    user = "deploy"
    realm = "CORP.EXAMPLE"
    password = var.pw`) + `
variable "pw" {
  type      = string
  sensitive = true
  default   = "s3cret-password"
}
`}, Options{})
	cache := cfg.Host("cache").WinRM
	if cache.SPN != "HTTP/web1.corp.example" || cache.User != "" || !strings.HasSuffix(cache.CCache, "/tickets/krb5cc") ||
		strings.HasPrefix(cache.CCache, "FILE:") || !strings.HasSuffix(cache.KRB5Conf, "/krb5.conf") || !cache.UsesKerberos() {
		t.Errorf("ticket cache host: %+v", cache)
	}
	ci := cfg.Host("ci").WinRM
	if ci.SPN != "HTTP/web2.corp.example" || !strings.HasSuffix(ci.Keytab, "/deploy.keytab") || ci.Port != DefaultWinRMHTTPSPort {
		t.Errorf("keytab host: %+v", ci)
	}
	laptop := cfg.Host("laptop").WinRM
	if laptop.Auth != AuthNegotiate || laptop.Realm != "CORP.EXAMPLE" || laptop.Password.Value != "s3cret-password" || !laptop.Password.Sensitive {
		t.Errorf("password host: %+v", laptop)
	}
	if DefaultSPN("10.0.0.1") != "" || DefaultSPN("::1") != "" || DefaultSPN("") != "" {
		t.Error("an IP address got a default SPN")
	}
}

// TestKerberosFilesChecked: the keytab and krb5.conf are read as the
// client will read them, so a wrong one fails validate, not the deploy.
func TestKerberosFilesChecked(t *testing.T) {
	for _, tc := range []struct {
		name, body, summary, detail string
	}{
		{"keytab of another user", `auth = "kerberos"
    user = "deploy@CORP.EXAMPLE"
    keytab = "other.keytab"`, "Keytab without the user's key", `holds no key for deploy@CORP.EXAMPLE (it holds "builder@CORP.EXAMPLE")`},
		{"keytab of another realm", `auth = "kerberos"
    user = "deploy@LAB.EXAMPLE"
    keytab = "deploy.keytab"`, "Keytab without the user's key", `(it holds "deploy@CORP.EXAMPLE")`},
		{"no keytab", `auth = "kerberos"
    user = "deploy@CORP.EXAMPLE"
    keytab = "missing.keytab"`, "Cannot read keytab", "missing.keytab"},
		{"not a keytab", `auth = "kerberos"
    user = "deploy@CORP.EXAMPLE"
    keytab = "krb5.conf"`, "Invalid keytab", "ktutil"},
		{"realm not in krb5.conf", `auth = "kerberos"
    user = "deploy"
    realm = "LAB.EXAMPLE"
    keytab = "lab.keytab"
    krb5_conf = "krb5.conf"`, "Realm unknown to krb5.conf", `no KDC for the realm LAB.EXAMPLE (it knows "CORP.EXAMPLE")`},
		{"no krb5.conf", `auth = "kerberos"
    krb5_conf = "missing.conf"`, "Cannot read krb5.conf", "missing.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := load(t, map[string]string{
				"krb5.conf":     testKRB5Conf,
				"deploy.keytab": testKeytab(t, "deploy", "CORP.EXAMPLE"),
				"other.keytab":  testKeytab(t, "builder", "CORP.EXAMPLE"),
				"lab.keytab":    testKeytab(t, "deploy", "LAB.EXAMPLE"),
				"main.hcl": winrmHost("web1", "web1.corp.example", tc.body+`
    password = null`),
			}, Options{})
			var found bool
			for _, d := range diags {
				if d.Summary == tc.summary {
					found = true
					if !strings.Contains(d.Detail, tc.detail) || d.Subject == nil || d.Subject.Start.Line < 4 {
						t.Errorf("%s: %s (at %v)", d.Summary, d.Detail, d.Subject)
					}
				}
			}
			if !found || len(diags) != 1 {
				t.Errorf("want one %q, got %v", tc.summary, diags)
			}
		})
	}
}
