package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// Files written next to the project's HCL.
const (
	HCLFile  = "sandbox.hcl"
	VarsFile = "sandbox.auto.gsdvars"
	// PasswordVariable is the sensitive variable the host blocks use.
	PasswordVariable = "sandbox_password"
)

// relTo makes path relative to base when it lies under it, so the files
// stay valid when the project directory moves.
func relTo(base, path string) string {
	if r, err := filepath.Rel(base, path); err == nil && filepath.IsLocal(r) {
		return filepath.ToSlash(r)
	}
	return path
}

// RenderHCL returns sandbox.hcl for st, with paths relative to hclDir.
func RenderHCL(hclDir string, st *State) []byte {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	intro := "# Local Windows test hosts, written by `gsd sandbox up` and removed by\n" +
		"# `gsd sandbox down`. The password is in " + VarsFile + ".\n"
	if k := st.Kerberos; k != nil {
		intro += "# The hosts are members of the realm " + k.Realm + ": gsd uses your ticket\n" +
			"# cache, so log in first with\n" +
			"#   " + KinitCommand(hclDir, st) + "\n"
	}
	body.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte(intro)}})
	v := body.AppendNewBlock("variable", []string{PasswordVariable}).Body()
	v.SetAttributeValue("sensitive", cty.True)
	for _, h := range st.Hosts {
		body.AppendNewline()
		hb := body.AppendNewBlock("host", []string{h.Name}).Body()
		hb.SetAttributeValue("address", cty.StringVal(h.Address))
		hb.SetAttributeValue("labels", cty.ObjectVal(map[string]cty.Value{"sandbox": cty.StringVal("true")}))
		if h.SSHPort > 0 {
			// With both blocks the language wants the choice spelled out;
			// switch to "ssh" to deploy over SSH.
			hb.SetAttributeValue("transport", cty.StringVal("winrm"))
		}
		// The default way in, as to a stock Windows Server: HTTP on 5985,
		// NTLM, every message encrypted with the session key.
		w := hb.AppendNewBlock("winrm", nil).Body()
		if h.HTTPSPort > 0 {
			w.SetAttributeValue("https", cty.True)
		}
		if k := st.Kerberos; k != nil {
			w.SetAttributeValue("auth", cty.StringVal("kerberos"))
			w.SetAttributeValue("spn", cty.StringVal(h.SPN))
			w.SetAttributeValue("krb5_conf", cty.StringVal(relTo(hclDir, k.Config)))
		} else {
			w.SetAttributeValue("user", cty.StringVal(st.User))
			w.SetAttributeTraversal("password", hcl.Traversal{hcl.TraverseRoot{Name: "var"}, hcl.TraverseAttr{Name: PasswordVariable}})
		}
		if h.HTTPSPort > 0 {
			w.SetAttributeValue("ca_cert", cty.StringVal(relTo(hclDir, st.CACert)))
		}
		if k := st.Kerberos; k != nil && k.ClientKeytab != "" {
			w.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte(
				"# In CI, log in from the keytab instead of a ticket cache:\n" +
					"# user   = \"" + k.Principal + "\"\n" +
					"# keytab = \"" + relTo(hclDir, k.ClientKeytab) + "\"\n")}})
		}
		if h.SSHPort > 0 {
			s := hb.AppendNewBlock("ssh", nil).Body()
			s.SetAttributeValue("user", cty.StringVal(st.SSHUser))
			s.SetAttributeValue("port", cty.NumberIntVal(int64(h.SSHPort)))
			s.SetAttributeValue("private_key", cty.StringVal(relTo(hclDir, st.SSHKey)))
			s.SetAttributeValue("host_key", cty.StringVal(h.SSHHostKey))
		}
	}
	return hclwrite.Format(f.Bytes())
}

// KinitCommand is how a user gets the ticket a Kerberos sandbox's hosts
// want, with paths relative to dir.
func KinitCommand(dir string, st *State) string {
	if st.Kerberos == nil {
		return ""
	}
	return "KRB5_CONFIG=" + relTo(dir, st.Kerberos.Config) + " kinit " + st.Kerberos.Principal
}

// RenderVars returns the variables file holding the password.
func RenderVars(st *State) []byte {
	f := hclwrite.NewEmptyFile()
	f.Body().SetAttributeValue(PasswordVariable, cty.StringVal(st.Password))
	return f.Bytes()
}

func writeHCL(hclDir, dir string, st *State) error {
	for name, data := range map[string][]byte{
		HCLFile:  RenderHCL(hclDir, st),
		VarsFile: RenderVars(st),
	} {
		path := filepath.Join(hclDir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		st.Files = append(st.Files, OwnedFile{Path: path, SHA256: hex.EncodeToString(sum[:])})
		if err := st.save(dir); err != nil {
			return err
		}
	}
	return nil
}
