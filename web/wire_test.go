package web

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/node"
)

// fill sets every field of the struct v points to, recursively, to a
// value that is not zero and depends only on the field's place, so a
// field a route forgets, renames or reorders shows in its JSON.
func fill(v reflect.Value, seed *int) {
	*seed++
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + string(rune('a'+*seed%26)))
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*seed))
	case reflect.Uint64:
		v.SetUint(uint64(*seed))
	case reflect.Float64:
		v.SetFloat(float64(*seed) + 0.5)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), seed)
		}
		v.Set(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Unix(int64(1_700_000_000+*seed), 0).UTC()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), seed)
			}
		}
	}
}

// filled returns a T with every field set by fill.
func filled[T any]() T {
	var v T
	seed := 0
	fill(reflect.ValueOf(&v).Elem(), &seed)
	return v
}

// wireNode answers every route that reports the node's state with values
// whose every field is set (content routes are memNode's).
type wireNode struct{ *memNode }

func (wireNode) Info() node.Info        { return filled[node.Info]() }
func (wireNode) Peers() []node.PeerInfo { return filled[struct{ P []node.PeerInfo }]().P }
func (w wireNode) Transfers() []node.TransferInfo {
	return filled[struct{ T []node.TransferInfo }]().T
}
func (w wireNode) Transfer(string) (node.TransferInfo, error) { return w.Transfers()[0], nil }
func (w wireNode) CancelTransfer(string) (node.TransferInfo, error) {
	return filled[node.TransferInfo](), nil
}
func (wireNode) Roots(context.Context) ([]node.RootInfo, error) {
	return filled[struct{ R []node.RootInfo }]().R, nil
}
func (wireNode) GC(context.Context) (node.GCResult, error) { return filled[node.GCResult](), nil }
func (wireNode) Verify(context.Context) (node.VerifyReport, error) {
	return filled[node.VerifyReport](), nil
}
func (wireNode) RoutingTable() []node.RoutingBucket {
	return filled[struct{ B []node.RoutingBucket }]().B
}
func (wireNode) WantList() []node.WantEntry        { return filled[struct{ W []node.WantEntry }]().W }
func (wireNode) Stats() node.Stats                 { return filled[node.Stats]() }
func (wireNode) Swarm(context.Context) apiv1.Swarm { return filled[apiv1.Swarm]() }
func (wireNode) Cluster(context.Context) (apiv1.Cluster, error) {
	return filled[apiv1.Cluster](), nil
}

// TestWireJSON: every route that answers JSON sends, byte for byte, what
// testdata/wire holds — for a node whose every field is set and for an
// empty one (lists that are null or []). The files were written by the
// code before the API's types and the node's became one
// (SHOAL_UPDATE_WIRE=1 rewrites them), so they hold the wire still.
func TestWireJSON(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, fixture := range []struct {
		name string
		n    Node
	}{{"filled", wireNode{newMemNode()}}, {"empty", newMemNode()}} {
		id := "t1" // memNode has none: the 404 body is on the wire too
		if ts := fixture.n.Transfers(); len(ts) > 0 {
			id = ts[0].ID
		}
		srv := newTestAPI(t, fixture.n, nil)
		file := addFile(t, srv.URL, randomBytes(3<<20+17, 3))
		routes := []struct{ name, method, path string }{
			{"id", "GET", "/api/v1/id"},
			{"stat", "GET", "/api/v1/stat"},
			{"stat-cid", "GET", "/api/v1/stat/" + file.CID},
			{"peers", "GET", "/api/v1/peers"},
			{"transfers", "GET", "/api/v1/transfers"},
			{"transfer", "GET", "/api/v1/transfers/" + id},
			{"cancel", "POST", "/api/v1/transfers/" + id + "/cancel"},
			{"ls", "GET", "/api/v1/ls"},
			{"pin", "POST", "/api/v1/pin/" + file.CID},
			{"gc", "POST", "/api/v1/gc"},
			{"verify", "POST", "/api/v1/repo/verify"},
			{"swarm", "GET", "/api/v1/swarm"},
			{"cluster", "GET", "/api/v1/cluster"},
		}
		got := map[string][]byte{}
		for _, r := range routes {
			_, _, body := call(t, r.method, srv.URL+r.path, nil, nil)
			// The server's port changes from run to run.
			got[r.name] = []byte(strings.ReplaceAll(string(body), srv.URL, "http://API"))
		}
		a := &api{cfg: DefaultAPIConfig("127.0.0.1:5001"), n: fixture.n}
		s := &site{cfg: a.cfg, n: fixture.n}
		for name, v := range map[string]any{"events": a.event(now), "dashboard": s.snapshot(context.Background(), now)} {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			got[name] = b
		}
		for name, body := range got {
			path := filepath.Join("testdata", "wire", fixture.name+"-"+name+".json")
			if os.Getenv("SHOAL_UPDATE_WIRE") == "1" {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, body, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%s: %v (SHOAL_UPDATE_WIRE=1 writes it)", name, err)
			}
			if string(body) != string(want) {
				t.Errorf("%s %s: the wire changed:\n%s\nwas\n%s", fixture.name, name, body, want)
			}
		}
		if fixture.name == "filled" && strings.Contains(string(got["transfer"]), `"error": "no transfer`) {
			t.Errorf("transfer %s not found: %s", id, got["transfer"])
		}
	}
}
