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
	body.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte(
		"# Local Windows test hosts, written by `gsd sandbox up` and removed by\n" +
			"# `gsd sandbox down`. The password is in " + VarsFile + ".\n")}})
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
		w.SetAttributeValue("user", cty.StringVal(st.User))
		w.SetAttributeTraversal("password", hcl.Traversal{hcl.TraverseRoot{Name: "var"}, hcl.TraverseAttr{Name: PasswordVariable}})
		if h.HTTPSPort > 0 {
			w.SetAttributeValue("ca_cert", cty.StringVal(relTo(hclDir, st.CACert)))
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
