package agent

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
)

// BenchmarkFacts50 measures one facts round trip for a host with 50
// managed services, each with a 1 MiB binary and a managed file.
func BenchmarkFacts50(b *testing.B) {
	root := testfs.TempDir(b)
	fake := newFakeServices(root)
	a := New(Options{Root: root, Services: fake, ServiceHost: "gsd-agent.exe"})
	st := state.New()
	bin := make([]byte, 1<<20)
	for i := 0; i < 50; i++ {
		name := fmt.Sprintf("svc%02d", i)
		bin[0] = byte(i)
		sha := digest(bin)
		path := filepath.Join(root, "artifacts", sha, name+".exe")
		os.MkdirAll(filepath.Dir(path), 0o755)
		os.WriteFile(path, bin, 0o644)
		os.MkdirAll(a.layout.FilesDir(name), 0o755)
		os.WriteFile(filepath.Join(a.layout.FilesDir(name), "config.yaml"), []byte("port: 1"), 0o644)
		spec := nativeSpec(name, sha, "1.0")
		fake.Install(name, InstallConfig{BinaryPath: path, Start: protocol.StartAuto})
		st.Services[name] = &state.Service{
			Spec:    spec,
			History: state.History{Releases: []protocol.Release{{Artifact: sha, Path: path, Version: "1.0"}}},
			Files:   map[string]string{"config.yaml": digest([]byte("port: 1"))},
		}
	}
	if err := st.Save(a.layout); err != nil {
		b.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	go a.Serve(context.Background(), inR, outW)
	events := bufio.NewScanner(outR)
	events.Buffer(make([]byte, 1<<20), 16<<20)
	events.Scan() // hello
	var responseBytes int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		protocol.EncodeRequest(inW, protocol.Request{ID: "f", Op: protocol.OpFacts})
		if !events.Scan() {
			b.Fatal("no facts")
		}
		responseBytes = len(events.Bytes())
	}
	b.StopTimer()
	b.ReportMetric(float64(responseBytes), "response-bytes")
	b.ReportMetric(50, "services/roundtrip")
	inW.Close()
}

// BenchmarkStage streams artifacts of 20 MB and 200 MB through the agent's
// protocol path and reports the peak heap seen while doing it. Flat peak
// heap across sizes is the property under test; run with -benchtime=1x.
func BenchmarkStage(b *testing.B) {
	chunk := protocol.DefaultFrameSize
	if v := os.Getenv("GSD_BENCH_FRAME"); v != "" {
		fmt.Sscan(v, &chunk)
	}
	for _, mb := range []int{20, 200} {
		b.Run(fmt.Sprintf("%dMB", mb), func(b *testing.B) {
			size := int64(mb) << 20
			sha := hashStream(size, chunk)
			b.SetBytes(size)
			var peak uint64
			for i := 0; i < b.N; i++ {
				root := testfs.TempDir(b)
				a := New(Options{Root: root, Services: newFakeServices(root)})
				runtime.GC()
				var base runtime.MemStats
				runtime.ReadMemStats(&base)
				stop := sampleHeap(&peak)
				inR, inW := io.Pipe()
				go func() {
					w := bufio.NewWriterSize(inW, 1<<20)
					protocol.EncodeRequest(w, protocol.Request{ID: "s", Op: protocol.OpStage, Args: protocol.MustArgs(protocol.StageArgs{SHA256: sha, Size: size, Name: "big.exe"})})
					fw := protocol.NewFrameWriter(w, chunk)
					forEachChunk(size, chunk, func(p []byte) { fw.Write(p) })
					fw.Close()
					w.Flush()
					inW.Close()
				}()
				var out lastLine
				if err := a.Serve(context.Background(), inR, &out); err != nil {
					b.Fatal(err)
				}
				stop()
				if !out.contains(`"event":"result"`) {
					b.Fatalf("stage failed: %s", out.last)
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(chunk), "frame-bytes")
		})
	}
}

// forEachChunk produces a deterministic pseudo-random artifact chunk by
// chunk, so the benchmark itself never holds the whole artifact.
func forEachChunk(size int64, chunk int, fn func([]byte)) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, chunk)
	for left := size; left > 0; {
		n := min(int64(chunk), left)
		for i := 0; i < int(n); i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8 && i+j < int(n); j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		fn(buf[:n])
		left -= n
	}
}

func hashStream(size int64, chunk int) string {
	h := sha256.New()
	forEachChunk(size, chunk, func(p []byte) { h.Write(p) })
	return hex.EncodeToString(h.Sum(nil))
}

// sampleHeap records the highest HeapInuse until the returned stop is called.
func sampleHeap(peak *uint64) (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for !done.Load() {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > *peak {
				*peak = ms.HeapInuse
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return func() { done.Store(true); wg.Wait() }
}

// lastLine keeps only the last line written, so the benchmark's own output
// buffer does not count against the agent.
type lastLine struct{ last []byte }

func (l *lastLine) Write(p []byte) (int, error) {
	l.last = append(l.last[:0], p...)
	return len(p), nil
}

func (l *lastLine) contains(s string) bool {
	return strings.Contains(string(l.last), s)
}
