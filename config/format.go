package config

import (
	_ "embed"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// Format returns src in canonical layout. A file that does not parse is
// left alone and its syntax errors returned, so formatting never turns a
// mistake into a different mistake.
func Format(name string, src []byte) ([]byte, hcl.Diagnostics) {
	_, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	return hclwrite.Format(src), nil
}

// Starter is the commented gsd.hcl that gsd init writes. A test checks
// that it validates and is already formatted.
//
//go:embed starter.hcl
var Starter []byte
