package main

import (
	"flag"
	"os"

	"github.com/gsd-deploy/gsd/config"
	"github.com/hashicorp/hcl/v2"
)

// configFlags are the options every command that reads a configuration
// shares. -var and -var-file go into one list so their command-line order
// decides precedence, as in Terraform.
type configFlags struct {
	vars    []config.VarArg
	env     string
	noColor bool
}

type varFlag struct {
	list *[]config.VarArg
	file bool
}

func (v varFlag) String() string { return "" }

func (v varFlag) Set(s string) error {
	*v.list = append(*v.list, config.VarArg{File: v.file, Value: s})
	return nil
}

func (c *configFlags) register(fs *flag.FlagSet) {
	fs.Var(varFlag{&c.vars, false}, "var", "set a variable: -var NAME=VALUE (repeatable)")
	fs.Var(varFlag{&c.vars, true}, "var-file", "read variable values from a file (repeatable)")
	fs.StringVar(&c.env, "env", "", "the environment whose hosts and NAME.gsdvars to use")
	fs.BoolVar(&c.noColor, "no-color", false, "plain output without colours")
}

// errColor reports whether output on stderr (diagnostics) should be
// coloured.
func (c *configFlags) errColor(env *cliEnv) bool {
	return useColor(env.errIsTerminal, c.noColor, env)
}

func useColor(terminal, noColor bool, env *cliEnv) bool {
	return terminal && !noColor && env.getenv("NO_COLOR") == "" && env.getenv("TERM") != "dumb"
}

func (c *configFlags) options(paths []string) config.Options {
	return config.Options{Paths: paths, VarArgs: c.vars, Environment: c.env, Environ: os.Environ()}
}

// reportDiagnostics prints diagnostics to stderr, and returns errReported
// when any is an error.
func reportDiagnostics(env *cliEnv, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) error {
	if len(diags) > 0 {
		renderDiagnostics(env, files, diags, color)
	}
	if diags.HasErrors() {
		return errReported
	}
	return nil
}
