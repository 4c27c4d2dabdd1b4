package winrm_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers"
	"github.com/gsd-deploy/gsd/providers/internal/agentbuild"
	"github.com/gsd-deploy/gsd/providers/transport"
	"github.com/gsd-deploy/gsd/providers/winrm"
)

// benchSize is the upload the benchmark names: 50 MB.
const benchSize = 50 << 20

// goBinaryBytes fills size bytes with copies of a real Go binary, so the
// content is what gsd really uploads.
func goBinaryBytes(b *testing.B, size int) []byte {
	bin, err := os.ReadFile(agentbuild.Path(b, agentbuild.Current))
	if err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 0, size)
	for len(out) < size {
		out = append(out, bin[:min(len(bin), size-len(out))]...)
	}
	return out
}

func randomBytes(b *testing.B, size int) []byte {
	out := make([]byte, size)
	if _, err := rand.Read(out); err != nil {
		b.Fatal(err)
	}
	return out
}

func artifactOf(name string, content []byte) providers.Artifact {
	sum := sha256.Sum256(content)
	return providers.Artifact{Name: name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(content)), nil
	}}
}

// uploadSeq makes every benchmark artifact new: the testing package runs
// a benchmark once with b.N = 1 before the measured run, and a repeated
// artifact would be found on the host and cost nothing.
var uploadSeq atomic.Uint64

// fresh returns a copy of content that no earlier upload had.
func fresh(content []byte) []byte {
	out := append([]byte(nil), content...)
	n := uploadSeq.Add(1)
	for i := 0; i < 8; i++ {
		out[i] ^= byte(n >> (8 * i))
	}
	return out
}

func reportMBps(b *testing.B, bytes int64, d time.Duration) {
	b.ReportMetric(float64(bytes)/(1<<20)/d.Seconds(), "MB/s")
}

// BenchmarkUpload compares, on one sandbox host over loopback: gsd's
// upload (agent stage over WinRS Send) the default way in, HTTP with
// every message encrypted with the NTLM session key, the same sealed
// with a Kerberos session key (AES256) instead, and over HTTPS; a plain
// HTTPS PUT of the same bytes to a Go server (the ceiling); and the
// classic method of one `echo <base64> >> file` command per chunk. It
// also reports gsd's peak heap while uploading 200 MB (the in-process
// server included).
func BenchmarkUpload(b *testing.B) {
	realm := kerberosRealm(b)
	h := startHost(b, hostOptions{configure: realm.domainMember(nil)})
	agent, err := providers.AgentFromFile(agentbuild.Path(b, agentbuild.Current))
	if err != nil {
		b.Fatal(err)
	}
	// One agent session at a time: staging takes the host's lock.
	session := func(cfg *config.Host) (*winrm.Transport, *providers.Host) {
		tr, err := winrm.New(cfg, winrm.Options{})
		if err != nil {
			b.Fatal(err)
		}
		host, err := providers.Connect(context.Background(), "web1", tr, providers.Options{Agent: agent})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := host.Facts(context.Background()); err != nil {
			b.Fatal(err)
		}
		return tr, host
	}
	contents := map[string][]byte{"go-binary": goBinaryBytes(b, benchSize), "random": randomBytes(b, benchSize)}

	for _, kind := range []string{"go-binary", "random"} {
		for _, way := range []struct {
			name string
			cfg  *config.Host
		}{
			{"gsd-winrm-http-encrypted", h.config(defaultScheme)},
			{"gsd-winrm-http-kerberos-encrypted", h.kerberosConfig(realm, false)},
			{"gsd-winrm-https", h.config(httpsBasic)},
		} {
			b.Run(way.name+"/"+kind, func(b *testing.B) {
				_, host := session(way.cfg)
				defer host.Close()
				timeStages(b, host, way.name+"-"+kind, contents[kind])
			})
		}
		b.Run("https-put-ceiling/"+kind, func(b *testing.B) {
			url, client := putServer(b)
			timePuts(b, client, url, contents[kind])
		})
	}

	tr, host := session(h.config(defaultScheme))
	defer host.Close()
	b.Run("echo-per-chunk", func(b *testing.B) {
		// winrmcp's method: each chunk is a command line of base64
		// appended to a file. It is slow, so a slice is timed and the
		// rate reported; that is all the comparison needs.
		// Base64 characters per command: winrmcp's size, well inside
		// cmd.exe's 8191-character line.
		timeEchoChunks(b, tr, contents["random"][:256<<10])
	})

	contents = nil // see BenchmarkUploadShaped
	b.Run("gsd-peak-heap-200MB", func(b *testing.B) { benchPeakHeap(b, host) })
}

// timeStages stages content b.N times as new artifacts (each made unique,
// so none is already on the host) and reports gsd's upload rate.
func timeStages(b *testing.B, host *providers.Host, prefix string, content []byte) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		art := artifactOf(fmt.Sprintf("%s-%d.exe", prefix, i), fresh(content))
		start := time.Now()
		if _, err := host.Stage(context.Background(), art); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	reportMBps(b, int64(b.N)*int64(len(content)), total)
}

// timePuts PUTs body b.N times over HTTPS and reports MB/s: the ceiling a
// WinRM upload is measured against.
func timePuts(b *testing.B, client *http.Client, url string, body []byte) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		total += time.Since(start)
	}
	reportMBps(b, int64(b.N)*int64(len(body)), total)
}

// timeEchoChunks uploads data the way winrmcp-based tools do, one command
// line of base64 appended to a file per chunk, and reports MB/s. It is
// slow, so a slice of data is timed; the rate is all the comparison
// needs. 4000 base64 characters per command is winrmcp's size, well
// inside cmd.exe's 8191-character line.
func timeEchoChunks(b *testing.B, tr transport.Transport, data []byte) {
	const chunk = 4000
	enc := base64.StdEncoding.EncodeToString(data)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		for off := 0; off < len(enc); off += chunk {
			line := fmt.Sprintf(`echo %s >> "%%TEMP%%\gsd-echo-%d.b64"`, enc[off:min(off+chunk, len(enc))], i)
			res, err := transport.Run(context.Background(), tr, line, nil, 1024)
			if err != nil || res.ExitCode != 0 {
				b.Fatalf("echo: %v, exit code %d: %s", err, res.ExitCode, res.Stderr)
			}
		}
		total += time.Since(start)
	}
	reportMBps(b, int64(b.N)*int64(len(data)), total)
}

// benchPeakHeap stages 200 MB generated on the fly and reports how far
// the heap in use rises above where it stood before (the benchmark's own
// 50 MB inputs stay out of the figure), sampled every 20 ms.
func benchPeakHeap(b *testing.B, host *providers.Host) {
	const size = 200 << 20
	for i := 0; i < b.N; i++ {
		art := streamedArtifact(fmt.Sprintf("big-%d.exe", i), size, byte(uploadSeq.Add(1)))
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peak atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var m runtime.MemStats
			for {
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		start := time.Now()
		if _, err := host.Stage(context.Background(), art); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		close(stop)
		wg.Wait()
		b.ReportMetric(float64(peak.Load()-min(peak.Load(), base.HeapInuse))/(1<<20), "heap-growth-MB")
		reportMBps(b, size, d)
	}
}

// streamedArtifact is size pseudo-random bytes generated on the fly, so
// the benchmark itself holds none of them.
func streamedArtifact(name string, size int64, seed byte) providers.Artifact {
	gen := func() io.Reader { return io.LimitReader(&pattern{seed: seed}, size) }
	h := sha256.New()
	_, _ = io.Copy(h, gen())
	return providers.Artifact{Name: name, SHA256: hex.EncodeToString(h.Sum(nil)), Size: size, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(gen()), nil
	}}
}

// pattern is a cheap deterministic byte stream.
type pattern struct {
	seed byte
	n    uint64
}

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		p.n++
		b[i] = byte(p.n*2654435761>>13) ^ p.seed
	}
	return len(b), nil
}

// putServer is the ceiling: an HTTPS server on loopback that hashes the
// body and writes it to a file, as the agent does.
func putServer(b *testing.B) (string, *http.Client) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.CreateTemp(b.TempDir(), "put-")
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
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ca, _, cert := newCertificate(b)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	go func() { _ = srv.Serve(tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}})) }()
	b.Cleanup(func() { srv.Close() })
	return "https://" + l.Addr().String() + "/upload", &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
