package config

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// declareVariables reads each variable block's type, default, description
// and sensitivity. Defaults must be constants: they are part of the
// variable's declaration, not computed from other values.
func (l *loader) declareVariables() {
	ev := l.ev
	for _, name := range l.variableNames() {
		d := l.variables[name]
		s := d.shape
		d.ty = cty.DynamicPseudoType
		if !absent(s.Type) {
			ty, diags := typeexpr.TypeConstraint(s.Type)
			ev.diags = append(ev.diags, diags...)
			if !diags.HasErrors() {
				d.ty = ty
			}
		}
		ev.ctx = nil
		d.desc, _ = ev.str(s.Description, fmt.Sprintf("variable %q description", name))
		d.sensitive = ev.boolean(s.Sensitive, fmt.Sprintf("variable %q sensitive", name), false)
		if written(s.Default) {
			errorsBefore := len(ev.diags)
			d.value = l.defaultValue(d)
			d.source, d.valueRng = "default", s.Default.Range().Ptr()
			if d.sensitive {
				hideSnippets(ev, errorsBefore)
			}
		}
	}
}

// defaultValue evaluates a variable's default, which must be a constant.
// default = null makes the variable optional and null, which leaves each
// attribute it is used in at that attribute's own default. A default in
// error becomes unknown, so the error does not cascade into "no value".
func (l *loader) defaultValue(d *variableDecl) cty.Value {
	ev, s := l.ev, d.shape
	if len(s.Default.Variables()) > 0 {
		ev.errorf(s.Default.Range(), "Variables not allowed", "The default of variable %q must be a constant; it cannot refer to other values.", s.Name)
		return cty.UnknownVal(d.ty)
	}
	if absent(s.Default) {
		return cty.NullVal(d.ty)
	}
	v := ev.value(s.Default, d.ty, fmt.Sprintf("variable %q default", s.Name))
	if v == cty.NilVal {
		return cty.UnknownVal(d.ty)
	}
	return v
}

// hideSnippets marks the diagnostics added since index from as not to be
// quoted: they point at a sensitive variable's default.
func hideSnippets(ev *evaluator, from int) {
	for _, d := range ev.diags[from:] {
		d.Extra = hiddenSnippet{}
	}
}

func (l *loader) variableNames() []string {
	names := make([]string, 0, len(l.variables))
	for n := range l.variables {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// assignVariables applies values in Terraform's order of precedence, each
// later source overriding earlier ones: defaults, GSD_VAR_ environment
// variables, gsd.gsdvars, *.auto.gsdvars in name order, the chosen
// environment's ENVIRONMENT.gsdvars, then -var and -var-file in the order
// given.
func (l *loader) assignVariables() {
	env := l.opts.Environ
	sort.Strings(env)
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvPrefix) {
			continue
		}
		name := strings.TrimPrefix(k, EnvPrefix)
		if d := l.variables[name]; d != nil {
			l.setRaw(d, v, "environment variable "+k)
		}
	}
	for _, f := range l.varFiles {
		l.readVarFile(f, false)
	}
	if l.opts.Sources != nil {
		var names []string
		for n := range l.opts.Sources {
			if strings.HasSuffix(n, VarsExt) && !l.isEnvVarFile(n) {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			l.parseVarFile(n, l.opts.Sources[n], false)
		}
		if src, ok := l.opts.Sources[l.environment+VarsExt]; ok && l.environment != "" {
			l.parseVarFile(l.environment+VarsExt, src, true)
		}
	}
	// The chosen environment's file belongs to this configuration, so a
	// name in it that no variable declares is an error, as in -var-file.
	for _, f := range l.envVarFiles {
		l.readVarFile(f, true)
	}
	for _, a := range l.opts.VarArgs {
		if a.File {
			l.readVarFile(a.Value, true)
			continue
		}
		name, raw, ok := strings.Cut(a.Value, "=")
		if !ok || name == "" {
			l.ev.diags = append(l.ev.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid -var option",
				Detail:   fmt.Sprintf("The option -var %q is not of the form NAME=VALUE.", a.Value),
			})
			continue
		}
		d := l.variables[name]
		if d == nil {
			l.ev.diags = append(l.ev.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Value for undeclared variable",
				Detail:   fmt.Sprintf("-var sets %q, but no variable of that name is declared.", name),
			})
			continue
		}
		l.setRaw(d, raw, "-var")
	}
	for _, name := range l.variableNames() {
		d := l.variables[name]
		if d.value == cty.NilVal && l.opts.AllowUnsetVariables {
			d.value, d.source = cty.UnknownVal(d.ty), "unset"
		} else if d.value == cty.NilVal {
			l.ev.errorf(d.shape.DefRange, "No value for required variable",
				"Variable %q has no default. Set it with -var %s=..., a -var-file, or the environment variable %s%s.", name, name, EnvPrefix, name)
			d.value = cty.UnknownVal(d.ty)
		}
		if d.sensitive {
			d.value = d.value.Mark(sensitive)
		}
	}
}

// setRaw sets a variable from a command-line or environment string. A
// string variable takes it as written; any other type parses it as an HCL
// expression, so -var 'ports=[80,443]' works.
func (l *loader) setRaw(d *variableDecl, raw, source string) {
	var v cty.Value
	if d.ty == cty.String || d.ty == cty.DynamicPseudoType {
		v = cty.StringVal(raw)
	} else {
		expr, diags := hclsyntax.ParseExpression([]byte(raw), source, hcl.InitialPos)
		if !diags.HasErrors() {
			v, diags = expr.Value(nil)
		}
		if diags.HasErrors() {
			l.ev.diags = append(l.ev.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid value for variable",
				Detail:   fmt.Sprintf("The value of variable %q from %s is not a valid %s: %s", d.shape.Name, source, typeexpr.TypeString(d.ty), diags[0].Detail),
				Subject:  d.shape.DefRange.Ptr(),
			})
			d.value, d.source = cty.UnknownVal(d.ty), source
			return
		}
	}
	cv, err := convert.Convert(v, d.ty)
	if err != nil {
		l.ev.diags = append(l.ev.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid value for variable",
			Detail:   fmt.Sprintf("The value of variable %q from %s must be %s: %s.", d.shape.Name, source, typeexpr.TypeString(d.ty), err),
			Subject:  d.shape.DefRange.Ptr(),
		})
		d.value, d.source = cty.UnknownVal(d.ty), source
		return
	}
	d.value, d.source, d.valueRng = cv, source, nil
}

func (l *loader) readVarFile(path string, explicit bool) {
	src, err := os.ReadFile(path)
	if err != nil {
		l.ev.diags = append(l.ev.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cannot read variable file",
			Detail:   fmt.Sprintf("%s: %s.", path, unwrapPathError(err)),
		})
		return
	}
	l.parseVarFile(path, src, explicit)
}

// parseVarFile applies a variable file: NAME = constant lines. Unknown
// names are errors in a file named on the command line and warnings in an
// automatically loaded one, which may serve several configurations.
func (l *loader) parseVarFile(name string, src []byte, explicit bool) {
	l.isVarFile[name] = true
	if d := checkNesting(name, src); d != nil {
		l.ev.diags = append(l.ev.diags, d)
		return
	}
	f, diags := l.parser.ParseHCL(src, name)
	l.ev.diags = append(l.ev.diags, diags...)
	if diags.HasErrors() {
		return
	}
	attrs, diags := f.Body.JustAttributes()
	l.ev.diags = append(l.ev.diags, diags...)
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := attrs[n]
		d := l.variables[n]
		if d == nil {
			sev := hcl.DiagWarning
			if explicit {
				sev = hcl.DiagError
			}
			l.ev.diags = append(l.ev.diags, &hcl.Diagnostic{
				Severity: sev,
				Summary:  "Value for undeclared variable",
				Detail:   fmt.Sprintf("%s sets %q, but no variable of that name is declared.", name, n),
				Subject:  a.NameRange.Ptr(),
			})
			continue
		}
		if len(a.Expr.Variables()) > 0 {
			l.ev.errorf(a.Expr.Range(), "Variables not allowed", "Values in a variable file must be constants.")
			continue
		}
		v, vd := a.Expr.Value(nil)
		l.ev.diags = append(l.ev.diags, vd...)
		if vd.HasErrors() {
			continue
		}
		cv, err := convert.Convert(v, d.ty)
		if err != nil {
			l.ev.errorf(a.Expr.Range(), "Invalid value for variable", "Variable %q must be %s: %s.", n, typeexpr.TypeString(d.ty), err)
			d.value, d.source = cty.UnknownVal(d.ty), name
			continue
		}
		d.value, d.source, d.valueRng = cv, name, a.Expr.Range().Ptr()
	}
}

// varObject is var.* for expressions.
func (l *loader) varObject() cty.Value {
	vals := map[string]cty.Value{}
	for n, d := range l.variables {
		vals[n] = d.value
	}
	return cty.ObjectVal(vals)
}

// checkVariableValidations runs each validation block against its
// variable's final value.
func (l *loader) checkVariableValidations() {
	ev := l.ev
	for _, name := range l.variableNames() {
		d := l.variables[name]
		for _, val := range d.shape.Validations {
			if !ev.required(val.Condition, fmt.Sprintf("Variable %q validation", name), "condition") ||
				!ev.required(val.ErrorMessage, fmt.Sprintf("Variable %q validation", name), "error_message") {
				continue
			}
			bad := false
			for _, tr := range val.Condition.Variables() {
				if tr.RootName() != "var" || len(tr) < 2 {
					bad = true
				} else if a, ok := tr[1].(hcl.TraverseAttr); !ok || a.Name != name {
					bad = true
				}
			}
			if bad {
				ev.errorf(val.Condition.Range(), "Invalid validation condition", "The condition of variable %q may refer only to var.%s.", name, name)
				continue
			}
			ev.ctx = d.file.ctx
			msg, ok := ev.str(val.ErrorMessage, "error_message")
			if !ok {
				continue
			}
			if !d.value.IsWhollyKnown() {
				continue
			}
			cond := ev.value(val.Condition, cty.Bool, "validation condition")
			if cond == cty.NilVal {
				continue
			}
			cond, _ = cond.Unmark()
			if cond.True() {
				continue
			}
			rng := d.shape.DefRange
			if d.valueRng != nil {
				rng = *d.valueRng
			}
			detail := msg
			if d.source != "default" && d.valueRng == nil {
				detail += fmt.Sprintf(" (value from %s)", d.source)
			}
			ev.errorf(rng, "Invalid value for variable", "%s", detail)
		}
	}
	ev.ctx = nil
}

func (l *loader) variableModel() []*Variable {
	var out []*Variable
	for _, name := range l.variableNames() {
		d := l.variables[name]
		out = append(out, &Variable{
			Name:        name,
			Description: d.desc,
			Sensitive:   d.sensitive,
			Source:      d.source,
			DeclRange:   d.shape.DefRange,
		})
	}
	return out
}
