package winrm_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers"
	"github.com/gsd-deploy/gsd/providers/internal/agentbuild"
	"github.com/gsd-deploy/gsd/providers/winrm"
	"github.com/gsd-deploy/gsd/providers/winrm/kerberos"
	"github.com/gsd-deploy/gsd/sandbox/pki"
	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
	"github.com/gsd-deploy/gsd/sandbox/winecmd"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

// shapedHelper is the argument that makes the test binary serve one
// sandbox host (WinRS over HTTPS and a PUT endpoint) inside a network
// namespace, behind a link shaped by tc.
const shapedHelper = "gsd-shaped-host"

// LAN is the shaped link: 1 Gbit/s with a token bucket, as the issue
// specifies (netem is not available on these kernels).
const lanRate = "1gbit"

func ip(b *testing.B, args ...string) {
	b.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		b.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// shapedHost starts a namespace with a veth pair shaped to lanRate in
// both directions and the helper serving in it. It returns the host's
// address.
func shapedHost(b *testing.B, wine *winecmd.Host, certFile, keyFile, keytabFile string) string {
	b.Helper()
	if os.Geteuid() != 0 {
		sandboxtest.Missing(b, "root (network namespace and tc for the shaped link)")
	}
	if _, err := exec.LookPath("tc"); err != nil {
		sandboxtest.Missing(b, "tc (apt: iproute2)")
	}
	k := 20 + os.Getpid()%200
	ns := fmt.Sprintf("gsdprov%d", os.Getpid())
	outer, inner := fmt.Sprintf("gpv%da", os.Getpid()%100000), fmt.Sprintf("gpv%db", os.Getpid()%100000)
	hostIP, localIP := fmt.Sprintf("10.214.%d.2", k), fmt.Sprintf("10.214.%d.1", k)
	ip(b, "netns", "add", ns)
	b.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	ip(b, "link", "add", outer, "type", "veth", "peer", "name", inner)
	b.Cleanup(func() { _ = exec.Command("ip", "link", "del", outer).Run() })
	ip(b, "link", "set", inner, "netns", ns)
	ip(b, "addr", "add", localIP+"/30", "dev", outer)
	ip(b, "link", "set", outer, "up")
	ip(b, "-n", ns, "addr", "add", hostIP+"/30", "dev", inner)
	ip(b, "-n", ns, "link", "set", inner, "up")
	ip(b, "-n", ns, "link", "set", "lo", "up")
	for _, dev := range [][]string{{"tc", "qdisc", "add", "dev", outer}, {"ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", inner}} {
		args := append(dev[1:], "root", "tbf", "rate", lanRate, "burst", "1mb", "latency", "10ms")
		if out, err := exec.Command(dev[0], args...).CombinedOutput(); err != nil {
			b.Fatalf("%s %s: %v: %s", dev[0], strings.Join(args, " "), err, out)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe, shapedHelper, hostIP, wine.Prefix, wine.Launcher, certFile, keyFile, keytabFile)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		b.Fatalf("the shaped host did not start: %q %v", line, err)
	}
	return hostIP
}

// serveShapedHost is the helper's body: WinRS on :5985 (HTTP, the
// default way in, messages encrypted by NTLM or Kerberos, whose service
// keys the keytab holds) and :5986 (HTTPS), and the PUT ceiling on :8443
// (HTTPS), with the given certificate.
func serveShapedHost(args []string) int {
	addr, prefix, launcher, certFile, keyFile, keytabFile := args[0], args[1], args[2], args[3], args[4], args[5]
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kt, err := keytab.Load(keytabFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := winrs.New(winrs.Config{Machine: "SHAPED", User: testUser, Password: testPassword, Runner: &winecmd.Host{Prefix: prefix, Launcher: launcher}, Basic: true,
		Kerberos: &kerberos.Acceptor{Keytab: kt}})
	if err := srv.SetCertificate(&cert); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	wl, err := tls.Listen("tcp", net.JoinHostPort(addr, "5986"), tlsConfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pl, err := tls.Listen("tcp", net.JoinHostPort(addr, "8443"), tlsConfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	hl, err := net.Listen("tcp", net.JoinHostPort(addr, "5985"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() { _ = (&http.Server{Handler: srv, ConnContext: srv.ConnContext}).Serve(wl) }()
	go func() { _ = (&http.Server{Handler: srv, ConnContext: srv.ConnContext}).Serve(hl) }()
	go func() { _ = (&http.Server{Handler: putHandler(os.TempDir())}).Serve(pl) }()
	fmt.Println("ready")
	select {}
}

// putHandler hashes a PUT body and writes it to a file, as the agent
// does with an artifact.
func putHandler(dir string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.CreateTemp(dir, "gsd-put-")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer os.Remove(f.Name())
		defer f.Close()
		sum := sha256.New()
		if _, err := io.Copy(io.MultiWriter(f, sum), r.Body); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_ = f.Sync()
		fmt.Fprintf(w, "%x", sum.Sum(nil))
	})
}

// BenchmarkUploadShaped is BenchmarkUpload across a link shaped to a
// realistic LAN: one sandbox host in its own network namespace behind a
// veth pair with a tbf qdisc of 1 Gbit/s each way.
func BenchmarkUploadShaped(b *testing.B) {
	realm := kerberosRealm(b)
	wine := sandboxtest.WineHost(b)
	ca, err := pki.NewCA("gsd providers shaped-link CA")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	keytabFile := filepath.Join(dir, "host.keytab")
	hostKeys, err := realm.hostKeytab.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	// The certificate names the namespace's address, chosen as
	// shapedHost chooses it.
	hostIP := fmt.Sprintf("10.214.%d.2", 20+os.Getpid()%200)
	certPEM, keyPEM, err := ca.Issue("shaped-host", []string{hostIP})
	if err != nil {
		b.Fatal(err)
	}
	for f, content := range map[string][]byte{certFile: certPEM, keyFile: keyPEM, caFile: ca.CertPEM, keytabFile: hostKeys} {
		if err := os.WriteFile(f, content, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	if got := shapedHost(b, wine, certFile, keyFile, keytabFile); got != hostIP {
		b.Fatalf("address %s, want %s", got, hostIP)
	}
	cfg := &config.Host{Name: "lan1", Address: hostIP, WinRM: &config.WinRM{
		HTTPS: true, Port: 5986, Auth: "basic", User: testUser,
		Password: config.Text{Value: testPassword, Sensitive: true}, CACert: caFile, Timeout: time.Minute,
	}}
	// The default way in: HTTP on 5985, NTLM, messages encrypted.
	sealedCfg := &config.Host{Name: "lan1", Address: hostIP, WinRM: &config.WinRM{
		Port: 5985, User: testUser, Password: config.Text{Value: testPassword, Sensitive: true}, Timeout: time.Minute,
	}}
	// The same sealed with a Kerberos session key, from the ticket cache.
	kerberosCfg := &config.Host{Name: "lan1", Address: hostIP, WinRM: &config.WinRM{
		Port: 5985, Auth: config.AuthKerberos, SPN: testSPN, KRB5Conf: realm.Config, CCache: realm.ccache, Timeout: time.Minute,
	}}
	agent, err := providers.AgentFromFile(agentbuild.Path(b, agentbuild.Current))
	if err != nil {
		b.Fatal(err)
	}
	// One agent session at a time: staging takes the host's lock.
	connect := func(cfg *config.Host) (*winrm.Transport, *providers.Host) {
		tr, err := winrm.New(cfg, winrm.Options{})
		if err != nil {
			b.Fatal(err)
		}
		host, err := providers.Connect(context.Background(), "lan1", tr, providers.Options{Agent: agent})
		if err != nil {
			b.Fatal(err)
		}
		return tr, host
	}
	contents := map[string][]byte{"go-binary": goBinaryBytes(b, benchSize), "random": randomBytes(b, benchSize)}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	putClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	for _, kind := range []string{"go-binary", "random"} {
		for _, way := range []struct {
			name string
			cfg  *config.Host
		}{{"gsd-winrm-http-encrypted", sealedCfg}, {"gsd-winrm-http-kerberos-encrypted", kerberosCfg}, {"gsd-winrm-https", cfg}} {
			b.Run(way.name+"/"+kind, func(b *testing.B) {
				_, host := connect(way.cfg)
				defer host.Close()
				timeStages(b, host, "lan-"+way.name+"-"+kind, contents[kind])
			})
		}
		b.Run("https-put-ceiling/"+kind, func(b *testing.B) {
			timePuts(b, putClient, "https://"+net.JoinHostPort(hostIP, "8443")+"/upload", contents[kind])
		})
	}
	tr, sealedHost := connect(sealedCfg)
	defer sealedHost.Close()
	b.Run("echo-per-chunk", func(b *testing.B) {
		timeEchoChunks(b, tr, contents["random"][:128<<10])
	})
	// The inputs go first: a live heap of 100 MB would let the garbage
	// collector wait for 100 MB more. The host runs in another process,
	// so the heap is gsd's alone.
	contents = nil
	b.Run("gsd-peak-heap-200MB", func(b *testing.B) { benchPeakHeap(b, sealedHost) })
}
