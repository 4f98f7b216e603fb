package web

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/sim"
)

// TestNamesThroughAPIAndGateway: a name given to add is kept with the
// root by a real node and comes back from add, ls, stat and the gateway's
// Content-Disposition; a path inside a directory is named by its last
// segment; a name that is not one path segment is refused with 400.
func TestNamesThroughAPIAndGateway(t *testing.T) {
	n := startLoopbackNode(t)
	api := newTestAPI(t, n, nil)
	gw := newTestGateway(t, n, 0)
	data := randomBytes(3000, 11)
	name := "résumé \"final\".txt"

	status, _, body := call(t, "POST", api.URL+"/api/v1/add?name="+url.QueryEscape(name), bytes.NewReader(data), nil)
	var res apiv1.AddResult
	if status != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Name != name {
		t.Fatalf("add with a name: %d %s", status, body)
	}
	status, _, body = call(t, "GET", api.URL+"/api/v1/ls", nil, nil)
	var roots []struct {
		CID  string `json:"cid"`
		Name string `json:"name"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &roots) != nil || len(roots) != 1 || roots[0].Name != name {
		t.Fatalf("ls: %d %s", status, body)
	}
	status, _, body = call(t, "GET", api.URL+"/api/v1/stat/"+res.CID, nil, nil)
	var st apiv1.CIDStat
	if status != http.StatusOK || json.Unmarshal(body, &st) != nil || st.Name != name || !st.Root {
		t.Fatalf("stat: %d %s", status, body)
	}

	status, hdr, body := call(t, "GET", gw.URL+"/ipfs/"+res.CID, nil, nil)
	if status != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("gateway: %d, %d bytes", status, len(body))
	}
	disp, params, err := mime.ParseMediaType(hdr.Get("Content-Disposition"))
	if err != nil || disp != "inline" || params["filename"] != name {
		t.Fatalf("Content-Disposition %q parses as %q %q (%v), want inline with filename %q", hdr.Get("Content-Disposition"), disp, params, err, name)
	}
	if ct := hdr.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Fatalf("Content-Type %q: the name's extension should type the file", ct)
	}
	_, hdr, _ = call(t, "GET", gw.URL+"/ipfs/"+res.CID+"?filename=other.bin", nil, nil)
	if got := hdr.Get("Content-Disposition"); got != `inline; filename="other.bin"` {
		t.Fatalf("?filename= gives Content-Disposition %q", got)
	}

	// A directory: its name on the root, a path's own name below it.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	status, _, body = call(t, "POST", api.URL+"/api/v1/add?name=tree", bytes.NewReader(tarOf(t, dir)), map[string]string{"Content-Type": "application/x-tar"})
	if status != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Name != "tree" {
		t.Fatalf("add tar with a name: %d %s", status, body)
	}
	status, _, body = call(t, "GET", api.URL+"/api/v1/stat/"+res.CID+"/a.txt", nil, nil)
	if status != http.StatusOK || json.Unmarshal(body, &st) != nil || st.Name != "a.txt" {
		t.Fatalf("stat of a path: %d %s", status, body)
	}
	_, hdr, _ = call(t, "GET", gw.URL+"/ipfs/"+res.CID+"/a.txt", nil, nil)
	if got := hdr.Get("Content-Disposition"); got != `inline; filename="a.txt"` {
		t.Fatalf("gateway path Content-Disposition %q", got)
	}

	// Unnamed content has no name and no Content-Disposition.
	plain := addFile(t, api.URL, []byte("no name"))
	status, _, body = call(t, "GET", api.URL+"/api/v1/stat/"+plain.CID, nil, nil)
	if status != http.StatusOK || bytes.Contains(body, []byte(`"name"`)) {
		t.Fatalf("stat of unnamed content: %d %s", status, body)
	}
	if _, hdr, _ = call(t, "GET", gw.URL+"/ipfs/"+plain.CID, nil, nil); hdr.Get("Content-Disposition") != "" {
		t.Fatalf("unnamed content has Content-Disposition %q", hdr.Get("Content-Disposition"))
	}

	for _, bad := range []string{"a/b", "..", "x\ny"} {
		status, _, body = call(t, "POST", api.URL+"/api/v1/add?name="+url.QueryEscape(bad), bytes.NewReader(data), nil)
		if status != http.StatusBadRequest || !bytes.Contains(body, []byte("base name")) {
			t.Errorf("add with name %q: %d %s, want 400 naming what to give", bad, status, body)
		}
	}
}

func TestContentDisposition(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"data.tar", `inline; filename="data.tar"`},
		{"a b.txt", `inline; filename="a b.txt"`},
		{`say "hi".txt`, `inline; filename="say _hi_.txt"; filename*=UTF-8''say%20%22hi%22.txt`},
		{`back\slash`, `inline; filename="back_slash"; filename*=UTF-8''back%5Cslash`},
		{"résumé.pdf", `inline; filename="r_sum_.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf`},
		{"tab\there", `inline; filename="tab_here"; filename*=UTF-8''tab%09here`},
		{"日本.txt", `inline; filename="__.txt"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt`},
	} {
		got := contentDisposition("inline", tc.name)
		if got != tc.want {
			t.Errorf("contentDisposition(%q) = %s, want %s", tc.name, got, tc.want)
		}
		_, params, err := mime.ParseMediaType(got)
		if err != nil || params["filename"] != tc.name {
			t.Errorf("%s parses back as %q (%v), want %q", got, params["filename"], err, tc.name)
		}
	}
}

// TestFetchNames: a fetch by CID/path is named by the path's last
// segment, a fetch with ?name= by that name, one by a bare CID by the name
// the fetching node already knows (none here: names do not travel on the
// wire); the transfer shows it and the fetched root keeps it; a bad name
// is refused with 400.
func TestFetchNames(t *testing.T) {
	c := sim.NewCluster(t, 2, sim.ClusterOptions{}) // connected
	seeder, fetcher := c.Node(0), c.Node(1)
	sapi, fapi := newTestAPI(t, seeder, nil), newTestAPI(t, fetcher, nil)
	dir, _ := writeTestTree(t)
	status, _, body := call(t, "POST", sapi.URL+"/api/v1/add?name=tree", bytes.NewReader(tarOf(t, dir)), map[string]string{"Content-Type": "application/x-tar"})
	var tree apiv1.AddResult
	if status != 200 || json.Unmarshal(body, &tree) != nil {
		t.Fatalf("add tar: %d %s", status, body)
	}
	plain := addFile(t, sapi.URL, []byte("fetched by its bare CID")).CID
	named := addFile(t, sapi.URL, []byte("fetched with a name")).CID

	fetch := func(q string) node.TransferInfo {
		t.Helper()
		status, _, body := call(t, "POST", fapi.URL+"/api/v1/fetch?wait=true&timeout=30s&"+q, nil, nil)
		var info node.TransferInfo
		if status != 200 || json.Unmarshal(body, &info) != nil || info.State != node.TransferDone {
			t.Fatalf("fetch %s: %d %s", q, status, body)
		}
		return info
	}
	for _, tc := range []struct{ query, want string }{
		{"cid=" + url.QueryEscape(tree.CID+"/sub/deep/x.json"), "x.json"},
		{"cid=" + url.QueryEscape("/ipfs/"+tree.CID+"/a.txt"), "a.txt"},
		{"cid=" + named + "&name=notes.txt", "notes.txt"},
		{"cid=" + plain, ""},
	} {
		info := fetch(tc.query)
		if info.Name != tc.want {
			t.Errorf("fetch %s: transfer name %q, want %q", tc.query, info.Name, tc.want)
		}
		roots, err := fetcher.Roots(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range roots {
			if r.CID == info.CID {
				found = true
				if r.Name != tc.want {
					t.Errorf("fetch %s: root %s recorded as %q, want %q", tc.query, r.CID, r.Name, tc.want)
				}
			}
		}
		if !found {
			t.Errorf("fetch %s: root %s not among the fetcher's roots", tc.query, info.CID)
		}
	}
	status, _, body = call(t, "POST", fapi.URL+"/api/v1/fetch?cid="+plain+"&name=a/b", nil, nil)
	if status != http.StatusBadRequest || !bytes.Contains(body, []byte("a/b")) {
		t.Errorf("fetch with name=a/b: %d %s, want 400 naming it", status, body)
	}
}
