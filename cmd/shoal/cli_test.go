package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/web"
)

// testDaemon is a real in-memory node with its API on an httptest server:
// the daemon without the process, for in-process CLI tests.
type testDaemon struct {
	n   *node.Node
	url string
}

func startTestDaemon(t *testing.T, token string) *testDaemon {
	t.Helper()
	return startTestDaemonWith(t, token, node.Parts{})
}

// startTestDaemonWith is startTestDaemon on parts the test supplies.
func startTestDaemonWith(t *testing.T, token string, parts node.Parts) *testDaemon {
	t.Helper()
	cfg := node.DefaultConfig("")
	cfg.Network.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Network.MDNS = false
	cfg.Store.Sync = false
	n, err := node.NewWithParts(cfg, parts)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		n.Close()
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	acfg := web.DefaultAPIConfig(srv.Listener.Addr().String())
	acfg.Token = token
	acfg.GatewayURL = "http://127.0.0.1:8080"
	h, err := web.NewAPI(acfg, n)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		if err := n.Close(); err != nil {
			t.Errorf("closing node: %v", err)
		}
	})
	return &testDaemon{n: n, url: srv.URL}
}

// shoal runs the CLI in-process and returns exit code, stdout, stderr.
func shoal(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// mustShoal runs the CLI and fails the test unless it exits 0.
func mustShoal(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := shoal(t, args...)
	if code != 0 {
		t.Fatalf("shoal %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// connected starts two daemons and connects the second to the first
// through `shoal connect`.
func connected(t *testing.T) (*testDaemon, *testDaemon) {
	t.Helper()
	a, b := startTestDaemon(t, ""), startTestDaemon(t, "")
	out := mustShoal(t, "connect", "--api", b.url, a.n.Info().Addresses[0])
	if !strings.HasPrefix(out, "connected to ") {
		t.Fatalf("connect printed %q", out)
	}
	return a, b
}

func TestCLIShareFetchFile(t *testing.T) {
	a, b := connected(t)
	data := randomBytes(5<<20+321, 1)
	src := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := content.ImportFile(context.Background(), bytes.NewReader(data), nil, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := lastLine(mustShoal(t, "share", "--api", a.url, src))
	if c != want.CID.String() {
		t.Fatalf("share printed %q, want %s", c, want.CID)
	}

	dst := filepath.Join(t.TempDir(), "out.bin")
	out := mustShoal(t, "fetch", "--api", b.url, "--json", c, "-o", dst)
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("fetch --json printed %q: %v", out, err)
	}
	for _, k := range []string{"cid", "size", "duration_ms", "bytes_received", "peers"} {
		if _, ok := res[k]; !ok {
			t.Errorf("fetch --json lacks %q: %s", k, out)
		}
	}
	if res["cid"] != c || res["size"] != float64(len(data)) {
		t.Errorf("fetch --json = %s", out)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetched file differs (err %v)", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".*part*")); len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	// An existing target is refused without --force, replaced with it.
	code, _, errOut := shoal(t, "fetch", "--api", b.url, c, "-o", dst)
	if code != 1 || !strings.Contains(errOut, "already exists") || !strings.Contains(errOut, "--force") {
		t.Errorf("fetch onto an existing file: exit %d, stderr %q", code, errOut)
	}
	if err := os.WriteFile(dst, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustShoal(t, "fetch", "--api", b.url, c, "-o", dst, "--force")
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Errorf("--force did not replace the file")
	}

	// -o - streams to stdout.
	if out := mustShoal(t, "fetch", "--api", b.url, c, "-o", "-"); out != string(data) {
		t.Errorf("fetch -o - wrote %d bytes, want %d", len(out), len(data))
	}

	// ls on the sharer: the root, pinned, in the documented shape.
	var ls []map[string]any
	if err := json.Unmarshal([]byte(mustShoal(t, "ls", "--api", a.url, "--json")), &ls); err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0]["cid"] != c || ls[0]["name"] != "data.bin" || ls[0]["pinned"] != true || ls[0]["size"] != float64(len(data)) || len(ls[0]) != 4 {
		t.Errorf("ls --json = %v", ls)
	}
}

// writeTestTree makes a directory with nested dirs, an empty file and a
// relative symlink.
func writeTestTree(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "photos")
	files := map[string][]byte{
		"a.txt":           []byte("hello\n"),
		"empty":           {},
		"sub/big.bin":     randomBytes(2<<20+5, 2),
		"sub/deep/x.json": []byte(`{"x":1}`),
		".hidden":         []byte("dot"),
	}
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../a.txt", filepath.Join(dir, "sub", "link")); err != nil {
		t.Fatal(err)
	}
	return dir, files
}

func TestCLIShareFetchDirectory(t *testing.T) {
	a, b := connected(t)
	dir, files := writeTestTree(t)
	want := lastLine(mustShoal(t, "cid", dir))
	c := lastLine(mustShoal(t, "share", "--api", a.url, dir))
	if c != want {
		t.Fatalf("share of a directory printed %s, `shoal cid` gives %s", c, want)
	}

	dst := filepath.Join(t.TempDir(), "copy")
	mustShoal(t, "fetch", "--api", b.url, c, "-o", dst)
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: differs (err %v)", name, err)
		}
	}
	if target, err := os.Readlink(filepath.Join(dst, "sub", "link")); err != nil || target != "../a.txt" {
		t.Errorf("symlink sub/link -> %q (%v), want ../a.txt", target, err)
	}
	// The fetched tree has the same CID.
	if got := lastLine(mustShoal(t, "cid", dst)); got != c {
		t.Errorf("fetched tree hashes to %s, want %s", got, c)
	}

	var st map[string]any
	if err := json.Unmarshal([]byte(mustShoal(t, "stat", "--api", b.url, "--json", c)), &st); err != nil {
		t.Fatal(err)
	}
	if st["type"] != "directory" {
		t.Errorf("stat --json = %v", st)
	}
}

func TestCLINoDaemon(t *testing.T) {
	code, out, errOut := shoal(t, "id", "--api", "http://127.0.0.1:1")
	want := `no shoal daemon at http://127.0.0.1:1: start one with "shoal daemon"`
	if code != 1 || out != "" || !strings.Contains(errOut, want) {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, want)
	}
	home := t.TempDir()
	code, _, errOut = shoal(t, "ls", "--home", home)
	if code != 1 || !strings.Contains(errOut, "shoal daemon") || !strings.Contains(errOut, home) {
		t.Errorf("empty home: exit %d, stderr %q", code, errOut)
	}
}

func TestCLIDaemonWordsAndHome(t *testing.T) {
	d := startTestDaemon(t, "tok")
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, APIFile), []byte(d.url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Without the token the daemon's own words come back.
	code, _, errOut := shoal(t, "id", "--home", home)
	if code != 1 || !strings.Contains(errOut, "needs a token") {
		t.Errorf("no token: exit %d, stderr %q", code, errOut)
	}
	t.Setenv("SHOAL_API_TOKEN", "tok")
	var id map[string]any
	if err := json.Unmarshal([]byte(mustShoal(t, "id", "--home", home, "--json")), &id); err != nil {
		t.Fatal(err)
	}
	if id["id"] != d.n.Info().ID || id["api"] != d.url || id["gateway"] != "http://127.0.0.1:8080" || id["addresses"] == nil || len(id) != 4 {
		t.Errorf("id --json = %v", id)
	}
	code, _, errOut = shoal(t, "pin", "--home", home, "notacid")
	if code != 1 || !strings.Contains(errOut, `"notacid" is not a valid CID`) || strings.Contains(errOut, "400") {
		t.Errorf("pin notacid: exit %d, stderr %q", code, errOut)
	}
	if out := mustShoal(t, "gc", "--home", home, "--json"); !strings.Contains(out, `"removed"`) {
		t.Errorf("gc --json = %q", out)
	}
	if out := mustShoal(t, "stat", "--home", home); !strings.Contains(out, d.n.Info().ID) {
		t.Errorf("stat = %q", out)
	}
	if out := mustShoal(t, "peers", "--home", home, "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("peers --json = %q", out)
	}
}
