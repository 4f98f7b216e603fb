package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"

	"github.com/shoalnet/shoal/content"
)

func newTestGateway(t *testing.T, n Node, timeout time.Duration) *httptest.Server {
	t.Helper()
	cfg := DefaultGatewayConfig()
	if timeout > 0 {
		cfg.Timeout = timeout
	}
	h, err := NewGateway(cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// gatewayTree adds a directory with typed files to n and returns its CID.
func gatewayTree(t *testing.T, n *memNode) (cid.Cid, map[string][]byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "site")
	png := append([]byte("\x89PNG\r\n\x1a\n"), randomBytes(300, 9)...)
	files := map[string][]byte{
		"a.txt":        []byte("plain text\n"),
		"data.json":    []byte(`{"k":"v"}`),
		"image":        png,
		"sub/big.bin":  randomBytes(2<<20+99, 10),
		"sub/note.txt": []byte("inside"),
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
	res, err := n.AddTar(context.Background(), bytes.NewReader(tarOf(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	return res.CID, files
}

func TestGatewayFiles(t *testing.T) {
	n := newMemNode()
	root, files := gatewayTree(t, n)
	srv := newTestGateway(t, n, 0)
	big := files["sub/big.bin"]
	bigURL := srv.URL + "/ipfs/" + root.String() + "/sub/big.bin"

	status, hdr, body := call(t, "GET", bigURL, nil, nil)
	bigCID, _ := n.Resolve(context.Background(), root, "sub/big.bin")
	if status != 200 || !bytes.Equal(body, big) {
		t.Fatalf("GET file: %d, equal=%v", status, bytes.Equal(body, big))
	}
	if hdr.Get("ETag") != `"`+bigCID.String()+`"` || !strings.Contains(hdr.Get("Cache-Control"), "immutable") {
		t.Errorf("headers: ETag %q Cache-Control %q", hdr.Get("ETag"), hdr.Get("Cache-Control"))
	}
	status, hdr, body = call(t, "HEAD", bigURL, nil, nil)
	if status != 200 || len(body) != 0 || hdr.Get("Content-Length") != itoa(len(big)) {
		t.Errorf("HEAD: %d, %d body bytes, Content-Length %q", status, len(body), hdr.Get("Content-Length"))
	}
	status, hdr, body = call(t, "GET", bigURL, nil, map[string]string{"Range": "bytes=1048000-1049999"})
	if status != 206 || !bytes.Equal(body, big[1048000:1050000]) || hdr.Get("Content-Range") != "bytes 1048000-1049999/"+itoa(len(big)) {
		t.Errorf("range: %d %q equal=%v", status, hdr.Get("Content-Range"), bytes.Equal(body, big[1048000:1050000]))
	}
	status, _, body = call(t, "GET", bigURL, nil, map[string]string{"Range": "bytes=-10"})
	if status != 206 || !bytes.Equal(body, big[len(big)-10:]) {
		t.Errorf("suffix range: %d", status)
	}
	status, hdr, _ = call(t, "GET", bigURL, nil, map[string]string{"Range": "bytes=" + itoa(len(big)) + "-"})
	if status != 416 || hdr.Get("Content-Range") != "bytes */"+itoa(len(big)) {
		t.Errorf("unsatisfiable range: %d %q", status, hdr.Get("Content-Range"))
	}
	status, _, _ = call(t, "GET", bigURL, nil, map[string]string{"If-None-Match": `"` + bigCID.String() + `"`})
	if status != 304 {
		t.Errorf("If-None-Match with the CID: %d, want 304", status)
	}

	for name, want := range map[string]string{
		"a.txt":     "text/plain; charset=utf-8",
		"data.json": "application/json",
		"image":     "image/png",
	} {
		status, hdr, body := call(t, "GET", srv.URL+"/ipfs/"+root.String()+"/"+name, nil, nil)
		if status != 200 || hdr.Get("Content-Type") != want || !bytes.Equal(body, files[name]) {
			t.Errorf("%s: %d Content-Type %q, want %q", name, status, hdr.Get("Content-Type"), want)
		}
	}
}

func TestGatewayDirectoryListing(t *testing.T) {
	n := newMemNode()
	root, _ := gatewayTree(t, n)
	srv := newTestGateway(t, n, 0)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(srv.URL + "/ipfs/" + root.String() + "/sub")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "/ipfs/"+root.String()+"/sub/" {
		t.Fatalf("directory without slash: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	status, hdr, body := call(t, "GET", srv.URL+"/ipfs/"+root.String()+"/", nil, nil)
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("listing: %d %q", status, hdr.Get("Content-Type"))
	}
	for _, want := range []string{`href="a.txt"`, `href="sub/"`, `href="image"`, root.String()} {
		if !strings.Contains(string(body), want) {
			t.Errorf("listing lacks %s", want)
		}
	}
	if strings.Contains(string(body), "http://") || strings.Contains(string(body), "https://") {
		t.Errorf("listing links to an outside host")
	}
}

func TestGatewayRaw(t *testing.T) {
	n := newMemNode()
	root, _ := gatewayTree(t, n)
	srv := newTestGateway(t, n, 0)
	for _, hdr := range []map[string]string{nil, {"Accept": "application/vnd.ipld.raw"}} {
		u := srv.URL + "/ipfs/" + root.String()
		if hdr == nil {
			u += "?format=raw"
		}
		status, h, body := call(t, "GET", u, nil, hdr)
		if status != 200 || h.Get("Content-Type") != "application/vnd.ipld.raw" {
			t.Fatalf("raw: %d %q", status, h.Get("Content-Type"))
		}
		sum, err := root.Prefix().Sum(body)
		if err != nil || !sum.Equals(root) {
			t.Fatalf("raw body does not hash to %s", root)
		}
	}
}

// readCAR parses a CAR v1 stream: header roots and version, then blocks.
func readCAR(t *testing.T, b []byte) ([]cid.Cid, map[cid.Cid][]byte, []cid.Cid) {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(b))
	hlen, err := binary.ReadUvarint(r)
	if err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		t.Fatal(err)
	}
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := dagcbor.Decode(nb, bytes.NewReader(hdr)); err != nil {
		t.Fatalf("CAR header is not dag-cbor: %v", err)
	}
	h := nb.Build()
	v, _ := h.LookupByString("version")
	if ver, _ := v.AsInt(); ver != 1 {
		t.Fatalf("CAR version %d", ver)
	}
	rootsNode, err := h.LookupByString("roots")
	if err != nil {
		t.Fatal(err)
	}
	var roots []cid.Cid
	it := rootsNode.ListIterator()
	for !it.Done() {
		_, rn, _ := it.Next()
		l, _ := rn.AsLink()
		roots = append(roots, l.(cidlink.Link).Cid)
	}
	_ = datamodel.Kind_Link
	blocks := map[cid.Cid][]byte{}
	var order []cid.Cid
	for {
		n, err := binary.ReadUvarint(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(r, frame); err != nil {
			t.Fatal(err)
		}
		cl, c, err := cid.CidFromBytes(frame)
		if err != nil {
			t.Fatal(err)
		}
		data := frame[cl:]
		if sum, err := c.Prefix().Sum(data); err != nil || !sum.Equals(c) {
			t.Fatalf("CAR block %s does not hash to its CID", c)
		}
		if _, dup := blocks[c]; dup {
			t.Fatalf("CAR repeats block %s", c)
		}
		blocks[c] = data
		order = append(order, c)
	}
	return roots, blocks, order
}

func TestGatewayCAR(t *testing.T) {
	n := newMemNode()
	root, _ := gatewayTree(t, n)
	srv := newTestGateway(t, n, 0)
	status, hdr, body := call(t, "GET", srv.URL+"/ipfs/"+root.String()+"?format=car", nil, nil)
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/vnd.ipld.car") {
		t.Fatalf("car: %d %q", status, hdr.Get("Content-Type"))
	}
	roots, blocks, order := readCAR(t, body)
	if len(roots) != 1 || !roots[0].Equals(root) || !order[0].Equals(root) {
		t.Fatalf("CAR roots %v, first block %s; want %s", roots, order[0], root)
	}
	want := map[cid.Cid]bool{}
	if err := content.Walk(context.Background(), n, root, func(c cid.Cid, _ []byte) error { want[c] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(blocks) != len(want) {
		t.Fatalf("CAR has %d blocks, the DAG %d", len(blocks), len(want))
	}
	for c := range want {
		if _, ok := blocks[c]; !ok {
			t.Errorf("CAR lacks %s", c)
		}
	}
	// The CAR alone rebuilds the content: read a file back from its blocks.
	fromCAR := newMemNode()
	for c, b := range blocks {
		_ = fromCAR.Put(context.Background(), c, b)
	}
	bigCID, _ := content.Resolve(context.Background(), fromCAR, root, "sub/big.bin")
	f, err := fromCAR.Open(context.Background(), bigCID)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(f); len(got) != 2<<20+99 {
		t.Errorf("file rebuilt from CAR has %d bytes", len(got))
	}
}

// stalledNode holds no content and waits for the swarm until the deadline,
// as a node with no provider does.
type stalledNode struct{ *memNode }

func (s stalledNode) Kind(ctx context.Context, c cid.Cid) (content.FSType, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

func (s stalledNode) Block(ctx context.Context, c cid.Cid) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestGatewayErrors(t *testing.T) {
	n := newMemNode()
	root, _ := gatewayTree(t, n)
	srv := newTestGateway(t, n, 0)
	missing := expectedCID(t, []byte("nobody has this"))
	for _, tc := range []struct {
		method, path string
		status       int
		says         string
	}{
		{"GET", "/ipfs/notacid", 400, "not a valid CID"},
		{"GET", "/ipfs/" + root.String() + "/a/%2e%2e/b", 400, ".."},
		{"GET", "/ipfs/" + missing, 404, missing},
		{"GET", "/ipfs/" + root.String() + "/nope.txt", 404, "nope.txt"},
		{"GET", "/ipfs/" + root.String() + "?format=zip", 400, "format"},
		{"POST", "/ipfs/" + root.String(), 405, "read-only"},
		{"DELETE", "/ipfs/" + root.String(), 405, "read-only"},
		{"GET", "/ipns/example.com", 404, "/ipfs/"},
	} {
		status, _, body := call(t, tc.method, srv.URL+tc.path, nil, nil)
		line := strings.TrimSuffix(string(body), "\n")
		if status != tc.status || strings.Contains(line, "\n") || !strings.Contains(line, tc.says) {
			t.Errorf("%s %s = %d %q, want %d, one line saying %q", tc.method, tc.path, status, body, tc.status, tc.says)
		}
	}

	slow := newTestGateway(t, stalledNode{newMemNode()}, 50*time.Millisecond)
	for _, q := range []string{"", "?format=raw", "?format=car"} {
		status, _, body := call(t, "GET", slow.URL+"/ipfs/"+missing+q, nil, nil)
		if status != 504 || !strings.Contains(string(body), "swarm") {
			t.Errorf("stalled %s: %d %q, want 504", q, status, body)
		}
	}
}

func FuzzGatewayPath(f *testing.F) {
	n := newMemNode()
	res, err := n.AddFile(context.Background(), strings.NewReader("fuzz me"))
	if err != nil {
		f.Fatal(err)
	}
	h, err := NewGateway(DefaultGatewayConfig(), n)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{res.CID.String(), res.CID.String() + "/x", "x", "%2e%2e", res.CID.String() + "?format=car", "?format=raw"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		req, err := http.NewRequest("GET", "http://127.0.0.1/ipfs/"+s, nil)
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 301, 307, 308, 400, 404:
		default:
			t.Fatalf("GET /ipfs/%q = %d %q", s, rec.Code, rec.Body.String())
		}
		if rec.Code == 200 && req.URL.Query().Get("format") == "" && strings.TrimPrefix(req.URL.Path, "/ipfs/") == res.CID.String() && rec.Body.String() != "fuzz me" {
			t.Fatalf("wrong body %q", rec.Body.String())
		}
	})
}
