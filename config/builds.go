package config

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// sortedBy returns decls sorted by key, so the model and every diagnostic
// come out in a stable order.
func sortedBy[T any](decls []T, key func(T) string) []T {
	out := append([]T(nil), decls...)
	sort.SliceStable(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out
}

// buildEnvReserved are environment variables a build block sets through
// its own attributes; setting them in env would silently fight those.
var buildEnvReserved = map[string]string{"GOOS": "goos", "GOARCH": "goarch", "CGO_ENABLED": "cgo", "GOFLAGS": "tags and ldflags"}

func (l *loader) decodeBuilds() []*Build {
	var out []*Build
	for _, d := range sortedBy(l.builds, func(d *buildDecl) string { return d.shape.Name }) {
		s := d.shape
		ev := l.within(d.file)
		what := func(attr string) string { return fmt.Sprintf("build %q %s", s.Name, attr) }
		b := &Build{
			Name:      s.Name,
			GOOS:      ev.oneOf(s.GOOS, what("goos"), "windows", "windows"),
			GOARCH:    ev.oneOf(s.GOARCH, what("goarch"), "amd64", "amd64", "arm64", "386"),
			CGO:       ev.boolean(s.CGO, what("cgo"), false),
			Tags:      ev.strs(s.Tags, what("tags")),
			Env:       ev.strMap(s.Env, what("env")),
			DeclRange: s.DefRange,
		}
		b.LDFlags, _ = ev.str(s.LDFlags, what("ldflags"))
		ev.required(s.Package, fmt.Sprintf("Build %q", s.Name), "package")
		if pkg, ok := ev.str(s.Package, what("package")); ok {
			if pkg == "" || strings.ContainsAny(pkg, " \t\n") {
				ev.errorf(s.Package.Range(), "Invalid package", "%s must be a Go package path such as \"./cmd/api\", not %q.", what("package"), pkg)
			}
			b.Package = pkg
		}
		b.Dir = d.file.dir
		if dir, ok := ev.str(s.Dir, what("dir")); ok {
			b.Dir = resolvePath(d.file.dir, dir)
			if st, err := os.Stat(b.Dir); err != nil || !st.IsDir() {
				ev.errorf(s.Dir.Range(), "Build directory not found", "%s %q is not a directory.", what("dir"), dir)
			}
		}
		for _, t := range b.Tags {
			if t == "" || strings.ContainsAny(t, " ,\t") {
				ev.errorf(s.Tags.Range(), "Invalid build tag", "%s: %q is not a build tag.", what("tags"), t)
			}
		}
		for k := range b.Env {
			if attr, reserved := buildEnvReserved[k]; reserved {
				ev.errorf(s.Env.Range(), "Reserved build variable", "%s sets %s; use the build's %s attribute instead.", what("env"), k, attr)
			}
		}
		out = append(out, b)
	}
	return out
}
