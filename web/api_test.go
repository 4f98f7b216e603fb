package web

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/content"
)

// newTestAPI serves n's API on a loopback httptest server; mutate edits
// the config before the handler is built.
func newTestAPI(t *testing.T, n Node, mutate func(*APIConfig)) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	cfg := DefaultAPIConfig(srv.Listener.Addr().String())
	cfg.GatewayURL = "http://127.0.0.1:8080"
	cfg.EventInterval = 20 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := NewAPI(cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// call makes one request and returns status, headers and body.
func call(t *testing.T, method, url string, body io.Reader, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func expectedCID(t *testing.T, data []byte) string {
	t.Helper()
	res, err := content.ImportFile(context.Background(), bytes.NewReader(data), nil, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.CID.String()
}

func addFile(t *testing.T, base string, data []byte) apiv1.AddResult {
	t.Helper()
	status, _, body := call(t, "POST", base+"/api/v1/add", bytes.NewReader(data), nil)
	if status != http.StatusOK {
		t.Fatalf("add: %d %s", status, body)
	}
	var res apiv1.AddResult
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestAPIAddThenCatWithRanges(t *testing.T) {
	srv := newTestAPI(t, newMemNode(), nil)
	data := randomBytes(3<<20+12345, 1)
	res := addFile(t, srv.URL, data)
	if want := expectedCID(t, data); res.CID != want || res.Size != uint64(len(data)) {
		t.Fatalf("add = %+v, want CID %s size %d", res, want, len(data))
	}

	status, hdr, body := call(t, "GET", srv.URL+"/api/v1/cat/"+res.CID, nil, nil)
	if status != 200 || !bytes.Equal(body, data) {
		t.Fatalf("cat: status %d, %d bytes, equal=%v", status, len(body), bytes.Equal(body, data))
	}
	if hdr.Get("ETag") != `"`+res.CID+`"` {
		t.Errorf("ETag = %q", hdr.Get("ETag"))
	}

	status, hdr, body = call(t, "GET", srv.URL+"/api/v1/cat/"+res.CID, nil, map[string]string{"Range": "bytes=1048570-1048600"})
	if status != http.StatusPartialContent || !bytes.Equal(body, data[1048570:1048601]) {
		t.Fatalf("range: status %d, body equal=%v", status, bytes.Equal(body, data[1048570:1048601]))
	}
	if want := "bytes 1048570-1048600/" + itoa(len(data)); hdr.Get("Content-Range") != want {
		t.Errorf("Content-Range = %q, want %q", hdr.Get("Content-Range"), want)
	}
	status, _, _ = call(t, "GET", srv.URL+"/api/v1/cat/"+res.CID, nil, map[string]string{"Range": "bytes=99999999-"})
	if status != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("unsatisfiable range: status %d, want 416", status)
	}
}

func itoa(n int) string { return jsonNumber(n) }

func jsonNumber(n int) string { b, _ := json.Marshal(n); return string(b) }

// writeTestTree makes a small tree with nested directories, an empty
// file, a larger file and a relative symlink.
func writeTestTree(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	files := map[string][]byte{
		"a.txt":           []byte("hello shoal\n"),
		"empty":           {},
		"sub/big.bin":     randomBytes(1<<20+7, 2),
		"sub/deep/x.json": []byte(`{"x":1}`),
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

// tarOf writes dir as a tar with names relative to dir, the way
// `shoal share` does.
func tarOf(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		name := filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755})
		case d.Type()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target})
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(b)), Mode: 0o644}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAPIAddTarThenGet(t *testing.T) {
	srv := newTestAPI(t, newMemNode(), nil)
	dir, files := writeTestTree(t)
	want, err := content.ImportPath(context.Background(), dir, nil, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := call(t, "POST", srv.URL+"/api/v1/add", bytes.NewReader(tarOf(t, dir)), map[string]string{"Content-Type": "application/x-tar"})
	if status != 200 {
		t.Fatalf("add tar: %d %s", status, body)
	}
	var res apiv1.AddResult
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if res.CID != want.CID.String() {
		t.Fatalf("tar CID %s, `shoal cid` gives %s", res.CID, want.CID)
	}

	status, hdr, body := call(t, "GET", srv.URL+"/api/v1/get/"+res.CID, nil, nil)
	if status != 200 || hdr.Get("Content-Type") != "application/x-tar" {
		t.Fatalf("get: %d %s", status, hdr.Get("Content-Type"))
	}
	got := map[string][]byte{}
	links := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(body))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name, ok := strings.CutPrefix(h.Name, res.CID+"/")
		if !ok && strings.TrimSuffix(h.Name, "/") != res.CID {
			t.Fatalf("entry %q not under %s/", h.Name, res.CID)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			got[name], _ = io.ReadAll(tr)
		case tar.TypeSymlink:
			links[name] = h.Linkname
		}
	}
	if len(got) != len(files) {
		t.Fatalf("got %d files, want %d", len(got), len(files))
	}
	for name, b := range files {
		if !bytes.Equal(got[name], b) {
			t.Errorf("%s: bytes differ", name)
		}
	}
	if links["sub/link"] != "../a.txt" {
		t.Errorf("symlink sub/link -> %q, want ../a.txt", links["sub/link"])
	}

	// A path below the root resolves, for cat and stat.
	status, _, body = call(t, "GET", srv.URL+"/api/v1/cat/"+res.CID+"/sub/deep/x.json", nil, nil)
	if status != 200 || string(body) != `{"x":1}` {
		t.Errorf("cat path: %d %q", status, body)
	}
	status, _, body = call(t, "GET", srv.URL+"/api/v1/stat/"+res.CID, nil, nil)
	var st apiv1.CIDStat
	if err := json.Unmarshal(body, &st); status != 200 || err != nil || st.Type != "directory" || !st.Pinned || st.Entries != 3 {
		t.Errorf("stat dir: %d %s", status, body)
	}
}

func TestAPIShapes(t *testing.T) {
	srv := newTestAPI(t, newMemNode(), nil)
	res := addFile(t, srv.URL, []byte("pin me"))

	for path, keys := range map[string][]string{
		"/api/v1/id":              {"id", "addresses", "api", "gateway"},
		"/api/v1/stat":            {"id", "peers", "roots", "transfers_active", "store_blocks"},
		"/api/v1/stat/" + res.CID: {"cid", "type", "size", "pinned", "root"},
	} {
		status, _, body := call(t, "GET", srv.URL+path, nil, nil)
		var m map[string]any
		if status != 200 || json.Unmarshal(body, &m) != nil {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("GET %s: no %q in %s", path, k, body)
			}
		}
	}
	_, _, body := call(t, "GET", srv.URL+"/api/v1/id", nil, nil)
	var id apiv1.ID
	_ = json.Unmarshal(body, &id)
	if id.API != srv.URL || id.Gateway != "http://127.0.0.1:8080" || id.ID != "12D3KooWMemNode" {
		t.Errorf("id = %+v", id)
	}
	for _, path := range []string{"/api/v1/peers", "/api/v1/transfers"} {
		if _, _, body := call(t, "GET", srv.URL+path, nil, nil); strings.TrimSpace(string(body)) != "[]" {
			t.Errorf("GET %s = %s, want []", path, body)
		}
	}
}

func TestAPIPinUnpinGC(t *testing.T) {
	srv := newTestAPI(t, newMemNode(), nil)
	keep := addFile(t, srv.URL, randomBytes(2<<20, 3))
	drop := addFile(t, srv.URL, randomBytes(3<<20, 4))

	status, _, body := call(t, "POST", srv.URL+"/api/v1/unpin/"+drop.CID, nil, nil)
	if status != 200 || !strings.Contains(string(body), `"pinned": false`) {
		t.Fatalf("unpin: %d %s", status, body)
	}
	status, _, body = call(t, "POST", srv.URL+"/api/v1/gc", nil, nil)
	var gc struct{ Removed, Bytes int }
	if status != 200 || json.Unmarshal(body, &gc) != nil || gc.Removed != drop.Blocks || gc.Bytes < 3<<20 {
		t.Fatalf("gc: %d %s, want %d blocks removed", status, body, drop.Blocks)
	}
	if status, _, _ := call(t, "GET", srv.URL+"/api/v1/cat/"+drop.CID, nil, nil); status != 404 {
		t.Errorf("cat of collected content: %d, want 404", status)
	}
	if status, _, body := call(t, "GET", srv.URL+"/api/v1/cat/"+keep.CID, nil, nil); status != 200 || len(body) != 2<<20 {
		t.Errorf("cat of pinned content after gc: %d, %d bytes", status, len(body))
	}
	_, _, body = call(t, "GET", srv.URL+"/api/v1/ls", nil, nil)
	var roots []struct {
		CID    string
		Pinned bool
	}
	if json.Unmarshal(body, &roots) != nil || len(roots) != 1 || roots[0].CID != keep.CID || !roots[0].Pinned {
		t.Errorf("ls after gc = %s", body)
	}
}

func TestAPIOriginAndHost(t *testing.T) {
	srv := newTestAPI(t, newMemNode(), nil)
	host := strings.TrimPrefix(srv.URL, "http://")
	port := host[strings.LastIndexByte(host, ':')+1:]
	cases := []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"no origin (CLI, curl)", nil, 200},
		{"own origin", map[string]string{"Origin": srv.URL}, 200},
		{"localhost name", map[string]string{"Host": "localhost:" + port, "Origin": "http://localhost:" + port}, 200},
		{"foreign origin", map[string]string{"Origin": "http://evil.example"}, 403},
		{"same host other port", map[string]string{"Origin": "http://127.0.0.1:1"}, 403},
		{"https origin", map[string]string{"Origin": "https://" + host}, 403},
		{"null origin", map[string]string{"Origin": "null"}, 403},
		{"rebinding host", map[string]string{"Host": "evil.example:" + port}, 403},
		{"rebinding host, own-looking origin", map[string]string{"Host": "evil.example:" + port, "Origin": "http://evil.example:" + port}, 403},
		{"wrong port in host", map[string]string{"Host": "127.0.0.1:1"}, 403},
	}
	for _, tc := range cases {
		status, _, body := call(t, "POST", srv.URL+"/api/v1/gc", nil, tc.hdr)
		if status != tc.status {
			t.Errorf("%s: POST gc = %d %s, want %d", tc.name, status, body, tc.status)
		}
	}
}

func TestAPIToken(t *testing.T) {
	srv := newTestAPI(t, newMemNode(), func(c *APIConfig) { c.Token = "s3cret" })
	for _, tc := range []struct {
		auth   string
		status int
	}{{"", 401}, {"Bearer wrong", 401}, {"s3cret", 401}, {"Bearer s3cret", 200}} {
		hdr := map[string]string{}
		if tc.auth != "" {
			hdr["Authorization"] = tc.auth
		}
		status, _, body := call(t, "GET", srv.URL+"/api/v1/id", nil, hdr)
		if status != tc.status {
			t.Errorf("Authorization %q: %d %s, want %d", tc.auth, status, body, tc.status)
		}
		if status == 401 && !strings.Contains(string(body), "--api-token") {
			t.Errorf("401 body does not say what to do: %s", body)
		}
	}
}

func TestAPIConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg APIConfig
		ok  bool
	}{
		{DefaultAPIConfig("127.0.0.1:5080"), true},
		{DefaultAPIConfig("[::1]:5080"), true},
		{DefaultAPIConfig("localhost:5080"), true},
		{DefaultAPIConfig("127.0.0.1:0"), false},
		{DefaultAPIConfig("127.0.0.1"), false},
		{DefaultAPIConfig("0.0.0.0:5080"), false},
		{func() APIConfig { c := DefaultAPIConfig("0.0.0.0:5080"); c.Token = "t"; return c }(), true},
		{APIConfig{Addr: "127.0.0.1:5080"}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tc.cfg, err, tc.ok)
		}
	}
}

func TestAPIEvents(t *testing.T) {
	srv := newTestAPI(t, newMemNode(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	snapshots := 0
	for sc.Scan() && snapshots < 2 {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var s apiv1.Event
		if err := json.Unmarshal([]byte(data), &s); err != nil {
			t.Fatalf("event data %q: %v", data, err)
		}
		if s.Info.ID != "12D3KooWMemNode" || s.Peers == nil || s.Transfers == nil {
			t.Fatalf("snapshot = %+v", s)
		}
		snapshots++
	}
	if snapshots != 2 {
		t.Fatalf("read %d snapshots: %v", snapshots, sc.Err())
	}
}
