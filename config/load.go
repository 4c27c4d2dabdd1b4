package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// Extensions gsd reads. Variable files have their own extension so that a
// directory of *.hcl files can be loaded whole without mistaking them for
// configuration.
const (
	ConfigExt   = ".hcl"
	VarsExt     = ".gsdvars"
	AutoVarsExt = ".auto" + VarsExt
	// DefaultVarsFile is loaded automatically from a configuration
	// directory, like terraform.tfvars.
	DefaultVarsFile = "gsd" + VarsExt
	// EnvPrefix names environment variables that set input variables:
	// GSD_VAR_version=1.2.3 sets var.version.
	EnvPrefix = "GSD_VAR_"
	// EnvironmentVar chooses the environment when -env does not.
	EnvironmentVar = "GSD_ENV"
)

// Options says what to load and where variable values come from.
type Options struct {
	// Paths are configuration files or directories (whose *.hcl files
	// are all read). Empty means the current directory.
	Paths []string
	// VarArgs are -var and -var-file options in command-line order;
	// later ones win.
	VarArgs []VarArg
	// Environ is the process environment as KEY=VALUE pairs.
	Environ []string
	// Sources, when set, is used instead of reading Paths: file name to
	// contents. Relative paths in it are taken from Dir.
	Sources map[string][]byte
	Dir     string
	// AllowUnsetVariables lets required variables stay unknown instead of
	// failing, as gsd validate does: it checks the configuration's shape
	// without needing secrets. Checks that need such a value are skipped.
	// It also lets hosts that declare environments be loaded without
	// choosing one: then every environment is checked at once.
	AllowUnsetVariables bool
	// Environment chooses the hosts of one environment and reads
	// ENVIRONMENT.gsdvars from the configuration's directories (-env);
	// empty means the GSD_ENV environment variable, if set.
	Environment string
}

// VarArg is one -var NAME=VALUE (File false) or -var-file PATH (File true).
type VarArg struct {
	File  bool
	Value string
}

// Load reads, evaluates and validates a configuration. It reports every
// problem it finds, not just the first; the Config is only usable when the
// diagnostics hold no error.
func Load(opts Options) (*Config, hcl.Diagnostics) {
	l := &loader{
		parser:    hclparse.NewParser(),
		opts:      opts,
		ev:        &evaluator{vars: map[string]bool{}, locals: map[string]bool{}},
		isVarFile: map[string]bool{},
	}
	cfg := l.load()
	diags := l.ev.diags
	// Variable files hold secrets by design, so their lines are never
	// offered for quoting in diagnostics; only configuration files are.
	cfg.Files = map[string]*hcl.File{}
	for name, f := range l.parser.Files() {
		if !l.isVarFile[name] {
			cfg.Files[name] = f
		}
	}
	sortDiagnostics(diags)
	return cfg, diags
}

type loader struct {
	parser *hclparse.Parser
	opts   Options
	ev     *evaluator

	files    []*sourceFile
	dirs     []string // the configuration's directories, in load order
	varFiles []string // auto-loaded variable files, in load order
	// environment is the one chosen; environments all the hosts declare.
	environment  string
	environments []string
	envVarFiles  []string
	// elsewhere are the hosts of other environments than the chosen one.
	elsewhere map[string]*Host
	// instances are the services a for_each service block stands for, by
	// the block's lower-case name.
	instances map[string][]string
	// functions are those every expression may call.
	functions map[string]function.Function
	variables map[string]*variableDecl
	hosts     []*hostDecl
	builds    []*buildDecl
	services  []*serviceDecl
	tasks     []*taskDecl
	isVarFile map[string]bool
	// serviceByKey finds a service by its case-insensitive Windows name.
	serviceByKey map[string]*serviceDecl
}

// sourceFile is one parsed configuration file and the evaluation context
// its expressions use (its directory decides relative paths).
type sourceFile struct {
	name  string
	dir   string
	shape fileShape
	ctx   *hcl.EvalContext
}

type variableDecl struct {
	shape     *variableShape
	file      *sourceFile
	ty        cty.Type
	value     cty.Value
	source    string
	valueRng  *hcl.Range
	sensitive bool
	desc      string
}

type hostDecl struct {
	shape       *hostShape
	file        *sourceFile
	environment string
}

type buildDecl struct {
	shape *buildShape
	file  *sourceFile
}

type serviceDecl struct {
	shape *serviceShape
	file  *sourceFile
	// For one instance of a for_each block: the block's name, the key
	// and the value (each.key, each.value); forEach is set for them all.
	block   string
	key     cty.Value
	value   cty.Value
	forEach bool
}

func (l *loader) load() *Config {
	cfg := &Config{}
	l.readFiles()
	if len(l.files) == 0 {
		return cfg
	}
	l.collect()
	l.chooseEnvironment()
	l.declareVariables()
	l.assignVariables()
	root := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": l.varObject()},
		Functions: baseFunctions(),
	}
	l.functions = root.Functions
	for _, f := range l.files {
		f.ctx = root.NewChild()
		f.ctx.Functions = fileFunctions(f.dir, root.Functions)
	}
	l.checkVariableValidations()
	root.Variables["local"] = l.evalLocals()

	cfg.Variables = l.variableModel()
	cfg.Environment, cfg.Environments = l.environment, l.environments
	cfg.Hosts = l.decodeHosts()
	cfg.Builds = l.decodeBuilds()
	cfg.Services = l.decodeServices(cfg)
	cfg.Tasks = l.decodeTasks(cfg)
	l.checkServices(cfg)
	return cfg
}

// readFiles finds and parses the configuration files and remembers the
// variable files a directory carries.
func (l *loader) readFiles() {
	if l.opts.Sources != nil {
		names := make([]string, 0, len(l.opts.Sources))
		for n := range l.opts.Sources {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if strings.HasSuffix(n, VarsExt) {
				continue
			}
			l.parse(n, l.opts.Sources[n], l.opts.Dir)
		}
		return
	}
	paths := l.opts.Paths
	if len(paths) == 0 {
		paths = []string{"."}
	}
	seen := map[string]bool{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			l.ev.diags = append(l.ev.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot read configuration",
				Detail:   fmt.Sprintf("%s: %s.", p, unwrapPathError(err)),
			})
			continue
		}
		var names []string
		if st.IsDir() {
			entries, err := os.ReadDir(p)
			if err != nil {
				l.ev.diags = append(l.ev.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read configuration", Detail: err.Error()})
				continue
			}
			var autos []string
			for _, e := range entries {
				n := e.Name()
				switch {
				case e.IsDir() || strings.HasPrefix(n, "."):
				case strings.HasSuffix(n, ConfigExt):
					names = append(names, filepath.Join(p, n))
				case n == DefaultVarsFile:
					l.varFiles = append(l.varFiles, filepath.Join(p, n))
				case strings.HasSuffix(n, AutoVarsExt):
					autos = append(autos, filepath.Join(p, n))
				}
			}
			sort.Strings(autos)
			l.varFiles = append(l.varFiles, autos...)
			if len(names) == 0 {
				l.ev.diags = append(l.ev.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "No configuration files",
					Detail:   fmt.Sprintf("The directory %s has no %s files. Run 'gsd init' to write a starter gsd.hcl.", p, ConfigExt),
				})
			}
			l.addDir(p)
		} else {
			names = []string{p}
			l.addDir(filepath.Dir(p))
		}
		for _, n := range names {
			clean := filepath.Clean(n)
			if seen[clean] {
				continue
			}
			seen[clean] = true
			src, err := os.ReadFile(n)
			if err != nil {
				l.ev.diags = append(l.ev.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read configuration", Detail: err.Error()})
				continue
			}
			dir, err := filepath.Abs(filepath.Dir(n))
			if err != nil {
				dir = filepath.Dir(n)
			}
			l.parse(n, src, dir)
		}
	}
}

func (l *loader) parse(name string, src []byte, dir string) {
	if d := checkNesting(name, src); d != nil {
		l.ev.diags = append(l.ev.diags, d)
		return
	}
	f, diags := l.parser.ParseHCL(src, name)
	l.ev.diags = append(l.ev.diags, diags...)
	if f == nil || diags.HasErrors() {
		return
	}
	sf := &sourceFile{name: name, dir: dir}
	diags = gohcl.DecodeBody(f.Body, nil, &sf.shape)
	l.ev.diags = append(l.ev.diags, diags...)
	l.files = append(l.files, sf)
}

// collect gathers the blocks of every file and reports duplicates.
func (l *loader) collect() {
	l.variables = map[string]*variableDecl{}
	l.serviceByKey = map[string]*serviceDecl{}
	hosts := map[string]hcl.Range{}
	builds := map[string]hcl.Range{}
	services := map[string]hcl.Range{}
	for _, f := range l.files {
		for _, v := range f.shape.Variables {
			if !l.checkName(v.Name, v.NameRange, "variable") {
				continue
			}
			if prev, dup := l.variables[v.Name]; dup {
				l.duplicate("variable", v.Name, v.DefRange, prev.shape.DefRange)
				continue
			}
			l.variables[v.Name] = &variableDecl{shape: v, file: f}
			l.ev.vars[v.Name] = true
		}
		for _, h := range f.shape.Hosts {
			if !l.checkName(h.Name, h.NameRange, "host") {
				continue
			}
			if prev, dup := hosts[h.Name]; dup {
				l.duplicate("host", h.Name, h.DefRange, prev)
				continue
			}
			hosts[h.Name] = h.DefRange
			l.hosts = append(l.hosts, &hostDecl{shape: h, file: f})
		}
		for _, b := range f.shape.Builds {
			if !l.checkName(b.Name, b.NameRange, "build") {
				continue
			}
			if prev, dup := builds[b.Name]; dup {
				l.duplicate("build", b.Name, b.DefRange, prev)
				continue
			}
			builds[b.Name] = b.DefRange
			l.builds = append(l.builds, &buildDecl{shape: b, file: f})
		}
		for _, s := range f.shape.Services {
			if !l.checkName(s.Name, s.NameRange, "service") {
				continue
			}
			// Windows service names are case-insensitive, so "API" and
			// "api" would be the same service on a host.
			key := strings.ToLower(s.Name)
			if prev, dup := services[key]; dup {
				l.duplicate("service", s.Name, s.DefRange, prev)
				continue
			}
			services[key] = s.DefRange
			d := &serviceDecl{shape: s, file: f}
			l.services = append(l.services, d)
			l.serviceByKey[key] = d
		}
	}
	// Tasks share the names of services: a task's firewall rule and
	// folders are named after it as a service's are.
	for _, f := range l.files {
		for _, t := range f.shape.Tasks {
			if !l.checkName(t.Name, t.NameRange, "task") {
				continue
			}
			key := strings.ToLower(t.Name)
			if prev, dup := services[key]; dup {
				l.ev.errorf(t.DefRange, "Duplicate name", "A service or task named %q is already defined at %s; a task's firewall rule and folders are named after it, as a service's are, so the names must differ.", t.Name, shortRange(prev))
				continue
			}
			services[key] = t.DefRange
			l.tasks = append(l.tasks, &taskDecl{shape: t, file: f})
		}
	}
}

func (l *loader) duplicate(kind, name string, rng, prev hcl.Range) {
	l.ev.errorf(rng, "Duplicate "+kind, "A %s named %q is already defined at %s.", kind, name, shortRange(prev))
}

func shortRange(r hcl.Range) string {
	return fmt.Sprintf("%s:%d,%d", r.Filename, r.Start.Line, r.Start.Column)
}

// evalLocals evaluates the locals of every file in dependency order, so a
// local may use another wherever it is written.
func (l *loader) evalLocals() cty.Value {
	type localDecl struct {
		attr *hcl.Attribute
		file *sourceFile
	}
	decls := map[string]*localDecl{}
	var names []string
	for _, f := range l.files {
		for _, lb := range f.shape.Locals {
			attrs, diags := lb.Body.JustAttributes()
			l.ev.diags = append(l.ev.diags, diags...)
			for _, a := range attrs {
				if prev, dup := decls[a.Name]; dup {
					l.duplicate("local value", a.Name, a.NameRange, prev.attr.NameRange)
					continue
				}
				decls[a.Name] = &localDecl{attr: a, file: f}
				names = append(names, a.Name)
				l.ev.locals[a.Name] = true
			}
		}
	}
	sort.Strings(names)
	values := map[string]cty.Value{}
	state := map[string]int{} // 0 new, 1 in progress, 2 done
	var stack []string
	var visit func(name string) bool
	visit = func(name string) bool {
		switch state[name] {
		case 2:
			return true
		case 1:
			i := 0
			for stack[i] != name {
				i++
			}
			cycle := append(append([]string{}, stack[i:]...), name)
			for j := range cycle {
				cycle[j] = "local." + cycle[j]
			}
			l.ev.errorf(decls[name].attr.Expr.Range(), "Cycle in local values",
				"These local values refer to each other: %s.", strings.Join(cycle, " → "))
			return false
		}
		state[name] = 1
		stack = append(stack, name)
		d := decls[name]
		ok := true
		for _, tr := range d.attr.Expr.Variables() {
			if tr.RootName() != "local" || len(tr) < 2 {
				continue
			}
			if n := traversalName(tr); decls[n] != nil {
				if !visit(n) {
					ok = false
					break
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = 2
		if !ok {
			values[name] = cty.DynamicVal
			return false
		}
		// Each local is evaluated in its own file's context (its directory
		// decides relative paths) with just the locals it uses, which the
		// visiting order has already computed. Passing only those keeps
		// many locals linear.
		uses := map[string]cty.Value{}
		for _, tr := range d.attr.Expr.Variables() {
			if n := traversalName(tr); tr.RootName() == "local" && decls[n] != nil {
				uses[n] = values[n]
			}
		}
		l.ev.ctx = d.file.ctx.NewChild()
		l.ev.ctx.Variables = map[string]cty.Value{"local": cty.ObjectVal(uses)}
		v := l.ev.value(d.attr.Expr, cty.DynamicPseudoType, "local."+name)
		if v == cty.NilVal {
			v = cty.DynamicVal
		}
		values[name] = v
		return true
	}
	for _, n := range names {
		visit(n)
	}
	l.ev.ctx = nil
	return cty.ObjectVal(values)
}

// checkName reports a block label that cannot be used in references.
func (l *loader) checkName(name string, rng hcl.Range, kind string) bool {
	if err := validIdentifier(name); err != nil {
		l.ev.errorf(rng, "Invalid "+kind+" name", "%q %s.", name, err)
		return false
	}
	return true
}

// within evaluates with the given file's context, where each.* has no
// value until a service sets it.
func (l *loader) within(f *sourceFile) *evaluator {
	l.ev.ctx = f.ctx
	l.ev.each = eachScope{}
	return l.ev
}

func (l *loader) addDir(dir string) {
	dir = filepath.Clean(dir)
	for _, d := range l.dirs {
		if d == dir {
			return
		}
	}
	l.dirs = append(l.dirs, dir)
}

func sortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil && b == nil:
			return false
		case a == nil:
			return true
		case b == nil:
			return false
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		case a.Start.Byte != b.Start.Byte:
			return a.Start.Byte < b.Start.Byte
		}
		return false
	})
}
