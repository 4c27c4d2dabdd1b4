package config

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// sensitive is the cty mark carried by values from sensitive variables.
// Marks flow through expressions and functions, so anything computed from
// a secret stays a secret.
type markKind string

const sensitive = markKind("sensitive")

// evaluator evaluates attribute expressions into Go values and collects
// diagnostics that point at each value. One evaluator serves one Load.
type evaluator struct {
	ctx   *hcl.EvalContext
	diags hcl.Diagnostics
	// declared names, for friendlier messages than HCL's generic ones
	vars   map[string]bool
	locals map[string]bool
	// unknowns counts values skipped because they depend on a variable
	// left unset (see Options.AllowUnsetVariables).
	unknowns int
	// each is what each.* stands for in the expressions evaluated now.
	each eachScope
}

// eachScope is what each.* means where an expression is evaluated: in a
// service with for_each, each.key and each.value; in a service's
// attributes, each.host, the host being deployed. Elsewhere noHost says
// why each.host has no value.
type eachScope struct {
	forEach bool
	host    *Host
	noHost  *refusal
	// hostUnknown: each.host stands for a host not known yet (a service
	// whose hosts come from a variable validate left unset).
	hostUnknown bool
}

// refusal is a diagnostic's summary and detail.
type refusal struct{ summary, detail string }

var eachHostOutsideService = &refusal{"Reference not allowed here",
	"each.host is only known in a service block, which gsd evaluates once for each of its hosts."}

func (e *evaluator) errorf(rng hcl.Range, summary, detail string, args ...any) {
	e.diags = append(e.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  rng.Ptr(),
	})
}

func (e *evaluator) warnf(rng hcl.Range, summary, detail string, args ...any) {
	e.diags = append(e.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  rng.Ptr(),
	})
}

// traversalName returns NAME from var.NAME, local.NAME or local["NAME"].
func traversalName(tr hcl.Traversal) string {
	if len(tr) < 2 {
		return ""
	}
	return stepName(tr[1])
}

// written reports whether an attribute appears in the file at all, even
// as an explicit null. gohcl stands a non-syntax placeholder in for an
// omitted one.
func written(expr hcl.Expression) bool {
	_, ok := expr.(hclsyntax.Expression)
	return ok
}

// absent reports whether an optional attribute was left out (gohcl gives
// a static null for those) or set to null.
func absent(expr hcl.Expression) bool {
	if expr == nil {
		return true
	}
	if len(expr.Variables()) > 0 {
		return false
	}
	v, diags := expr.Value(nil)
	return !diags.HasErrors() && v.IsNull()
}

// required reports a missing required argument. gohcl cannot, because
// it treats every attribute decoded as an expression as optional.
func (e *evaluator) required(expr hcl.Expression, block, attr string) bool {
	if !absent(expr) {
		return true
	}
	e.errorf(expr.Range(), "Missing required argument", "%s needs the argument %q.", block, attr)
	return false
}

// summaryFor names the attribute a value was for, as a short summary:
// "Invalid mode" for `service "api" mode`.
func summaryFor(what string) string {
	if strings.HasPrefix(what, "variable ") {
		return "Invalid value for variable"
	}
	f := strings.Fields(what)
	return "Invalid " + f[len(f)-1]
}

// usesSensitive reports whether any value expr refers to is sensitive.
func (e *evaluator) usesSensitive(expr hcl.Expression) bool {
	for _, tr := range expr.Variables() {
		root, ok := tr[0].(hcl.TraverseRoot)
		if !ok {
			continue
		}
		// The root object is enough to be safe: a local or variable
		// object holding any secret counts when the precise attribute
		// cannot be resolved.
		v, diags := tr.TraverseAbs(e.ctx)
		if diags.HasErrors() {
			v, diags = hcl.Traversal{root}.TraverseAbs(e.ctx)
			if diags.HasErrors() {
				continue
			}
		}
		if v.HasMarkDeep(sensitive) {
			return true
		}
	}
	return false
}

// hiddenSnippet marks a diagnostic whose source line must not be quoted,
// because it holds a secret. views reads it through the HideSnippet
// method, so it needs no import of this package.
type hiddenSnippet struct{}

func (hiddenSnippet) HideSnippet() bool { return true }

func redact(diags hcl.Diagnostics) hcl.Diagnostics {
	out := make(hcl.Diagnostics, len(diags))
	for i, d := range diags {
		c := *d
		c.Detail = "The expression uses a sensitive value, so the details of this error are not shown."
		c.Expression, c.EvalContext = nil, nil
		c.Extra = hiddenSnippet{}
		out[i] = &c
	}
	return out
}

// checkRefs reports references to things that do not exist, in words a
// user recognises, before HCL reports them as unsupported attributes.
func (e *evaluator) checkRefs(expr hcl.Expression) bool {
	ok := true
	for _, tr := range expr.Variables() {
		root := tr.RootName()
		name := traversalName(tr)
		if (root == "var" || root == "local") && name == "" {
			e.errorf(tr.SourceRange(), "Invalid reference", "Refer to a %s by name, as %s.NAME.", map[string]string{"var": "variable", "local": "local value"}[root], root)
			ok = false
			continue
		}
		switch root {
		case "each":
			ok = e.checkEach(tr) && ok
		case "var":
			if name != "" && !e.vars[name] {
				e.errorf(tr.SourceRange(), "Reference to undeclared variable",
					"There is no variable named %q. Declare it with a variable %q block.", name, name)
				ok = false
			}
		case "local":
			if name != "" && !e.locals[name] {
				e.errorf(tr.SourceRange(), "Reference to undeclared local value",
					"There is no local value named %q. Define it in a locals block.", name)
				ok = false
			}
		case "build", "service", "host":
			e.errorf(tr.SourceRange(), "Reference not allowed here",
				"A %s.<name> reference may only stand on its own where a %s is expected (binary, depends_on or hosts), not inside other expressions.", root, root)
			ok = false
		default:
			e.errorf(tr.SourceRange(), "Unknown reference",
				"%q is not something gsd knows. References start with var., local., each., build., service. or host.", root)
			ok = false
		}
	}
	return ok
}

// checkEach reports an each.* reference that has no value here, and a
// key of each.host.vars or each.host.labels that the host being deployed
// does not set, naming that host.
func (e *evaluator) checkEach(tr hcl.Traversal) bool {
	switch traversalName(tr) {
	case "key", "value":
		if !e.each.forEach {
			e.errorf(tr.SourceRange(), "Reference not allowed here", "each.key and each.value are only set in a service block with for_each.")
			return false
		}
		return true
	case "host":
	default:
		e.errorf(tr.SourceRange(), "Invalid reference", "each has key and value (in a service with for_each) and host: each.host.name, .address, .environment, .labels and .vars.")
		return false
	}
	h := e.each.host
	if e.each.hostUnknown {
		return true
	}
	if h == nil {
		why := e.each.noHost
		if why == nil {
			why = eachHostOutsideService
		}
		e.errorf(tr.SourceRange(), why.summary, "%s", why.detail)
		return false
	}
	if len(tr) < 3 {
		return true
	}
	field := stepName(tr[2])
	known := len(tr) < 4 || stepName(tr[3]) == "" // nothing to look up, or a key only known later
	switch field {
	case "name", "address", "environment":
		return true
	case "labels":
		if !known {
			_, known = h.Labels[stepName(tr[3])]
		}
	case "vars":
		if !known && h.vars.IsWhollyKnown() {
			key := stepName(tr[3])
			vars, _ := h.vars.UnmarkDeep()
			known = vars.Type().IsObjectType() && vars.Type().HasAttribute(key) ||
				vars.Type().IsMapType() && vars.HasIndex(cty.StringVal(key)).True()
		} else if !h.vars.IsWhollyKnown() {
			known = true // from a variable validate left unset
		}
	default:
		e.errorf(tr.SourceRange(), "Invalid reference", "each.host has name, address, environment, labels and vars; write each.host.name, each.host.vars.KEY and so on.")
		return false
	}
	if !known {
		key := stepName(tr[3])
		e.errorf(tr.SourceRange(), "No value on host "+h.Name,
			"each.host.%s.%s has no value on host %q (%s). Add %s to that host's %s, or write lookup(each.host.%s, %q, DEFAULT) to give hosts without it a default.",
			field, key, h.Name, shortRange(h.DeclRange), key, field, field, key)
		return false
	}
	return true
}

// stepName is the name a traversal step stands for: .NAME or ["NAME"].
func stepName(step hcl.Traverser) string {
	switch s := step.(type) {
	case hcl.TraverseAttr:
		return s.Name
	case hcl.TraverseIndex:
		if s.Key.Type() == cty.String && s.Key.IsKnown() && !s.Key.IsNull() {
			return s.Key.AsString()
		}
	}
	return ""
}

// value evaluates expr and converts it to ty. It returns cty.NilVal when
// the expression is absent or could not be evaluated (a diagnostic then
// says why).
func (e *evaluator) value(expr hcl.Expression, ty cty.Type, what string) cty.Value {
	if absent(expr) {
		return cty.NilVal
	}
	if !e.checkRefs(expr) {
		return cty.NilVal
	}
	v, diags := expr.Value(e.ctx)
	if diags.HasErrors() && e.usesSensitive(expr) {
		// Function errors quote their arguments ("cannot parse
		// \"hunter2\" as ..."); go-cty does not know gsd's mark, so the
		// details of a failure that touches a secret are withheld.
		diags = redact(diags)
	}
	e.diags = append(e.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal
	}
	if v.IsNull() {
		return cty.NilVal
	}
	if !v.IsWhollyKnown() {
		// Unset variables (validate) and locals that failed to evaluate
		// (their own diagnostic says why) are unknown.
		e.unknowns++
		return cty.NilVal
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		e.errorf(expr.Range(), summaryFor(what), "%s must be %s: %s.", what, typeWords(ty), err)
		return cty.NilVal
	}
	return cv
}

func typeWords(ty cty.Type) string {
	switch {
	case ty == cty.String:
		return "a string"
	case ty == cty.Number:
		return "a number"
	case ty == cty.Bool:
		return "true or false"
	case ty.IsListType() && ty.ElementType() == cty.String:
		return "a list of strings"
	case ty.IsMapType() && ty.ElementType() == cty.String:
		return "a map of strings"
	}
	return ty.FriendlyName()
}

// text evaluates a string that may be sensitive.
func (e *evaluator) text(expr hcl.Expression, what string) (Text, bool) {
	v := e.value(expr, cty.String, what)
	if v == cty.NilVal {
		return Text{}, false
	}
	v, marks := v.Unmark()
	return Text{Value: v.AsString(), Sensitive: marks.Has(sensitive)}, true
}

// str evaluates a string that is shown in plans and status, so it must
// not come from a sensitive value.
func (e *evaluator) str(expr hcl.Expression, what string) (string, bool) {
	t, ok := e.text(expr, what)
	if ok && t.Sensitive {
		e.errorf(expr.Range(), "Sensitive value not allowed here",
			"%s is shown in plans and status, so it cannot come from a sensitive value.", what)
		return "", false
	}
	return t.Value, ok
}

// password evaluates a secret. Whatever its origin it is treated as
// sensitive; a literal string earns a warning because it ends up in
// version control. known is false when there is no value (absent, in
// error, or from a variable validate left unset).
func (e *evaluator) password(expr hcl.Expression, what string) (pw Text, known bool) {
	t, ok := e.text(expr, what)
	if !ok {
		return Text{Sensitive: true}, false
	}
	if !t.Sensitive && len(expr.Variables()) == 0 {
		e.warnf(expr.Range(), "Password written as a literal",
			"%s is written in the file, where version control keeps it. Declare a variable with sensitive = true and pass the value with -var-file or GSD_VAR_<name>.", what)
		e.diags[len(e.diags)-1].Extra = hiddenSnippet{}
	}
	t.Sensitive = true
	return t, true
}

func (e *evaluator) boolean(expr hcl.Expression, what string, def bool) bool {
	v := e.value(expr, cty.Bool, what)
	if v == cty.NilVal {
		return def
	}
	v, _ = v.Unmark()
	return v.True()
}

// integer evaluates a whole number within [lo, hi].
func (e *evaluator) integer(expr hcl.Expression, what string, def, lo, hi int) int {
	v := e.value(expr, cty.Number, what)
	if v == cty.NilVal {
		return def
	}
	v, marks := v.Unmark()
	bf := v.AsBigFloat()
	shown := bf.Text('g', -1)
	if marks.Has(sensitive) {
		shown = sensitivePlaceholder
	}
	if !bf.IsInt() {
		e.errorf(expr.Range(), summaryFor(what), "%s must be a whole number, not %s.", what, shown)
		return def
	}
	if bf.Cmp(big.NewFloat(float64(lo))) < 0 || bf.Cmp(big.NewFloat(float64(hi))) > 0 {
		e.errorf(expr.Range(), summaryFor(what), "%s must be between %d and %d, not %s.", what, lo, hi, shown)
		return def
	}
	n, _ := bf.Int64()
	return int(n)
}

// duration evaluates a Go duration string such as "30s" or "1h30m".
func (e *evaluator) duration(expr hcl.Expression, what string, def time.Duration) time.Duration {
	s, ok := e.str(expr, what)
	if !ok {
		return def
	}
	d, err := parseDuration(s)
	if err != nil {
		e.errorf(expr.Range(), "Invalid duration", "%s: %s", what, err)
		return def
	}
	return d
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write a number with a unit, such as \"30s\", \"5m\" or \"1h30m\"", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// oneOf evaluates a string that must be one of the allowed words.
func (e *evaluator) oneOf(expr hcl.Expression, what, def string, allowed ...string) string {
	s, ok := e.str(expr, what)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	e.errorf(expr.Range(), summaryFor(what), "%s must be one of %s, not %q.", what, quoteList(allowed), s)
	return def
}

func quoteList(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = fmt.Sprintf("%q", w)
	}
	if len(q) <= 1 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// texts evaluates a list of strings, each of which may be sensitive.
func (e *evaluator) texts(expr hcl.Expression, what string) []Text {
	v := e.value(expr, cty.List(cty.String), what)
	if v == cty.NilVal {
		return nil
	}
	v, marks := v.Unmark()
	var out []Text
	for it := v.ElementIterator(); it.Next(); {
		_, el := it.Element()
		el, elMarks := el.Unmark()
		if el.IsNull() {
			e.errorf(expr.Range(), summaryFor(what), "%s must not contain null.", what)
			continue
		}
		out = append(out, Text{Value: el.AsString(), Sensitive: marks.Has(sensitive) || elMarks.Has(sensitive)})
	}
	return out
}

// strs evaluates a list of strings shown in plans.
func (e *evaluator) strs(expr hcl.Expression, what string) []string {
	var out []string
	for _, t := range e.texts(expr, what) {
		if t.Sensitive {
			e.errorf(expr.Range(), "Sensitive value not allowed here",
				"%s is shown in plans and status, so it cannot come from a sensitive value.", what)
			return nil
		}
		out = append(out, t.Value)
	}
	return out
}

// textMap evaluates a map of strings whose values may be sensitive.
func (e *evaluator) textMap(expr hcl.Expression, what string) map[string]Text {
	v := e.value(expr, cty.Map(cty.String), what)
	if v == cty.NilVal {
		return nil
	}
	v, marks := v.Unmark()
	out := map[string]Text{}
	for it := v.ElementIterator(); it.Next(); {
		k, el := it.Element()
		k, keyMarks := k.Unmark()
		el, elMarks := el.Unmark()
		if keyMarks.Has(sensitive) {
			e.errorf(expr.Range(), "Sensitive value not allowed here", "The keys of %s are shown in plans, so they cannot come from a sensitive value.", what)
			return nil
		}
		if el.IsNull() {
			e.errorf(expr.Range(), summaryFor(what), "%s[%q] must not be null.", what, k.AsString())
			continue
		}
		out[k.AsString()] = Text{Value: el.AsString(), Sensitive: marks.Has(sensitive) || elMarks.Has(sensitive)}
	}
	return out
}

// strMap evaluates a map of strings shown in plans.
func (e *evaluator) strMap(expr hcl.Expression, what string) map[string]string {
	m := e.textMap(expr, what)
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, t := range m {
		if t.Sensitive {
			e.errorf(expr.Range(), "Sensitive value not allowed here",
				"%s is shown in plans and status, so it cannot come from a sensitive value.", what)
			return nil
		}
		out[k] = t.Value
	}
	return out
}
