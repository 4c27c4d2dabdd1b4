package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/hashicorp/hcl/v2"
)

// decodeKerberos reads the Kerberos settings of a winrm block and checks
// that they describe one identity gsd can log in as: the ticket cache a
// kinit left (no user), a user with a keytab, or a user with a password.
// Settings the chosen auth never reads are errors, as elsewhere.
func (l *loader) decodeKerberos(ev *evaluator, d *hostDecl, w *winrmShape, c *WinRM, address string) {
	name := d.shape.Name
	what := func(attr string) string { return fmt.Sprintf("host %q winrm %s", name, attr) }
	if !c.UsesKerberos() {
		for _, a := range []struct {
			expr hcl.Expression
			attr string
		}{{w.SPN, "spn"}, {w.Realm, "realm"}, {w.KRB5Conf, "krb5_conf"}, {w.Keytab, "keytab"}, {w.CCache, "ccache"}} {
			if !absent(a.expr) {
				ev.errorf(a.expr.Range(), "Kerberos setting without Kerberos",
					"Host %q winrm uses %s authentication, so %s is never read. Set auth = \"kerberos\" (or \"negotiate\": Kerberos, and NTLM where no Kerberos ticket can be had), or remove %s.",
					name, strings.ToUpper(c.Auth[:1])+c.Auth[1:], a.attr, a.attr)
			}
		}
		return
	}
	if absent(w.SPN) {
		c.SPN = DefaultSPN(address)
		if c.SPN == "" && address != "" {
			at := w.Auth.Range()
			if absent(w.Auth) {
				at = w.DefRange
			}
			ev.errorf(at, "Missing spn", "Host %q is reached by the IP address %s, which names no Kerberos service principal. Set spn = \"HTTP/<the host's DNS name>\" (on the domain, setspn -L <computer name> lists the names the host registered), or set address to that name.", name, address)
		}
	} else if s, ok := ev.str(w.SPN, what("spn")); ok {
		if err := validSPN(s); err != nil {
			ev.errorf(w.SPN.Range(), "Invalid spn", "%s %s.", what("spn"), err)
		}
		c.SPN = s
	}
	userRealm := ""
	if c.User != "" {
		userRealm = principalRealm(c.User)
	}
	if r, ok := ev.str(w.Realm, what("realm")); ok {
		c.Realm = r
		switch {
		case r == "" || strings.ContainsAny(r, " \t/@\\"):
			ev.errorf(w.Realm.Range(), "Invalid realm", "%s %q is not a realm name; a domain's realm is its DNS name in capitals, such as \"CORP.EXAMPLE.COM\".", what("realm"), r)
		case userRealm != "":
			ev.errorf(w.Realm.Range(), "Realm given twice", "Host %q winrm names the realm both in user (%q) and in realm. Keep one.", name, c.User)
		case r != strings.ToUpper(r):
			ev.warnf(w.Realm.Range(), "Realm not in capitals", "%s is %q, but realms are compared case by case and a domain's realm is its DNS name in capitals (%q); the KDC will not know %q unless it was made so.", what("realm"), r, strings.ToUpper(r), r)
		}
		if absent(w.User) {
			ev.errorf(w.Realm.Range(), "realm without user", "Host %q winrm names a realm but no user: realm is the realm of user, and a ticket cache carries its own (the realm of the kinit). Remove realm, or set user and password (or keytab) to log in as user@%s.", name, strings.ToUpper(r))
		}
	}
	if p, ok := ev.str(w.KRB5Conf, what("krb5_conf")); ok {
		c.KRB5Conf = resolvePath(d.file.dir, p)
		checkKRB5Conf(ev, w.KRB5Conf.Range(), p, c.KRB5Conf, firstOf(userRealm, c.Realm))
	}
	if p, ok := ev.str(w.Keytab, what("keytab")); ok {
		c.Keytab = resolvePath(d.file.dir, p)
		switch {
		case absent(w.User):
			ev.errorf(w.Keytab.Range(), "keytab without user", "Host %q winrm has a keytab but no user: a keytab may hold the keys of several principals. Set user = \"<name>@<REALM>\" to say whose keys gsd logs in with.", name)
		case !absent(w.Password):
			ev.errorf(w.Keytab.Range(), "keytab with password", "Host %q winrm gives both a keytab and a password to log in as %q. Keep one: the keytab for unattended runs (CI), or the password.", name, c.User)
		default:
			checkKeytab(ev, w.Keytab.Range(), p, c.Keytab, c.User, firstOf(userRealm, c.Realm))
		}
	}
	if p, ok := ev.str(w.CCache, what("ccache")); ok {
		c.CCache = l.ccachePath(ev, d, w.CCache.Range(), p, what("ccache"))
		if !absent(w.Password) || !absent(w.Keytab) {
			ev.errorf(w.CCache.Range(), "ccache with a login", "Host %q winrm logs in itself (with a password or keytab), so the ticket cache is never read. Remove ccache, or remove user, password and keytab to use the tickets of a kinit.", name)
		}
	}
	switch {
	case absent(w.User) && !absent(w.Password):
		ev.errorf(w.Password.Range(), "Password without user", "Host %q winrm has a Kerberos password but no user to log in as. Set user = \"<name>@<REALM>\", or remove password to use the ticket cache of a kinit.", name)
	case !absent(w.User) && absent(w.Password) && absent(w.Keytab):
		ev.errorf(w.User.Range(), "User without password or keytab", "Host %q winrm names user %q for Kerberos but gives nothing to log in with. Add password (or keytab, for CI), or remove user to use the ticket cache of a kinit, whose principal is the user.", name, c.User)
	}
}

// validSPN checks a service principal's form: service/host[@REALM].
func validSPN(s string) error {
	svc, rest, ok := strings.Cut(s, "/")
	host, _, _ := strings.Cut(rest, "@")
	switch {
	case !ok || svc == "" || host == "":
		return fmt.Errorf("%q is not a service principal; write it as service/host, such as \"HTTP/web1.corp.example\"", s)
	case strings.ContainsAny(s, " \t\\"):
		return fmt.Errorf("%q holds a space or backslash, which no service principal does", s)
	}
	return nil
}

// principalRealm is the realm a user name carries: "user@REALM" or
// "REALM\user".
func principalRealm(user string) string {
	if i := strings.LastIndex(user, "@"); i >= 0 {
		return user[i+1:]
	}
	if r, _, ok := strings.Cut(user, `\`); ok {
		return r
	}
	return ""
}

// principalName is a user name without its realm.
func principalName(user string) string {
	if i := strings.LastIndex(user, "@"); i >= 0 {
		return user[:i]
	}
	if _, n, ok := strings.Cut(user, `\`); ok {
		return n
	}
	return user
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// checkKRB5Conf reads a krb5.conf as gsd's Kerberos client will, and
// when the realm is known, checks that the file says where its KDC is.
func checkKRB5Conf(ev *evaluator, at hcl.Range, shown, path, realm string) {
	conf, err := krbconfig.Load(path)
	var unsupported krbconfig.UnsupportedDirective
	if err != nil && !errors.As(err, &unsupported) {
		if _, statErr := os.Stat(path); statErr != nil {
			ev.errorf(at, "Cannot read krb5.conf", "%s: %s.", shown, unwrapPathError(statErr))
			return
		}
		ev.errorf(at, "Invalid krb5.conf", "%s: %s.", shown, err)
		return
	}
	if realm == "" {
		realm = conf.LibDefaults.DefaultRealm
	}
	if realm == "" || conf.LibDefaults.DNSLookupKDC {
		return
	}
	var known []string
	for _, r := range conf.Realms {
		if r.Realm == realm {
			return
		}
		known = append(known, r.Realm)
	}
	sort.Strings(known)
	ev.errorf(at, "Realm unknown to krb5.conf", "%s names no KDC for the realm %s (it knows %s) and does not look KDCs up in DNS. Add the realm to its [realms] section, or correct the realm.", shown, realm, quoteListOrNone(known))
}

func quoteListOrNone(words []string) string {
	if len(words) == 0 {
		return "none"
	}
	return quoteList(words)
}

// checkKeytab reads a keytab and checks that it holds a key for user.
func checkKeytab(ev *evaluator, at hcl.Range, shown, path, user, realm string) {
	b, err := os.ReadFile(path)
	if err != nil {
		ev.errorf(at, "Cannot read keytab", "%s: %s.", shown, unwrapPathError(err))
		return
	}
	kt := keytab.New()
	if err := kt.Unmarshal(b); err != nil {
		ev.errorf(at, "Invalid keytab", "%s is not a keytab (%s); make one with ktutil, kadmin's ktadd or, on a domain, ktpass.", shown, err)
		return
	}
	want := principalName(user)
	var held []string
	for _, e := range kt.Entries {
		p := strings.Join(e.Principal.Components, "/")
		if p == want && (realm == "" || e.Principal.Realm == realm) {
			return
		}
		held = append(held, p+"@"+e.Principal.Realm)
	}
	sort.Strings(held)
	held = slices.Compact(held)
	ev.errorf(at, "Keytab without the user's key", "%s holds no key for %s (it holds %s). Export the user's keys into it (kadmin: ktadd -norandkey %s; a domain: ktpass), or correct user.", shown, user, quoteListOrNone(held), want)
}

// ccachePath resolves a ticket cache name. gsd reads caches kept in
// files, the kind kinit makes unless told otherwise.
func (l *loader) ccachePath(ev *evaluator, d *hostDecl, at hcl.Range, p, what string) string {
	kind, rest, ok := strings.Cut(p, ":")
	switch {
	case ok && kind == "FILE":
		p = rest
	case ok && len(kind) > 1 && strings.ToUpper(kind) == kind:
		ev.errorf(at, "Ticket cache not in a file", "%s is a %s cache, which gsd cannot read: it reads ticket caches kept in files. Run kinit -c FILE:<path> and set ccache to that path.", what, kind)
		return p
	}
	return resolvePath(d.file.dir, p)
}
