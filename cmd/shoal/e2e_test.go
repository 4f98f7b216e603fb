package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests drive the real binary: daemons as separate
// processes on 127.0.0.1, the CLI as their client.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func shoalBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test builds the binary and starts daemons; skipped with -short")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shoal-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "shoal")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// daemon is one `shoal daemon` process.
type daemon struct {
	t       testing.TB
	home    string
	cmd     *exec.Cmd
	log     *syncBuffer // the daemon writes it while the test may read it
	id      string
	addr    string // a /ip4/127.0.0.1/tcp/... multiaddr with /p2p/
	gateway string // http://127.0.0.1:port
}

func startDaemon(t testing.TB, home string, bootstrap ...string) *daemon {
	t.Helper()
	return startDaemonWith(t, home, nil, bootstrap...)
}

// startDaemonWith is startDaemon with prep (when not nil) changing the
// command before it starts.
func startDaemonWith(t testing.TB, home string, prep func(*exec.Cmd), bootstrap ...string) *daemon {
	t.Helper()
	bin := shoalBinary(t)
	args := []string{"daemon", "--home", home, "--no-mdns",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1",
		"--api-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0", "--log-level", "warn"}
	for _, b := range bootstrap {
		args = append(args, "--bootstrap", b)
	}
	cmd := exec.Command(bin, args...)
	if prep != nil {
		prep(cmd)
	}
	d := &daemon{t: t, home: home, cmd: cmd, log: &syncBuffer{}}
	cmd.Stderr = d.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.stop() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if gw, ok := strings.CutPrefix(line, "gateway:"); ok {
				d.gateway, _, _ = strings.Cut(strings.TrimSpace(gw), "/ipfs/")
			}
			if strings.HasPrefix(line, "home:") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatalf("daemon in %s did not start; its log:\n%s", home, d.log)
	}
	var id struct {
		ID        string   `json:"id"`
		Addresses []string `json:"addresses"`
	}
	if err := json.Unmarshal([]byte(d.cli("id", "--json")), &id); err != nil {
		t.Fatalf("shoal id --json: %v", err)
	}
	d.id = id.ID
	for _, a := range id.Addresses {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			d.addr = a
			if !strings.Contains(a, "/p2p/") {
				d.addr += "/p2p/" + id.ID
			}
		}
	}
	if d.addr == "" {
		t.Fatalf("daemon %s reports no loopback TCP address: %v", id.ID, id.Addresses)
	}
	return d
}

// cli runs a CLI command against this daemon and returns its stdout.
func (d *daemon) cli(args ...string) string {
	d.t.Helper()
	out, err := d.cliErr(args...)
	if err != nil {
		d.t.Fatalf("shoal %s: %v\ndaemon log:\n%s", strings.Join(args, " "), err, d.log)
	}
	return out
}

func (d *daemon) cliErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, append(args, "--home", d.home)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v: %s", err, stderr.String())
	}
	return stdout.String(), nil
}

func (d *daemon) stop() {
	if d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
		d.t.Errorf("daemon in %s did not stop on SIGTERM within 20s", d.home)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// TestEndToEndShareFetchThroughDHT: three daemons; the third knows only
// the first; a file shared on the second is found through a DHT provider
// lookup and fetched on the third; a restarted daemon keeps its content.
func TestEndToEndShareFetchThroughDHT(t *testing.T) {
	dir := t.TempDir()
	first := startDaemon(t, filepath.Join(dir, "n1"))
	second := startDaemon(t, filepath.Join(dir, "n2"), first.addr)
	third := startDaemon(t, filepath.Join(dir, "n3"), first.addr)

	data := make([]byte, 5<<20+12345) // several chunks and a short tail
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "payload.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	root := lastLine(second.cli("share", src))
	if want := lastLine(second.cli("cid", src)); root != want {
		t.Fatalf("share printed %s, cid printed %s", root, want)
	}

	// The third daemon was told only of the first. (In a network this
	// small the DHT's own lookups soon connect everyone, so the provider
	// lookup is asserted directly in TestEndToEndProviders.)
	out := filepath.Join(dir, "fetched.bin")
	var res struct {
		CID           string `json:"cid"`
		Size          uint64 `json:"size"`
		BytesReceived uint64 `json:"bytes_received"`
		Peers         []struct {
			Peer  string `json:"peer"`
			Bytes uint64 `json:"bytes"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(third.cli("fetch", root, "-o", out, "--json")), &res); err != nil {
		t.Fatalf("fetch --json output: %v", err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("fetched %d bytes, differ from the %d shared", len(got), len(data))
	}
	if res.CID != root || res.Size != uint64(len(data)) {
		t.Fatalf("fetch result = %+v, want cid %s size %d", res, root, len(data))
	}
	served := false
	for _, p := range res.Peers {
		if p.Peer == second.id && p.Bytes > 0 {
			served = true
		}
	}
	if !served {
		t.Fatalf("fetch result does not credit the sharing daemon %s: %+v", second.id, res.Peers)
	}

	// Restart the sharing daemon: content and pin survive.
	second.stop()
	second = startDaemon(t, second.home, first.addr)
	var roots []struct {
		CID    string `json:"cid"`
		Size   uint64 `json:"size"`
		Pinned bool   `json:"pinned"`
	}
	if err := json.Unmarshal([]byte(second.cli("ls", "--json")), &roots); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range roots {
		if r.CID == root && r.Pinned && r.Size == uint64(len(data)) {
			found = true
		}
	}
	if !found {
		t.Fatalf("after restart, ls = %+v; want %s pinned with size %d", roots, root, len(data))
	}
}

// TestCLIWithoutDaemon: a client command with no daemon says how to start
// one and exits 1.
func TestCLIWithoutDaemon(t *testing.T) {
	bin := shoalBinary(t)
	cmd := exec.Command(bin, "peers", "--home", t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit = %v, want exit status 1", err)
	}
	if !strings.Contains(stderr.String(), "no shoal daemon") || !strings.Contains(stderr.String(), "shoal daemon") {
		t.Fatalf("stderr = %q, want it to say no daemon runs and how to start one", stderr.String())
	}
}
