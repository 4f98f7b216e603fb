package kuborpc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
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
