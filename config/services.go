package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// Service defaults, in one place (as Nomad's Canonicalize).
const (
	DefaultStopTimeout    = 20 * time.Second
	DefaultHealthTimeout  = 60 * time.Second
	DefaultHealthInterval = 2 * time.Second
	DefaultLogMaxSize     = 10 << 20
	DefaultLogKeep        = 5
	// ServicesDir is where the agent keeps each service's files.
	ServicesDir = `C:\ProgramData\gsd\services`
)

// DefaultFilePath is where a managed file lives on the host unless its
// block sets path: C:\ProgramData\gsd\services\<service>\files\<name>.
func DefaultFilePath(service, name string) string {
	return ServicesDir + `\` + service + `\files\` + name
}

func (l *loader) decodeServices(cfg *Config) []*Service {
	var out []*Service
	for _, d := range sortedBy(l.expandForEach(), func(d *serviceDecl) string { return d.shape.Name }) {
		if svc := l.decodeService(cfg, d); svc != nil {
			out = append(out, svc)
		}
	}
	return out
}

// decodeService evaluates one service (or one instance of a for_each
// block). What decides where and in what order it is deployed (hosts,
// binary, depends_on, rollout) is evaluated once; the rest once for each
// host when it uses each.host. It returns nil for a service that runs on
// no host of the chosen environment.
func (l *loader) decodeService(cfg *Config, d *serviceDecl) *Service {
	s := d.shape
	ev := l.within(d.file)
	ev.required(s.Hosts, fmt.Sprintf("Service %q", s.Name), "hosts")
	ev.required(s.Binary, fmt.Sprintf("Service %q", s.Name), "binary")
	if err := validServiceName(s.Name); err != nil {
		ev.errorf(s.NameRange, "Invalid service name", "%q %s.", s.Name, err)
	}
	l.setEach(d, nil, &refusal{"Cycle through each.host",
		fmt.Sprintf("Service %q hosts decide which hosts each.host stands for, so they cannot use it.", s.Name)})
	hosts, elsewhere := l.serviceHosts(ev, cfg, s)
	if len(hosts) == 0 && elsewhere {
		return nil
	}
	l.setEach(d, nil, &refusal{"Reference not allowed here",
		fmt.Sprintf("Service %q binary, depends_on and rollout are the same on every host, so they cannot use each.host.", s.Name)})
	common := Service{
		Name: s.Name, Hosts: hosts, Block: d.block, DeclRange: s.DefRange,
		Binary:    l.serviceBinary(ev, cfg, d),
		DependsOn: l.serviceDeps(ev, s),
		Rollout:   l.serviceRollout(ev, s, len(hosts)),
	}
	if d.forEach && d.key.IsKnown() {
		common.Key = d.key.AsString()
	}
	on := func(h *Host) *Service {
		l.setEach(d, h, nil)
		svc := l.serviceBody(ev, d)
		svc.Name, svc.Hosts, svc.Block, svc.Key, svc.DeclRange = common.Name, common.Hosts, common.Block, common.Key, common.DeclRange
		svc.Binary, svc.DependsOn, svc.Rollout = common.Binary, common.DependsOn, common.Rollout
		return svc
	}
	if !usesEachHost(s) || len(hosts) == 0 {
		return on(nil)
	}
	// Once per host. A problem found on every host is reported once; one
	// found on some hosts only names them.
	type found struct {
		diag  *hcl.Diagnostic
		hosts []string
	}
	var order []*found
	byKey := map[string]*found{}
	perHost := map[string]*Service{}
	for _, name := range hosts {
		from := len(ev.diags)
		perHost[name] = on(cfg.Host(name))
		for _, dg := range ev.diags[from:] {
			key := fmt.Sprintf("%v|%s|%s|%v", dg.Severity, dg.Summary, dg.Detail, dg.Subject)
			if f := byKey[key]; f != nil {
				f.hosts = append(f.hosts, name)
				continue
			}
			f := &found{diag: dg, hosts: []string{name}}
			byKey[key] = f
			order = append(order, f)
		}
		ev.diags = ev.diags[:from]
	}
	for _, f := range order {
		dg := f.diag
		if len(f.hosts) < len(hosts) && !strings.Contains(dg.Detail, fmt.Sprintf("%q", f.hosts[0])) {
			c := *dg
			c.Detail = fmt.Sprintf("%s. (On %s.)", strings.TrimRight(strings.TrimSpace(dg.Detail), "."), hostWords(f.hosts))
			dg = &c
		}
		ev.diags = append(ev.diags, dg)
	}
	svc := *perHost[hosts[0]]
	svc.PerHost = perHost
	return &svc
}

func hostWords(hosts []string) string {
	q := make([]string, len(hosts))
	for i, h := range hosts {
		q[i] = fmt.Sprintf("%q", h)
	}
	if len(q) == 1 {
		return "host " + q[0]
	}
	return "hosts " + strings.Join(q, ", ")
}

// serviceBody evaluates what may differ from host to host.
func (l *loader) serviceBody(ev *evaluator, d *serviceDecl) *Service {
	s := d.shape
	what := func(attr string) string { return fmt.Sprintf("service %q %s", s.Name, attr) }
	svc := &Service{
		Mode:        ev.oneOf(s.Mode, what("mode"), ModeNative, ModeNative, ModeWrapped),
		Start:       ev.oneOf(s.Start, what("start"), StartAuto, StartAuto, StartDelayed, StartManual, StartDisabled),
		Args:        ev.texts(s.Args, what("args")),
		StopTimeout: ev.duration(s.StopTimeout, what("stop_timeout"), DefaultStopTimeout),
		Adopt:       ev.boolean(s.Adopt, what("adopt"), false),
	}
	if v, ok := ev.str(s.Version, what("version")); ok {
		if v == "" || len(v) > 128 || strings.IndexFunc(v, unicode.IsSpace) >= 0 {
			ev.errorf(s.Version.Range(), "Invalid version", "%s must be a non-empty label of at most 128 characters without spaces, such as \"1.4.2\".", what("version"))
		}
		svc.Version = v
	}
	svc.DisplayName = s.Name
	if v, ok := ev.str(s.DisplayName, what("display_name")); ok {
		if v == "" || len(v) > 256 || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			ev.errorf(s.DisplayName.Range(), "Invalid display name", "%s must be 1 to 256 characters without control characters.", what("display_name"))
		}
		svc.DisplayName = v
	}
	if v, ok := ev.str(s.Description, what("description")); ok {
		if len(v) > 2048 {
			ev.errorf(s.Description.Range(), "Description too long", "%s is longer than 2048 characters.", what("description"))
		}
		svc.Description = v
	}
	if svc.StopTimeout == 0 && !absent(s.StopTimeout) {
		ev.errorf(s.StopTimeout.Range(), "Invalid duration", "%s must be longer than zero.", what("stop_timeout"))
	} else if svc.StopTimeout > time.Hour {
		ev.errorf(s.StopTimeout.Range(), "Invalid duration", "%s must be at most 1h.", what("stop_timeout"))
	}
	svc.Env = l.serviceEnv(ev, s)
	svc.Account = l.serviceAccount(ev, s)
	svc.Files = l.serviceFiles(ev, d)
	svc.Recovery = l.serviceRecovery(ev, s)
	svc.Health = l.serviceHealth(ev, s)
	svc.Log = l.serviceLog(ev, s, svc.Mode)
	svc.Firewall = firewallBlock(ev, s.Firewall, fmt.Sprintf("service %q", s.Name))
	svc.WorkDir = l.serviceWorkDir(ev, s, svc.Mode)
	return svc
}

// setEach puts each.* in scope for a service's expressions: each.key and
// each.value of a for_each instance, and each.host when h is set (else
// noHost says why there is none, or without a reason it stands for a
// host not known yet).
func (l *loader) setEach(d *serviceDecl, h *Host, noHost *refusal) {
	ev := l.ev
	each := map[string]cty.Value{"host": cty.DynamicVal}
	if d.forEach {
		each["key"], each["value"] = d.key, d.value
	}
	if h != nil {
		each["host"] = hostObject(h)
	}
	obj := cty.ObjectVal(each)
	ev.ctx = d.file.ctx.NewChild()
	ev.ctx.Variables = map[string]cty.Value{"each": obj}
	ev.ctx.Functions = map[string]function.Function{
		"templatefile": templateFileFunc(fileReader(d.file.dir), l.functions, obj),
	}
	ev.each = eachScope{forEach: d.forEach, host: h, noHost: noHost, hostUnknown: h == nil && noHost == nil}
}

// hostObject is each.host: what a service may read of the host it is
// deployed to.
func hostObject(h *Host) cty.Value {
	labels := cty.MapValEmpty(cty.String)
	if len(h.Labels) > 0 {
		m := map[string]cty.Value{}
		for k, v := range h.Labels {
			m[k] = cty.StringVal(v)
		}
		labels = cty.MapVal(m)
	}
	str := func(s string) cty.Value {
		if s == "" {
			return cty.UnknownVal(cty.String) // from a variable validate left unset
		}
		return cty.StringVal(s)
	}
	vars := h.vars
	if vars == cty.NilVal {
		vars = cty.EmptyObjectVal
	}
	return cty.ObjectVal(map[string]cty.Value{
		"name":        cty.StringVal(h.Name),
		"address":     str(h.Address),
		"environment": cty.StringVal(h.Environment),
		"labels":      labels,
		"vars":        vars,
	})
}

// usesEachHost reports whether any expression of a service block reads
// each.host, so that it must be evaluated once per host. A template may
// read it too, so a service that renders one counts.
func usesEachHost(s *serviceShape) bool {
	uses := false
	walkExpressions(s, func(expr hcl.Expression) {
		for _, tr := range expr.Variables() {
			if tr.RootName() == "each" && traversalName(tr) == "host" {
				uses = true
			}
		}
		if syn, ok := expr.(hclsyntax.Expression); ok && !uses {
			hclsyntax.VisitAll(syn, func(n hclsyntax.Node) hcl.Diagnostics {
				if call, ok := n.(*hclsyntax.FunctionCallExpr); ok && call.Name == "templatefile" {
					uses = true
				}
				return nil
			})
		}
	})
	return uses
}

// expandForEach replaces each service block that has for_each with one
// service per element, named BLOCK-KEY, and registers their names so
// depends_on finds them.
func (l *loader) expandForEach() []*serviceDecl {
	l.instances = map[string][]string{}
	var out []*serviceDecl
	for _, d := range l.services {
		s := d.shape
		if absent(s.ForEach) {
			out = append(out, d)
			continue
		}
		delete(l.serviceByKey, strings.ToLower(s.Name))
		ev := l.within(d.file)
		ev.each = eachScope{noHost: &refusal{"Cycle through each.host",
			fmt.Sprintf("Service %q for_each decides which services there are, and so which hosts each.host stands for; it cannot use each.host.", s.Name)}}
		for _, inst := range l.forEachElements(ev, s) {
			name := s.Name + "-" + inst.key
			if inst.key == "" {
				name = s.Name // keys unknown until variables are set (validate)
			}
			if err := validIdentifier(name); err != nil {
				ev.errorf(s.ForEach.Range(), "Invalid for_each key", "Service %q for_each key %q makes the service name %q, which %s.", s.Name, inst.key, name, err)
				continue
			}
			if err := validServiceName(name); err != nil {
				ev.errorf(s.ForEach.Range(), "Invalid for_each key", "Service %q for_each key %q makes the Windows service name %q, which %s.", s.Name, inst.key, name, err)
				continue
			}
			if prev, dup := l.serviceByKey[strings.ToLower(name)]; dup {
				l.duplicate("service", name, s.ForEach.Range(), prev.shape.DefRange)
				continue
			}
			shape := *s
			shape.Name = name
			i := &serviceDecl{shape: &shape, file: d.file, block: s.Name, forEach: true, key: cty.StringVal(inst.key), value: inst.value}
			if inst.key == "" {
				i.key = cty.UnknownVal(cty.String)
			}
			l.serviceByKey[strings.ToLower(name)] = i
			l.instances[strings.ToLower(s.Name)] = append(l.instances[strings.ToLower(s.Name)], name)
			out = append(out, i)
		}
	}
	l.services = out
	return out
}

type forEachElement struct {
	key   string
	value cty.Value
}

// forEachElements evaluates for_each: a map (or object), whose keys name
// the services and whose values are each.value, or a set of strings,
// each both key and value. Keys become service names, shown everywhere,
// so they must not be sensitive. An unknown for_each (validate, without
// a variable's value) yields one element with an empty key.
func (l *loader) forEachElements(ev *evaluator, s *serviceShape) []forEachElement {
	what := fmt.Sprintf("service %q for_each", s.Name)
	unknowns := ev.unknowns
	v := ev.value(s.ForEach, cty.DynamicPseudoType, what)
	if v == cty.NilVal {
		if ev.unknowns > unknowns {
			return []forEachElement{{value: cty.DynamicVal}}
		}
		return nil
	}
	if v.HasMark(sensitive) {
		ev.errorf(s.ForEach.Range(), "Sensitive value not allowed here", "%s keys become service names, which are shown in plans and status, so it cannot come from a sensitive value.", what)
		return nil
	}
	ty := v.Type()
	var out []forEachElement
	switch {
	case ty.IsMapType() || ty.IsObjectType():
		for it := v.ElementIterator(); it.Next(); {
			k, el := it.Element()
			out = append(out, forEachElement{key: k.AsString(), value: el})
		}
	case ty.IsSetType() && ty.ElementType() == cty.String:
		for it := v.ElementIterator(); it.Next(); {
			_, el := it.Element()
			el, marks := el.Unmark()
			if marks.Has(sensitive) {
				ev.errorf(s.ForEach.Range(), "Sensitive value not allowed here", "%s elements become service names, which are shown in plans and status, so they cannot come from a sensitive value.", what)
				return nil
			}
			if el.IsNull() {
				ev.errorf(s.ForEach.Range(), "Invalid for_each", "%s must not contain null.", what)
				return nil
			}
			out = append(out, forEachElement{key: el.AsString(), value: el})
		}
	default:
		ev.errorf(s.ForEach.Range(), "Invalid for_each", "%s must be a map, or a set of strings such as toset([\"a\", \"b\"]), not %s: its keys name the services.", what, ty.FriendlyName())
	}
	return out
}

// onlyOne reports all but the first of repeated single blocks. owner
// names the block they are in, as `service "api"`.
func onlyOne[T any](ev *evaluator, blocks []T, rng func(T) hcl.Range, owner, kind string) (T, bool) {
	var zero T
	if len(blocks) == 0 {
		return zero, false
	}
	for _, b := range blocks[1:] {
		ev.errorf(rng(b), "Duplicate "+kind+" block", "%s may have only one %s block.", capitalized(owner), kind)
	}
	return blocks[0], true
}

func capitalized(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// refName returns the name in a kind.NAME reference written on its own,
// such as build.api, or "" when expr is not one.
func refName(expr hcl.Expression, kind string) (string, hcl.Range, bool) {
	tr, diags := hcl.AbsTraversalForExpr(expr)
	if diags.HasErrors() || tr.RootName() != kind {
		return "", hcl.Range{}, false
	}
	if len(tr) != 2 {
		return "", tr.SourceRange(), true
	}
	a, ok := tr[1].(hcl.TraverseAttr)
	if !ok {
		return "", tr.SourceRange(), true
	}
	return a.Name, tr.SourceRange(), true
}

func didYouMean(name string, candidates []string) string {
	best := Closest(name, candidates)
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

// Closest is the candidate nearest to name, ignoring case, if one is near
// enough (edit distance under 4) to be a likely typo; "" otherwise.
func Closest(name string, candidates []string) string {
	best, bestDist := "", 4
	for _, c := range candidates {
		if d := levenshtein.Distance(strings.ToLower(name), strings.ToLower(c), nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func hostNames(cfg *Config) []string {
	var out []string
	for _, h := range cfg.Hosts {
		out = append(out, h.Name)
	}
	return out
}

// serviceHosts resolves hosts: a list of host names (or host.NAME
// references), or a map of labels that selects every host carrying all
// of them. Hosts of another environment than the chosen one are left
// out; elsewhere says some were.
func (l *loader) serviceHosts(ev *evaluator, cfg *Config, s *serviceShape) (hosts []string, elsewhere bool) {
	return l.hostsOf(ev, cfg, s.Hosts, fmt.Sprintf("service %q", s.Name))
}

// hostsOf resolves the hosts of a service or task (owner, as
// `service "api"`); see serviceHosts.
func (l *loader) hostsOf(ev *evaluator, cfg *Config, expr hcl.Expression, owner string) (hosts []string, elsewhere bool) {
	who := capitalized(owner)
	errorsBefore, unknownsBefore := countErrors(ev.diags), ev.unknowns
	seen := map[string]bool{}
	add := func(name string, rng hcl.Range) {
		switch {
		case l.elsewhere[name] != nil:
			elsewhere = true
		case cfg.Host(name) == nil:
			ev.errorf(rng, "Unknown host", "%s runs on host %q, which is not declared.%s", who, name, didYouMean(name, hostNames(cfg)))
		case seen[name]:
			ev.errorf(rng, "Host listed twice", "%s lists host %q more than once.", who, name)
		default:
			seen[name] = true
		}
	}
	if _, isMap := expr.(*hclsyntax.ObjectConsExpr); isMap {
		sel := ev.strMap(expr, owner+" hosts")
		if sel == nil {
			return nil, false
		}
		if len(sel) == 0 {
			ev.errorf(expr.Range(), "Empty host selector", "%s selects hosts with an empty label map, which would mean every host; list the labels to match.", who)
			return nil, false
		}
		matches := func(h *Host) bool {
			for k, v := range sel {
				if h.Labels[k] != v {
					return false
				}
			}
			return true
		}
		for _, h := range cfg.Hosts {
			if matches(h) {
				seen[h.Name] = true
			}
		}
		for _, h := range l.elsewhere {
			elsewhere = elsewhere || matches(h)
		}
		if len(seen) == 0 && !elsewhere {
			ev.errorf(expr.Range(), "No host matches", "No host carries all the labels %s selects (%s).", owner, labelWords(sel))
		}
	} else if tuple, isList := expr.(*hclsyntax.TupleConsExpr); isList {
		for _, el := range tuple.Exprs {
			if name, rng, isRef := refName(el, "host"); isRef {
				add(name, rng)
				continue
			}
			if n, ok := ev.str(el, owner+" hosts"); ok {
				add(n, el.Range())
			}
		}
	} else {
		for _, n := range ev.strs(expr, owner+" hosts") {
			add(n, expr.Range())
		}
	}
	if len(seen) == 0 && !elsewhere && countErrors(ev.diags) == errorsBefore && ev.unknowns == unknownsBefore {
		ev.errorf(expr.Range(), "No hosts", "%s lists no hosts.", who)
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, elsewhere
}

func labelWords(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s = %q", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func (l *loader) serviceBinary(ev *evaluator, cfg *Config, d *serviceDecl) Binary {
	return binaryOf(ev, cfg, d.shape.Binary, d.file.dir, fmt.Sprintf("service %q", d.shape.Name))
}

// binaryOf resolves the binary of a service or task (owner, as
// `service "api"`): a build.NAME reference, or the path of a prebuilt
// executable relative to dir.
func binaryOf(ev *evaluator, cfg *Config, expr hcl.Expression, dir, owner string) Binary {
	if name, rng, isRef := refName(expr, "build"); isRef {
		if cfg.Build(name) == nil {
			var names []string
			for _, b := range cfg.Builds {
				names = append(names, b.Name)
			}
			ev.errorf(rng, "Unknown build", "%s uses build %q, which is not declared.%s", capitalized(owner), name, didYouMean(name, names))
		}
		return Binary{Build: name}
	}
	p, ok := ev.str(expr, owner+" binary")
	if !ok {
		return Binary{}
	}
	path := resolvePath(dir, p)
	st, err := os.Stat(path)
	switch {
	case err != nil:
		ev.errorf(expr.Range(), "Binary not found", "%s binary %s: %s. Use build.NAME to build it from Go source.", capitalized(owner), p, unwrapPathError(err))
	case !st.Mode().IsRegular():
		ev.errorf(expr.Range(), "Binary not a file", "%s binary %s is not a regular file.", capitalized(owner), p)
	case !strings.EqualFold(pathExt(p), ".exe"):
		ev.warnf(expr.Range(), "Binary is not an .exe", "%s binary %s does not end in .exe; Windows runs programs from executables.", capitalized(owner), p)
	}
	return Binary{Path: path}
}

func pathExt(p string) string {
	i := strings.LastIndexAny(p, `./\`)
	if i < 0 || p[i] != '.' {
		return ""
	}
	return p[i:]
}

// serviceDeps resolves depends_on: service.NAME references are gsd
// services; strings are Windows services gsd does not manage, unless they
// name a gsd service.
func (l *loader) serviceDeps(ev *evaluator, s *serviceShape) []Dependency {
	if absent(s.DependsOn) {
		return nil
	}
	what := fmt.Sprintf("service %q depends_on", s.Name)
	var out []Dependency
	seen := map[string]bool{}
	add := func(dep Dependency, rng hcl.Range) {
		key := strings.ToLower(dep.Key())
		switch {
		case strings.EqualFold(dep.Key(), s.Name):
			ev.errorf(rng, "Service depends on itself", "Service %q lists itself in depends_on.", s.Name)
		case seen[key]:
			ev.errorf(rng, "Dependency listed twice", "%s lists %q more than once.", what, dep.Key())
		default:
			seen[key] = true
			out = append(out, dep)
		}
	}
	managed := func(name string) string {
		if d := l.serviceByKey[strings.ToLower(name)]; d != nil {
			return d.shape.Name
		}
		return ""
	}
	tuple, isList := s.DependsOn.(*hclsyntax.TupleConsExpr)
	if !isList {
		for _, n := range ev.strs(s.DependsOn, what) {
			if m := managed(n); m != "" {
				add(Dependency{Service: m}, s.DependsOn.Range())
			} else {
				add(Dependency{Name: n}, s.DependsOn.Range())
			}
		}
		return out
	}
	for _, el := range tuple.Exprs {
		if name, rng, isRef := refName(el, "service"); isRef {
			if insts := l.instances[strings.ToLower(name)]; len(insts) > 0 {
				// A for_each block stands for all its services.
				for _, n := range insts {
					add(Dependency{Service: n}, rng)
				}
			} else if m := managed(name); m != "" {
				add(Dependency{Service: m}, rng)
			} else {
				var names []string
				for _, o := range l.services {
					names = append(names, o.shape.Name)
				}
				ev.errorf(rng, "Unknown service", "%s refers to service %q, which is not declared.%s", what, name, didYouMean(name, names))
			}
			continue
		}
		n, ok := ev.str(el, what)
		if !ok {
			continue
		}
		if err := validServiceName(n); err != nil {
			ev.errorf(el.Range(), "Invalid dependency", "%s: %q %s.", what, n, err)
			continue
		}
		if m := managed(n); m != "" {
			add(Dependency{Service: m}, el.Range())
		} else {
			add(Dependency{Name: n}, el.Range())
		}
	}
	return out
}

func (l *loader) serviceEnv(ev *evaluator, s *serviceShape) map[string]Text {
	return envOf(ev, s.Env, fmt.Sprintf("service %q", s.Name))
}

// envOf evaluates the environment of a service or task (owner, as
// `service "api"`).
func envOf(ev *evaluator, expr hcl.Expression, owner string) map[string]Text {
	env := ev.textMap(expr, owner+" env")
	seen := map[string]string{}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			ev.errorf(expr.Range(), "Invalid environment variable name", "%s env has the name %q; names must be non-empty and hold no = or NUL.", capitalized(owner), k)
			continue
		}
		if strings.ContainsRune(env[k].Value, 0) {
			ev.errorf(expr.Range(), "Invalid environment variable value", "%s env %s holds a NUL character.", capitalized(owner), k)
		}
		// Windows environment names are case-insensitive.
		if prev, dup := seen[strings.ToUpper(k)]; dup {
			ev.errorf(expr.Range(), "Duplicate environment variable", "%s env sets both %s and %s, which Windows treats as the same name.", capitalized(owner), prev, k)
		}
		seen[strings.ToUpper(k)] = k
	}
	return env
}

// serviceAccount is the service's account block, or by default its
// virtual account, NT SERVICE\<name> (a for_each instance's own name): an
// identity of its own with no more rights than it is given, where
// LocalSystem, Windows' own default, may do anything on the host.
func (l *loader) serviceAccount(ev *evaluator, s *serviceShape) Account {
	return accountOf(ev, s.Account, fmt.Sprintf("service %q", s.Name), s.Name, `NT SERVICE\`+s.Name)
}

// accountOf evaluates the account block of a service or task (owner, as
// `service "api"`): byDefault without one. virtual is the name whose
// virtual account (NT SERVICE\NAME) it may run as, or "" for none.
func accountOf(ev *evaluator, blocks []*accountShape, owner, virtual, byDefault string) Account {
	acc := Account{Name: byDefault}
	a, ok := onlyOne(ev, blocks, func(a *accountShape) hcl.Range { return a.DefRange }, owner, "account")
	if !ok {
		return acc
	}
	ev.required(a.Name, capitalized(owner)+" account", "name")
	name, ok := ev.str(a.Name, owner+" account name")
	if !ok {
		return acc
	}
	canonical, kind, err := classifyAccount(name, virtual)
	if virtual == "" && strings.HasPrefix(strings.ToLower(name), `nt service\`) {
		err = errors.New(`is a virtual service account, which only a service can run as; the Task Scheduler cannot. Use LocalService, NetworkService or a (group managed) user account`)
	}
	if err != nil {
		ev.errorf(a.Name.Range(), "Invalid account name", "%s account \"%s\" %s.", capitalized(owner), name, err)
		return acc
	}
	acc.Name = canonical
	hasPassword := !absent(a.Password)
	switch {
	case kind == AccountUser && !hasPassword:
		ev.errorf(a.DefRange, "Missing account password", "%s runs as user %q, which needs a password; pass it in a sensitive variable. (A group managed service account, whose name ends in $, needs none.)", capitalized(owner), canonical)
	case kind != AccountUser && hasPassword:
		ev.errorf(a.Password.Range(), "Password not used", "%s runs as %q, which Windows manages without a password. Remove the password.", capitalized(owner), canonical)
	case hasPassword:
		var known bool
		acc.Password, known = ev.password(a.Password, owner+" account password")
		if known && acc.Password.Value == "" {
			ev.errorf(a.Password.Range(), "Empty account password", "%s runs as user %q with an empty password, which Windows refuses for services.", capitalized(owner), canonical)
		}
	}
	return acc
}

func (l *loader) serviceFiles(ev *evaluator, d *serviceDecl) []*File {
	s := d.shape
	var out []*File
	paths := map[string]string{}
	for _, fb := range s.Files {
		what := func(attr string) string { return fmt.Sprintf("service %q file %q %s", s.Name, fb.Name, attr) }
		if err := validFileName(fb.Name); err != nil {
			ev.errorf(fb.NameRange, "Invalid file name", "Service %q file %q %s.", s.Name, fb.Name, err)
			continue
		}
		f := &File{
			Name:     fb.Name,
			Path:     DefaultFilePath(s.Name, fb.Name),
			OnChange: ev.oneOf(fb.OnChange, what("on_change"), OnChangeRestart, OnChangeRestart, OnChangeReload, OnChangeNone),
		}
		if p, ok := ev.str(fb.Path, what("path")); ok {
			if err := validWindowsPath(p); err != nil {
				ev.errorf(fb.Path.Range(), "Invalid file path", "%s %s.", what("path"), err)
			}
			f.Path = p
		}
		hasContent, hasSource := !absent(fb.Content), !absent(fb.Source)
		switch {
		case hasContent && hasSource:
			ev.errorf(fb.Source.Range(), "Conflicting file contents", "Service %q file %q sets both content and source; keep one.", s.Name, fb.Name)
		case hasContent:
			f.Content, _ = ev.text(fb.Content, what("content"))
		case hasSource:
			if p, ok := ev.str(fb.Source, what("source")); ok {
				b, err := readLimited(resolvePath(d.file.dir, p))
				if err != nil {
					ev.errorf(fb.Source.Range(), "Cannot read file source", "%s %s: %s.", what("source"), p, err)
				}
				f.Content = Text{Value: string(b)}
			}
		default:
			ev.errorf(fb.DefRange, "Missing file contents", "Service %q file %q needs content or source.", s.Name, fb.Name)
		}
		key := strings.ToLower(f.Path)
		if prev, dup := paths[key]; dup {
			ev.errorf(fb.DefRange, "Duplicate file path", "Service %q files %q and %q both write %s.", s.Name, prev, fb.Name, f.Path)
			continue
		}
		paths[key] = fb.Name
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func readLimited(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("%d bytes, over the limit of %d for managed files", st.Size(), maxFileSize)
	}
	return os.ReadFile(path)
}

var recoveryActionRe = regexp.MustCompile(`^(none|restart|reboot|run)(?:/(.+))?$`)

func (l *loader) serviceRecovery(ev *evaluator, s *serviceShape) *Recovery {
	r, ok := onlyOne(ev, s.Recovery, func(r *recoveryShape) hcl.Range { return r.DefRange }, fmt.Sprintf("service %q", s.Name), "recovery")
	if !ok {
		return nil
	}
	what := func(attr string) string { return fmt.Sprintf("service %q recovery %s", s.Name, attr) }
	rec := &Recovery{
		ResetAfter: ev.duration(r.ResetAfter, what("reset_after"), 24*time.Hour),
		OnNonCrash: ev.boolean(r.OnNonCrash, what("on_non_crash"), false),
	}
	rec.Command, _ = ev.str(r.Command, what("command"))
	ev.required(r.Actions, fmt.Sprintf("Service %q recovery", s.Name), "actions")
	needsCommand := false
	for _, a := range ev.strs(r.Actions, what("actions")) {
		m := recoveryActionRe.FindStringSubmatch(a)
		if m == nil {
			ev.errorf(r.Actions.Range(), "Invalid recovery action", "%s: %q is not an action; write \"restart/5s\", \"reboot/1m\", \"run/10s\" or \"none\".", what("actions"), a)
			continue
		}
		act := RecoveryAction{Type: m[1]}
		if m[2] != "" {
			if m[1] == "none" {
				ev.errorf(r.Actions.Range(), "Invalid recovery action", "%s: \"none\" takes no delay.", what("actions"))
				continue
			}
			d, err := parseDuration(m[2])
			if err != nil {
				ev.errorf(r.Actions.Range(), "Invalid recovery action", "%s: %s.", what("actions"), err)
				continue
			}
			act.Delay = d
		}
		needsCommand = needsCommand || act.Type == "run"
		rec.Actions = append(rec.Actions, act)
	}
	if needsCommand && rec.Command == "" {
		ev.errorf(r.Actions.Range(), "Missing recovery command", "%s has a \"run\" action but the recovery block sets no command.", what("actions"))
	}
	if !needsCommand && rec.Command != "" {
		ev.errorf(r.Command.Range(), "Recovery command not used", "%s is set but no action is \"run\".", what("command"))
	}
	return rec
}

func (l *loader) serviceHealth(ev *evaluator, s *serviceShape) *Health {
	hs, ok := onlyOne(ev, s.Health, func(h *healthShape) hcl.Range { return h.DefRange }, fmt.Sprintf("service %q", s.Name), "health")
	if !ok {
		return nil
	}
	what := func(attr string) string { return fmt.Sprintf("service %q health %s", s.Name, attr) }
	h := &Health{
		Running:      ev.boolean(hs.Running, what("running"), false),
		Timeout:      ev.duration(hs.Timeout, what("timeout"), DefaultHealthTimeout),
		Interval:     ev.duration(hs.Interval, what("interval"), DefaultHealthInterval),
		HealthyAfter: ev.duration(hs.HealthyAfter, what("healthy_after"), 0),
	}
	kinds := 0
	if h.Running {
		kinds++
	}
	if u, ok := ev.str(hs.HTTP, what("http")); ok {
		kinds++
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			ev.errorf(hs.HTTP.Range(), "Invalid health URL", "%s must be an http:// or https:// URL such as \"http://localhost:8080/healthz\", not %q.", what("http"), u)
		}
		h.HTTP = u
	}
	if t, ok := ev.str(hs.TCP, what("tcp")); ok {
		kinds++
		host, port, err := net.SplitHostPort(t)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
			ev.errorf(hs.TCP.Range(), "Invalid health address", "%s must be HOST:PORT such as \"localhost:8080\", not %q.", what("tcp"), t)
		} else if host == "" {
			t = "localhost:" + port
		}
		h.TCP = t
	}
	if b, ok := ev.str(hs.BodyMatch, what("body_match")); ok {
		if _, err := regexp.Compile(b); err != nil {
			ev.errorf(hs.BodyMatch.Range(), "Invalid regular expression", "%s: %s.", what("body_match"), err)
		}
		if h.HTTP == "" {
			ev.errorf(hs.BodyMatch.Range(), "body_match without http", "%s only applies to an http check.", what("body_match"))
		}
		h.BodyMatch = b
	}
	switch {
	case kinds == 0:
		ev.errorf(hs.DefRange, "Missing health check", "Service %q health needs one of http, tcp or running = true.", s.Name)
	case kinds > 1:
		ev.errorf(hs.DefRange, "Several health checks", "Service %q health sets more than one of http, tcp and running; choose one.", s.Name)
	}
	switch {
	case h.Timeout == 0:
		ev.errorf(hs.Timeout.Range(), "Invalid duration", "%s must be longer than zero.", what("timeout"))
	case h.Interval == 0:
		ev.errorf(hs.Interval.Range(), "Invalid duration", "%s must be longer than zero.", what("interval"))
	case h.Interval > h.Timeout:
		ev.errorf(hs.Interval.Range(), "Interval longer than timeout", "%s (%s) is longer than the timeout (%s), so the check would run at most once.", what("interval"), h.Interval, h.Timeout)
	case h.HealthyAfter >= h.Timeout:
		ev.errorf(hs.HealthyAfter.Range(), "healthy_after not shorter than timeout", "%s (%s) must be shorter than the timeout (%s), or no service could ever pass.", what("healthy_after"), h.HealthyAfter, h.Timeout)
	}
	return h
}

var percentRe = regexp.MustCompile(`^([0-9]{1,3})%$`)

func (l *loader) serviceRollout(ev *evaluator, s *serviceShape, hosts int) Rollout {
	ro := Rollout{MaxParallel: 1, AutoRollback: true, RollbackScope: "batch"}
	r, ok := onlyOne(ev, s.Rollout, func(r *rolloutShape) hcl.Range { return r.DefRange }, fmt.Sprintf("service %q", s.Name), "rollout")
	if !ok {
		return ro
	}
	what := func(attr string) string { return fmt.Sprintf("service %q rollout %s", s.Name, attr) }
	if v := ev.value(r.MaxParallel, cty.DynamicPseudoType, what("max_parallel")); v != cty.NilVal {
		if v.HasMark(sensitive) {
			ev.errorf(r.MaxParallel.Range(), "Sensitive value not allowed here", "%s is shown in plans, so it cannot come from a sensitive value.", what("max_parallel"))
			return ro
		}
		switch v.Type() {
		case cty.Number:
			ro.MaxParallel = ev.integer(r.MaxParallel, what("max_parallel"), 1, 1, 10000)
		case cty.String:
			m := percentRe.FindStringSubmatch(v.AsString())
			n := 0
			if m != nil {
				n, _ = strconv.Atoi(m[1])
			}
			if n < 1 || n > 100 {
				ev.errorf(r.MaxParallel.Range(), "Invalid max_parallel", "%s must be a number of hosts or a percentage from 1%% to 100%%, not %q.", what("max_parallel"), v.AsString())
			} else {
				ro.MaxParallel, ro.MaxPercent = 0, n
			}
		default:
			ev.errorf(r.MaxParallel.Range(), "Invalid max_parallel", "%s must be a number of hosts or a percentage such as \"25%%\".", what("max_parallel"))
		}
	}
	ro.Canary = ev.integer(r.Canary, what("canary"), 0, 0, 10000)
	ro.CanaryPause = ev.boolean(r.CanaryPause, what("canary_pause"), false)
	ro.Pause = ev.duration(r.Pause, what("pause"), 0)
	ro.MaxFailures = ev.integer(r.MaxFailures, what("max_failures"), 0, 0, 10000)
	ro.AutoRollback = ev.boolean(r.AutoRollback, what("auto_rollback"), true)
	ro.RollbackScope = ev.oneOf(r.RollbackScope, what("rollback_scope"), "batch", "batch", "all")
	if ro.CanaryPause && ro.Canary == 0 {
		ev.errorf(r.CanaryPause.Range(), "canary_pause without canary", "%s waits after the canary hosts, but canary is 0.", what("canary_pause"))
	}
	if hosts > 0 && ro.Canary >= hosts {
		ev.warnf(r.Canary.Range(), "Every host is a canary", "%s is %d but the service has %d hosts, so no host is left for the rollout proper.", what("canary"), ro.Canary, hosts)
	}
	if !absent(r.RollbackScope) && !ro.AutoRollback {
		ev.errorf(r.RollbackScope.Range(), "rollback_scope without auto_rollback", "%s only applies when auto_rollback is true.", what("rollback_scope"))
	}
	return ro
}

var sizeRe = regexp.MustCompile(`^([0-9]+)\s*(B|KB|KiB|MB|MiB|GB|GiB)$`)

func parseSize(s string) (int64, error) {
	m := sizeRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size; write a number with a unit, such as \"10MB\" or \"512KB\"", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large", s)
	}
	mult := map[string]int64{"B": 1, "KB": 1 << 10, "KiB": 1 << 10, "MB": 1 << 20, "MiB": 1 << 20, "GB": 1 << 30, "GiB": 1 << 30}[m[2]]
	if n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is larger than 1 TiB", s)
	}
	return n * mult, nil
}

// serviceWorkDir is a wrapped program's working directory, which its
// account may modify; a native service's is the one the service manager
// gives every service (System32), which gsd cannot change.
func (l *loader) serviceWorkDir(ev *evaluator, s *serviceShape, mode string) string {
	v, ok := ev.str(s.WorkDir, fmt.Sprintf("service %q work_dir", s.Name))
	if !ok {
		return ""
	}
	if mode != ModeWrapped {
		ev.errorf(s.WorkDir.Range(), "work_dir needs wrapped mode", "Service %q sets work_dir, but the service manager starts every native service in System32; only a mode = \"wrapped\" service runs in a working directory gsd chooses. Remove work_dir, or have the program change directory itself.", s.Name)
		return ""
	}
	if err := validWindowsPath(v); err != nil {
		ev.errorf(s.WorkDir.Range(), "Invalid working directory", "Service %q work_dir %s.", s.Name, err)
	}
	return v
}

func (l *loader) serviceLog(ev *evaluator, s *serviceShape, mode string) *Log {
	lg, ok := onlyOne(ev, s.Log, func(r *logShape) hcl.Range { return r.DefRange }, fmt.Sprintf("service %q", s.Name), "log")
	if !ok {
		if mode == ModeWrapped {
			return &Log{MaxSize: DefaultLogMaxSize, Keep: DefaultLogKeep}
		}
		return nil
	}
	if mode != ModeWrapped {
		ev.errorf(lg.DefRange, "log block needs wrapped mode", "Service %q has a log block, but only mode = \"wrapped\" services have their output captured by gsd. A native service writes its own logs.", s.Name)
		return nil
	}
	what := func(attr string) string { return fmt.Sprintf("service %q log %s", s.Name, attr) }
	out := &Log{MaxSize: DefaultLogMaxSize, Keep: ev.integer(lg.Keep, what("keep"), DefaultLogKeep, 1, 1000)}
	if v, ok := ev.str(lg.MaxSize, what("max_size")); ok {
		n, err := parseSize(v)
		if err == nil && n < 4096 {
			err = fmt.Errorf("%q is below the minimum of 4KB", v)
		}
		if err != nil {
			ev.errorf(lg.MaxSize.Range(), "Invalid size", "%s: %s.", what("max_size"), err)
		} else {
			out.MaxSize = n
		}
	}
	if v, ok := ev.str(lg.Dir, what("dir")); ok {
		if err := validWindowsPath(v); err != nil {
			ev.errorf(lg.Dir.Range(), "Invalid log directory", "%s %s.", what("dir"), err)
		}
		out.Dir = v
	}
	return out
}
