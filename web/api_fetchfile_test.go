//go:build unix

package web

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiv1 "github.com/shoalnet/shoal/api"
)

// serveFileSocket serves the file socket of n in a temporary directory,
// guarded like an API at apiAddr with token.
func serveFileSocket(t *testing.T, n FileNode, apiAddr, token string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fs") // short: a socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "api.sock")
	cfg := DefaultAPIConfig(apiAddr)
	cfg.Token = token
	h, err := NewFileAPI(cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := ListenFileSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, l, err := NewFileServer(ln, h, DefaultServerConfig(8))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file socket %s: %v, mode %v; want 0600", path, err, fi.Mode())
	}
	return path
}

// TestFetchFileSocket: over a real unix socket and a real node, the
// daemon writes a stored file into the descriptor it is handed; it
// refuses descriptors it must not write through (read-only, append,
// not empty, not a regular file) and requests without the API's token.
func TestFetchFileSocket(t *testing.T) {
	ctx := context.Background()
	n := startLoopbackNode(t)
	data := randomBytes(3<<20+11, 4)
	res, err := n.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	const addr, token = "127.0.0.1:5999", "s3cret"
	sock := serveFileSocket(t, n, addr, token)
	c, err := apiv1.NewClient(addr, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	open := func(name string, flag int, content string) *os.File {
		p := filepath.Join(dir, name)
		if content != "" {
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		f, err := os.OpenFile(p, flag, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}

	f := open("good", os.O_RDWR|os.O_CREATE|os.O_EXCL, "")
	var events int
	ev, err := c.FetchFile(ctx, sock, res.CID.String(), f, apiv1.FetchOptions{Pin: true}, func(apiv1.FileEvent) { events++ })
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Done || ev.Written != uint64(len(data)) || ev.Size != uint64(len(data)) || ev.Transfer == nil || events == 0 {
		t.Fatalf("last event %+v after %d events, want done with %d bytes written", ev, events, len(data))
	}
	if got, err := os.ReadFile(f.Name()); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the file holds %d bytes (%v), want the %d stored", len(got), err, len(data))
	}

	for _, tc := range []struct {
		name string
		f    *os.File
		want string
	}{
		{"read-only", open("ro", os.O_RDONLY|os.O_CREATE, ""), "not open for writing"},
		{"append", open("app", os.O_WRONLY|os.O_CREATE|os.O_APPEND, ""), "appending"},
		{"not empty", open("full", os.O_WRONLY, "old bytes"), "holds 9 bytes"},
		{"directory", open(".", os.O_RDONLY, ""), "not a regular file"},
	} {
		_, err := c.FetchFile(ctx, sock, res.CID.String(), tc.f, apiv1.FetchOptions{}, nil)
		if !errors.Is(err, apiv1.ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a bad request saying %q", tc.name, err, tc.want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "full")); string(b) != "old bytes" {
		t.Fatalf("a refused file was changed: %q", b)
	}

	noToken, err := apiv1.NewClient(addr, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = noToken.FetchFile(ctx, sock, res.CID.String(), open("tok", os.O_RDWR|os.O_CREATE|os.O_EXCL, ""), apiv1.FetchOptions{}, nil)
	var ae *apiv1.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("without the token: %v, want 401", err)
	}
	if _, err := c.FetchFile(ctx, filepath.Join(dir, "no.sock"), res.CID.String(), f, apiv1.FetchOptions{}, nil); !errors.Is(err, apiv1.ErrNoFileSocket) {
		t.Fatalf("no socket: %v, want ErrNoFileSocket", err)
	}
}

// TestFileSocketSeedRoutes: over the real file socket and node, a file
// fetched with fetchfile and renamed is taken back by fetchfile/placed
// (the store references its leaves); a file the daemon did not write is
// a bad request; addfile shares a file without a copy under the CID add
// gives it, and refuses a relative path= for fetchfile.
func TestFileSocketSeedRoutes(t *testing.T) {
	ctx := context.Background()
	n := startLoopbackNode(t)
	data := randomBytes(3<<20+11, 5)
	src := filepath.Join(t.TempDir(), "src.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	const addr, token = "127.0.0.1:5998", "s3cret"
	sock := serveFileSocket(t, n, addr, token)
	c, err := apiv1.NewClient(addr, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	added, err := c.AddNoCopy(ctx, sock, sf, apiv1.AddOptions{Name: "src.bin"})
	sf.Close()
	if err != nil {
		t.Fatal(err)
	}
	want, err := n.AddFile(ctx, bytes.NewReader(data)) // the same CID, now stored
	if err != nil || added.CID != want.CID.String() || added.Size != uint64(len(data)) {
		t.Fatalf("addfile gave %+v, add gives %s (%v)", added, want.CID, err)
	}

	dir := t.TempDir()
	tmp, err := os.CreateTemp(dir, ".got.*.part")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	if _, err := c.FetchFile(ctx, sock, added.CID, tmp, apiv1.FetchOptions{Path: "relative/got.bin"}, nil); !errors.Is(err, apiv1.ErrBadRequest) || !strings.Contains(err.Error(), "not absolute") {
		t.Fatalf("fetchfile with a relative path=: %v, want a bad request", err)
	}
	final := filepath.Join(dir, "got.bin")
	if _, err := c.FetchFile(ctx, sock, added.CID, tmp, apiv1.FetchOptions{Pin: true, Path: final}, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		t.Fatal(err)
	}
	pf, err := os.Open(final)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	placed, err := c.FilePlaced(ctx, sock, added.CID, pf)
	if err != nil || placed.Leaves != 4 {
		t.Fatalf("fetchfile/placed = %+v, %v; want the file's 4 leaves", placed, err)
	}
	sf, err = os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	if _, err := c.FilePlaced(ctx, sock, added.CID, sf); !errors.Is(err, apiv1.ErrBadRequest) || !strings.Contains(err.Error(), "not one the daemon wrote") {
		t.Fatalf("fetchfile/placed of a file the daemon did not write: %v, want a bad request", err)
	}
}
