package config

import (
	"bytes"
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// HCL's parser recurses once per level of nesting, and a deep enough
// input overflows the stack, which no recover can catch. These bounds keep
// every input well inside what the parser handles.
const (
	// cheapBound: a file with at most this many opening brackets cannot
	// nest deeper than that, which the parser survives; no lexing needed.
	cheapBound = 20000
	// maxNesting is the depth allowed in larger files, far beyond any
	// real configuration.
	maxNesting = 1000
)

// checkNesting returns a diagnostic when src nests too deeply to parse
// safely.
func checkNesting(name string, src []byte) *hcl.Diagnostic {
	openers := bytes.Count(src, []byte("(")) + bytes.Count(src, []byte("[")) + bytes.Count(src, []byte("{"))
	if openers <= cheapBound {
		return nil
	}
	tokens, _ := hclsyntax.LexConfig(src, name, hcl.InitialPos)
	depth := 0
	for _, tok := range tokens {
		switch tok.Type {
		case hclsyntax.TokenOParen, hclsyntax.TokenOBrack, hclsyntax.TokenOBrace,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl,
			hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc:
			depth++
			if depth > maxNesting {
				return &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Nesting too deep",
					Detail:   fmt.Sprintf("Brackets, blocks and templates nest more than %d levels deep here; gsd refuses to parse such a file.", maxNesting),
					Subject:  tok.Range.Ptr(),
				}
			}
		case hclsyntax.TokenCParen, hclsyntax.TokenCBrack, hclsyntax.TokenCBrace,
			hclsyntax.TokenTemplateSeqEnd, hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc:
			depth = max(depth-1, 0)
		}
	}
	return nil
}
