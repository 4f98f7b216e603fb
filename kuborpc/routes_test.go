package kuborpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// TestRoutesOnShoal runs the connector's routes on shoal alone (no Kubo
// needed): what is added is read back whole and by range, listed as a
// recursive pin with its leaves indirect, unpinned and collected, and a
// put block is read back and its GC reported by CID.
func TestRoutesOnShoal(t *testing.T) {
	_, addr := startShoal(t, "")
	data := deterministic(2<<20+99, 3)
	add := do(t, addr, request{path: "/api/v0/add", files: [][]byte{data}})
	var ev struct{ Name, Hash, Size string }
	if err := json.Unmarshal(add.body, &ev); err != nil || add.status != http.StatusOK {
		t.Fatalf("add: %d %s", add.status, add.body)
	}
	if ev.Name != "f0.bin" || !strings.HasPrefix(ev.Hash, "bafy") || ev.Size == "" {
		t.Fatalf("add answered %s", add.body)
	}
	cat := do(t, addr, request{path: "/api/v0/cat?arg=/ipfs/" + ev.Hash})
	if !bytes.Equal(cat.body, data) || cat.header.Get("X-Content-Length") != "2097251" {
		t.Fatalf("cat: %d bytes, X-Content-Length %q", len(cat.body), cat.header.Get("X-Content-Length"))
	}
	part := do(t, addr, request{path: "/api/v0/cat?arg=" + ev.Hash + "&offset=1048570&length=10"})
	if !bytes.Equal(part.body, data[1048570:1048580]) {
		t.Fatalf("cat range: %q", part.body)
	}
	ls := do(t, addr, request{path: "/api/v0/pin/ls?stream=true"})
	lines := strings.Split(strings.TrimSpace(string(ls.body)), "\n")
	if len(lines) != 4 || lines[0] != `{"Cid":"`+ev.Hash+`","Type":"recursive"}` || !strings.Contains(lines[1], `"Type":"indirect"`) {
		t.Fatalf("pin/ls: %s", ls.body)
	}
	one := do(t, addr, request{path: "/api/v0/pin/ls?stream=true&type=recursive&arg=" + ev.Hash})
	if string(one.body) != `{"Cid":"`+ev.Hash+`","Type":"recursive"}`+"\n" || one.header.Get("X-Chunked-Output") != "1" {
		t.Fatalf("pin/ls arg: %q", one.body)
	}
	blk := []byte("a block")
	put := do(t, addr, request{path: "/api/v0/block/put?cid-codec=raw&mhtype=sha2-256&mhlen=32&pin=false", files: [][]byte{blk}})
	key := rawCID(blk)
	if string(put.body) != `{"Key":"`+key+`","Size":7}`+"\n" {
		t.Fatalf("block/put: %q", put.body)
	}
	if got := do(t, addr, request{path: "/api/v0/block/get?arg=" + key}); !bytes.Equal(got.body, blk) {
		t.Fatalf("block/get: %q", got.body)
	}
	rm := do(t, addr, request{path: "/api/v0/pin/rm?arg=" + ev.Hash})
	if string(rm.body) != `{"Pins":["`+ev.Hash+`"]}`+"\n" {
		t.Fatalf("pin/rm: %q", rm.body)
	}
	again := do(t, addr, request{path: "/api/v0/pin/rm?arg=" + ev.Hash})
	if again.status != http.StatusInternalServerError || string(again.body) != `{"Message":"not pinned or pinned indirectly","Code":0,"Type":"error"}`+"\n" {
		t.Fatalf("pin/rm again: %d %q", again.status, again.body)
	}
	gc := do(t, addr, request{path: "/api/v0/repo/gc"})
	if n := strings.Count(string(gc.body), `{"Key":{"/":"`); n != 5 || !strings.Contains(string(gc.body), key) {
		t.Fatalf("repo/gc listed %d blocks, want the 4 of the file and the put one: %s", n, gc.body)
	}
	stat := do(t, addr, request{path: "/api/v0/repo/stat?size-only=true"})
	if string(stat.body) != `{"RepoSize":0,"StorageMax":18446744073709551615,"NumObjects":0,"RepoPath":"","Version":""}`+"\n" {
		t.Fatalf("repo/stat: %q", stat.body)
	}
	for path, want := range map[string]int{"/api/v0/nope": 404, "/api/v0/name/resolve": 500, "/api/v0/resolve?arg=/ipns/x": 400,
		"/api/v0/pin/add?arg=" + key + "&recursive=false": 500, "/api/v0/add?cid-version=0": 400} {
		if got := do(t, addr, request{path: path}); got.status != want {
			t.Errorf("%s: %d %s, want %d", path, got.status, got.body, want)
		}
	}
}

// TestUploadErrors holds the answers of the two multipart routes (add,
// block/put) when the request is wrong: options refused before the body
// is read, a body that is not multipart, a block over Bitswap's limit, and
// a second file to add after the first was answered (the error then comes
// in the X-Stream-Error trailer, after the first file's line).
func TestUploadErrors(t *testing.T) {
	_, addr := startShoal(t, "")
	small := deterministic(1000, 7)
	cases := []struct {
		name     string
		rq       request
		status   int
		body     string // a substring of the body
		trailer  string // a substring of X-Stream-Error, when one is wanted
		lines    int    // JSON lines before the error
		noBlocks bool   // the request must have stored nothing
	}{
		{name: "add with another CID version", rq: request{path: "/api/v0/add?cid-version=0", files: [][]byte{small}},
			status: http.StatusBadRequest, body: `add option cid-version=0 is not supported`, noBlocks: true},
		{name: "block/put with an unknown codec", rq: request{path: "/api/v0/block/put?cid-codec=nonsense", files: [][]byte{small}},
			status: http.StatusBadRequest, body: `unrecognized CID codec: nonsense`, noBlocks: true},
		{name: "add without a multipart body", rq: request{path: "/api/v0/add"},
			status: http.StatusBadRequest, body: `the body must be multipart/form-data`, noBlocks: true},
		{name: "block/put over 2 MiB", rq: request{path: "/api/v0/block/put", files: [][]byte{deterministic(2<<20+1, 8)}},
			status: http.StatusInternalServerError, body: `produced block is over 2MiB`, noBlocks: true},
		{name: "add with two files", rq: request{path: "/api/v0/add", files: [][]byte{small, deterministic(500, 9)}},
			status: http.StatusOK, lines: 1, trailer: `adds one file per request`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := do(t, addr, request{path: "/api/v0/repo/stat"})
			got := do(t, addr, tc.rq)
			if got.status != tc.status || !strings.Contains(string(got.body), tc.body) {
				t.Fatalf("answered %d %q, want %d with %q", got.status, got.body, tc.status, tc.body)
			}
			if tc.status != http.StatusOK {
				var e struct{ Message, Type string }
				if err := json.Unmarshal(got.body, &e); err != nil || e.Type != "error" {
					t.Fatalf("not Kubo's error object: %q", got.body)
				}
			}
			if tc.trailer != "" {
				lines := strings.Split(strings.TrimSpace(string(got.body)), "\n")
				if len(lines) != tc.lines || !strings.Contains(got.header.Get("Trailer-X-Stream-Error"), tc.trailer) {
					t.Fatalf("lines %q, X-Stream-Error %q; want %d lines then %q", lines, got.header.Get("Trailer-X-Stream-Error"), tc.lines, tc.trailer)
				}
			}
			if tc.noBlocks {
				after := do(t, addr, request{path: "/api/v0/repo/stat"})
				var b, a struct{ NumObjects int }
				_ = json.Unmarshal(before.body, &b)
				_ = json.Unmarshal(after.body, &a)
				if a.NumObjects != b.NumObjects {
					t.Fatalf("the refused request stored blocks: %d before, %d after", b.NumObjects, a.NumObjects)
				}
			}
		})
	}
}

// TestBlockPutStreamed sends block/put as IPFS Cluster does: many blocks
// in one chunked body (no Content-Length) while the answer streams back.
// Every block must come back under its own CID and read back whole: the
// answer's first line must not cost the unread body (Go's HTTP/1 server
// discards up to 256 KiB of it unless the handler asks for full duplex).
func TestBlockPutStreamed(t *testing.T) {
	_, addr := startShoal(t, "")
	var blocks [][]byte
	for i := range 4 {
		blocks = append(blocks, deterministic(300<<10+i, uint64(20+i)))
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		for i, b := range blocks {
			w, err := mw.CreateFormFile("file", fmt.Sprintf("b%d", i))
			if err == nil {
				_, err = w.Write(b)
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			time.Sleep(20 * time.Millisecond) // let the answer's lines go out between blocks
		}
		pw.CloseWithError(mw.Close())
	}()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v0/block/put?cid-codec=raw&mhtype=sha2-256&mhlen=32&pin=false&allow-big-block=true", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || res.Trailer.Get("X-Stream-Error") != "" {
		t.Fatalf("block/put: %d %v %q, X-Stream-Error %q", res.StatusCode, err, body, res.Trailer.Get("X-Stream-Error"))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for i, b := range blocks {
		var got struct {
			Key  string
			Size int
		}
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("answer line %d: %v (body %q)", i, err, body)
		}
		want, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum(b)
		if got.Key != want.String() || got.Size != len(b) {
			t.Fatalf("block %d answered %s (%d B), want %s (%d B)", i, got.Key, got.Size, want, len(b))
		}
		if back := do(t, addr, request{path: "/api/v0/block/get?arg=" + want.String()}); !bytes.Equal(back.body, b) {
			t.Fatalf("block %d reads back %d B differing from the %d B put", i, len(back.body), len(b))
		}
	}
}

// TestPinAddCancelledLeavesNoPin: a pin/add whose content no peer has,
// cancelled by the client (as IPFS Cluster cancels a pin that stops
// progressing), leaves no pin behind: pin/ls says it is not pinned, as
// Kubo would, rather than report a DAG this node does not hold.
func TestPinAddCancelledLeavesNoPin(t *testing.T) {
	_, addr := startShoal(t, "")
	missing, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum([]byte("held by no peer"))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/v0/pin/add?arg="+missing.String()+"&progress=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := http.DefaultClient.Do(req); err == nil {
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
		if err == nil {
			t.Fatalf("pin/add of a CID no peer has answered %d in full", res.StatusCode)
		}
	}
	want := fmt.Sprintf(`path '%s' is not pinned`, missing)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ls := do(t, addr, request{path: "/api/v0/pin/ls?stream=true&type=recursive&arg=" + missing.String()})
		if ls.status == http.StatusInternalServerError && strings.Contains(string(ls.body), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the cancelled pin/add, pin/ls answers %d %s; want %q", ls.status, ls.body, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
