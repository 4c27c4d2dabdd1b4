package config

import (
	"reflect"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// The types in this file are the HCL shape of a gsd file, as gohcl decodes
// it. Every attribute is kept as an expression so that it can be evaluated
// later with the right context, its sensitivity tracked, and each error
// pointed at the exact value. The typed model the rest of gsd uses is in
// model.go.

type fileShape struct {
	Variables []*variableShape `hcl:"variable,block"`
	Locals    []*localsShape   `hcl:"locals,block"`
	Hosts     []*hostShape     `hcl:"host,block"`
	Builds    []*buildShape    `hcl:"build,block"`
	Services  []*serviceShape  `hcl:"service,block"`
	Tasks     []*taskShape     `hcl:"task,block"`
}

type variableShape struct {
	Name        string             `hcl:"name,label"`
	Type        hcl.Expression     `hcl:"type,optional"`
	Default     hcl.Expression     `hcl:"default,optional"`
	Description hcl.Expression     `hcl:"description,optional"`
	Sensitive   hcl.Expression     `hcl:"sensitive,optional"`
	Validations []*validationShape `hcl:"validation,block"`
	DefRange    hcl.Range          `hcl:",def_range"`
	NameRange   hcl.Range          `hcl:"name,label_range"`
}

type validationShape struct {
	Condition    hcl.Expression `hcl:"condition"`
	ErrorMessage hcl.Expression `hcl:"error_message"`
	DefRange     hcl.Range      `hcl:",def_range"`
}

type localsShape struct {
	Body hcl.Body `hcl:",remain"`
}

type hostShape struct {
	Name    string         `hcl:"name,label"`
	Address hcl.Expression `hcl:"address"`
	Port    hcl.Expression `hcl:"port,optional"`
	Labels  hcl.Expression `hcl:"labels,optional"`
	Vars    hcl.Expression `hcl:"vars,optional"`
	// Environment is a constant: it decides which hosts and which
	// variable file a run uses, before any variable has a value.
	Environment hcl.Expression `hcl:"environment,optional"`
	Transport   hcl.Expression `hcl:"transport,optional"`
	WinRM       []*winrmShape  `hcl:"winrm,block"`
	SSH         []*sshShape    `hcl:"ssh,block"`
	DefRange    hcl.Range      `hcl:",def_range"`
	NameRange   hcl.Range      `hcl:"name,label_range"`
}

type winrmShape struct {
	HTTPS            hcl.Expression `hcl:"https,optional"`
	Port             hcl.Expression `hcl:"port,optional"`
	Auth             hcl.Expression `hcl:"auth,optional"`
	User             hcl.Expression `hcl:"user,optional"`
	Password         hcl.Expression `hcl:"password,optional"`
	CACert           hcl.Expression `hcl:"ca_cert,optional"`
	Insecure         hcl.Expression `hcl:"insecure,optional"`
	AllowUnencrypted hcl.Expression `hcl:"allow_unencrypted,optional"`
	Timeout          hcl.Expression `hcl:"timeout,optional"`
	SPN              hcl.Expression `hcl:"spn,optional"`
	Realm            hcl.Expression `hcl:"realm,optional"`
	KRB5Conf         hcl.Expression `hcl:"krb5_conf,optional"`
	Keytab           hcl.Expression `hcl:"keytab,optional"`
	CCache           hcl.Expression `hcl:"ccache,optional"`
	DefRange         hcl.Range      `hcl:",def_range"`
}

type sshShape struct {
	User       hcl.Expression `hcl:"user"`
	PrivateKey hcl.Expression `hcl:"private_key,optional"`
	Password   hcl.Expression `hcl:"password,optional"`
	HostKey    hcl.Expression `hcl:"host_key,optional"`
	KnownHosts hcl.Expression `hcl:"known_hosts,optional"`
	Port       hcl.Expression `hcl:"port,optional"`
	Timeout    hcl.Expression `hcl:"timeout,optional"`
	DefRange   hcl.Range      `hcl:",def_range"`
}

type buildShape struct {
	Name      string         `hcl:"name,label"`
	Package   hcl.Expression `hcl:"package"`
	Dir       hcl.Expression `hcl:"dir,optional"`
	GOOS      hcl.Expression `hcl:"goos,optional"`
	GOARCH    hcl.Expression `hcl:"goarch,optional"`
	LDFlags   hcl.Expression `hcl:"ldflags,optional"`
	Tags      hcl.Expression `hcl:"tags,optional"`
	CGO       hcl.Expression `hcl:"cgo,optional"`
	Env       hcl.Expression `hcl:"env,optional"`
	DefRange  hcl.Range      `hcl:",def_range"`
	NameRange hcl.Range      `hcl:"name,label_range"`
}

type serviceShape struct {
	Name        string           `hcl:"name,label"`
	ForEach     hcl.Expression   `hcl:"for_each,optional"`
	Hosts       hcl.Expression   `hcl:"hosts"`
	Binary      hcl.Expression   `hcl:"binary"`
	Version     hcl.Expression   `hcl:"version,optional"`
	Mode        hcl.Expression   `hcl:"mode,optional"`
	DisplayName hcl.Expression   `hcl:"display_name,optional"`
	Description hcl.Expression   `hcl:"description,optional"`
	Args        hcl.Expression   `hcl:"args,optional"`
	Start       hcl.Expression   `hcl:"start,optional"`
	DependsOn   hcl.Expression   `hcl:"depends_on,optional"`
	Env         hcl.Expression   `hcl:"env,optional"`
	StopTimeout hcl.Expression   `hcl:"stop_timeout,optional"`
	Adopt       hcl.Expression   `hcl:"adopt,optional"`
	WorkDir     hcl.Expression   `hcl:"work_dir,optional"`
	Account     []*accountShape  `hcl:"account,block"`
	Files       []*fileBlock     `hcl:"file,block"`
	Recovery    []*recoveryShape `hcl:"recovery,block"`
	Health      []*healthShape   `hcl:"health,block"`
	Rollout     []*rolloutShape  `hcl:"rollout,block"`
	Log         []*logShape      `hcl:"log,block"`
	Firewall    []*firewallShape `hcl:"firewall,block"`
	DefRange    hcl.Range        `hcl:",def_range"`
	NameRange   hcl.Range        `hcl:"name,label_range"`
}

type accountShape struct {
	Name     hcl.Expression `hcl:"name"`
	Password hcl.Expression `hcl:"password,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}

type fileBlock struct {
	Name      string         `hcl:"name,label"`
	Content   hcl.Expression `hcl:"content,optional"`
	Source    hcl.Expression `hcl:"source,optional"`
	Path      hcl.Expression `hcl:"path,optional"`
	OnChange  hcl.Expression `hcl:"on_change,optional"`
	DefRange  hcl.Range      `hcl:",def_range"`
	NameRange hcl.Range      `hcl:"name,label_range"`
}

type recoveryShape struct {
	Actions    hcl.Expression `hcl:"actions"`
	ResetAfter hcl.Expression `hcl:"reset_after,optional"`
	OnNonCrash hcl.Expression `hcl:"on_non_crash,optional"`
	Command    hcl.Expression `hcl:"command,optional"`
	DefRange   hcl.Range      `hcl:",def_range"`
}

type healthShape struct {
	HTTP         hcl.Expression `hcl:"http,optional"`
	TCP          hcl.Expression `hcl:"tcp,optional"`
	Running      hcl.Expression `hcl:"running,optional"`
	BodyMatch    hcl.Expression `hcl:"body_match,optional"`
	Timeout      hcl.Expression `hcl:"timeout,optional"`
	Interval     hcl.Expression `hcl:"interval,optional"`
	HealthyAfter hcl.Expression `hcl:"healthy_after,optional"`
	DefRange     hcl.Range      `hcl:",def_range"`
}

type rolloutShape struct {
	MaxParallel   hcl.Expression `hcl:"max_parallel,optional"`
	Canary        hcl.Expression `hcl:"canary,optional"`
	CanaryPause   hcl.Expression `hcl:"canary_pause,optional"`
	Pause         hcl.Expression `hcl:"pause,optional"`
	MaxFailures   hcl.Expression `hcl:"max_failures,optional"`
	AutoRollback  hcl.Expression `hcl:"auto_rollback,optional"`
	RollbackScope hcl.Expression `hcl:"rollback_scope,optional"`
	DefRange      hcl.Range      `hcl:",def_range"`
}

type logShape struct {
	Dir      hcl.Expression `hcl:"dir,optional"`
	MaxSize  hcl.Expression `hcl:"max_size,optional"`
	Keep     hcl.Expression `hcl:"keep,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}

// ServiceAttributes lists every attribute a service block accepts, as
// paths such as "display_name" or "recovery.command", read from the
// schema itself so the list cannot fall behind it. Tests use it to prove
// that each one reaches the host.
func ServiceAttributes() []string {
	return schemaAttributes(reflect.TypeOf(serviceShape{}), "")
}

func schemaAttributes(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("hcl")
		name, kind, _ := strings.Cut(tag, ",")
		switch {
		case name == "" || kind == "label" || kind == "label_range" || kind == "remain":
		case kind == "block":
			elem := t.Field(i).Type
			for elem.Kind() == reflect.Slice || elem.Kind() == reflect.Pointer {
				elem = elem.Elem()
			}
			out = append(out, schemaAttributes(elem, prefix+name+".")...)
		default:
			out = append(out, prefix+name)
		}
	}
	return out
}

// walkExpressions calls fn with every attribute expression of a decoded
// block, its nested blocks' included.
func walkExpressions(block any, fn func(hcl.Expression)) {
	walkValue(reflect.ValueOf(block), fn)
}

var exprType = reflect.TypeOf((*hcl.Expression)(nil)).Elem()

func walkValue(v reflect.Value, fn func(hcl.Expression)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walkValue(v.Elem(), fn)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			walkValue(v.Index(i), fn)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if f.Type() == exprType {
				if e, ok := f.Interface().(hcl.Expression); ok && e != nil {
					fn(e)
				}
				continue
			}
			walkValue(f, fn)
		}
	}
}
