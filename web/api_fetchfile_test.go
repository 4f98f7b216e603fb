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
