package api_test

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"maps"
	"net"
	"net/http"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/sim"
	"github.com/shoalnet/shoal/web"
)

// startNode starts an in-memory node on loopback (sim.LoopbackNode).
func startNode(t *testing.T) *node.Node { return sim.LoopbackNode(t, node.Parts{}) }

// serveAPI serves web's API for n on a loopback port (with token, when
// not empty) and returns its base URL.
func serveAPI(t *testing.T, n *node.Node, token string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := web.DefaultAPIConfig(ln.Addr().String())
	cfg.Token = token
	h, err := web.NewAPI(cfg, n)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return cfg.URL()
}

// newClient is a client of a fresh node's API.
func newClient(t *testing.T) (*api.Client, *node.Node) {
	t.Helper()
	n := startNode(t)
	c, err := api.NewClient(serveAPI(t, n, ""), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, n
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// absentCID is the CID of bytes nobody holds.
func absentCID(t *testing.T) string {
	t.Helper()
	h, err := multihash.Sum(randomBytes(t, 64), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h).String()
}

// tarOf is a tar of files (name → content), as `shoal share DIR` sends.
func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		data := files[name]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
