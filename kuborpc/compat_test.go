package kuborpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// How an answer of shoal is held against Kubo's for the same request.
type compareMode int

const (
	// exact: the same JSON values, lines compared as a multiset (pin ls
	// order is not defined).
	exact compareMode = iota
	// shape: the same field names and JSON types on every line; runs of
	// lines of one shape count once (progress lines come as often as a
	// pin takes). For values that legitimately differ: peer IDs, keys,
	// addresses, versions, sizes of the repos.
	shape
	// rawBytes: the same body bytes.
	rawBytes
	// configSubset: every key shoal shows exists in Kubo's config with a
	// value of the same JSON type.
	configSubset
)

// headersCompared are the headers Kubo's clients read; they must match.
var headersCompared = []string{"Content-Type", "X-Chunked-Output", "X-Stream-Output", "Trailer",
	"Access-Control-Expose-Headers", "X-Content-Length", "Allow"}

type compatCase struct {
	route string
	rq    request
	kubo  *request // when Kubo's request differs (an address of the other)
	mode  compareMode
	check func(t *testing.T, shoal answer) // more assertions on shoal's answer
}

func deterministic(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func rawCID(b []byte) string {
	h, _ := mh.Sum(b, mh.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, h).String()
}

// TestKuboCompat sends the same requests, on the same content, to shoal's
// RPC and to a real Kubo 0.43 and holds shoal's answers to Kubo's, route
// by route: status, the headers clients read, and the body by the case's
// compareMode. docs/kubo-rpc.md lists the result.
func TestKuboCompat(t *testing.T) {
	k := startKubo(t)
	sn, shoal := startShoal(t, "")
	fileA := deterministic(2<<20+12345, 1) // three 1 MiB leaves under a dag-pb root
	blockB, blockC := []byte("shoal block B\n"), []byte("shoal block C\n")
	b, c := rawCID(blockB), rawCID(blockC)

	// The file's CID comes from Kubo's own add: shoal must give the same.
	var a string
	addCheck := func(t *testing.T, got answer) {
		var ev struct{ Hash string }
		if err := json.Unmarshal(bytes.TrimSpace(got.body), &ev); err != nil || ev.Hash == "" {
			t.Fatalf("add answered %q", got.body)
		}
		a = ev.Hash
	}
	q := url.QueryEscape
	shoalAddr := sn.Info().Addresses[0]
	cases := []compatCase{
		{route: "add", rq: request{path: "/api/v0/add?pin=true", files: [][]byte{fileA}}, mode: exact, check: addCheck},
		{route: "block/put", rq: request{path: "/api/v0/block/put?cid-codec=raw&mhtype=sha2-256&mhlen=32&pin=false&allow-big-block=true", files: [][]byte{blockB, blockC}}, mode: exact},
		{route: "block/put (default options)", rq: request{path: "/api/v0/block/put", files: [][]byte{blockB}}, mode: exact},
		{route: "block/get", rq: request{path: "/api/v0/block/get?arg=" + b}, mode: rawBytes},
		{route: "block/stat", rq: request{path: "/api/v0/block/stat?arg=" + b}, mode: exact},
		{route: "cat", rq: request{path: "/api/v0/cat?arg=%A"}, mode: rawBytes},
		{route: "cat (offset, length)", rq: request{path: "/api/v0/cat?arg=/ipfs/%A&offset=1048000&length=5000"}, mode: rawBytes},
		{route: "cat (no argument)", rq: request{path: "/api/v0/cat"}, mode: rawBytes},
		{route: "block/stat (root)", rq: request{path: "/api/v0/block/stat?arg=%A"}, mode: exact},
		{route: "resolve", rq: request{path: "/api/v0/resolve?arg=/ipfs/%A"}, mode: exact},
		{route: "pin/ls (stream, recursive)", rq: request{path: "/api/v0/pin/ls?stream=true&type=recursive"}, mode: exact},
		{route: "pin/ls (stream, arg, recursive)", rq: request{path: "/api/v0/pin/ls?stream=true&arg=%A&type=recursive"}, mode: exact},
		{route: "pin/ls (not pinned)", rq: request{path: "/api/v0/pin/ls?stream=true&arg=" + c + "&type=recursive"}, mode: exact},
		{route: "pin/ls (all, not streamed)", rq: request{path: "/api/v0/pin/ls"}, mode: exact},
		{route: "pin/ls (stream, indirect)", rq: request{path: "/api/v0/pin/ls?stream=true&type=indirect"}, mode: exact},
		{route: "pin/ls (bad type)", rq: request{path: "/api/v0/pin/ls?type=sideways"}, mode: exact},
		{route: "pin/add (progress)", rq: request{path: "/api/v0/pin/add?arg=" + c + "&recursive=true&progress=true"}, mode: shape,
			check: func(t *testing.T, got answer) {
				lines := strings.Split(strings.TrimSpace(string(got.body)), "\n")
				if last := lines[len(lines)-1]; last != `{"Pins":["`+c+`"]}` {
					t.Errorf("pin/add's last line is %s, want the pin", last)
				}
			}},
		{route: "pin/add", rq: request{path: "/api/v0/pin/add?arg=" + c}, mode: exact},
		{route: "pin/update", rq: request{path: "/api/v0/pin/update?arg=" + c + "&arg=" + b + "&unpin=false"}, mode: exact},
		{route: "pin/update (from not pinned)", rq: request{path: "/api/v0/pin/update?arg=" + rawCID([]byte("x")) + "&arg=" + b}, mode: exact},
		{route: "pin/rm", rq: request{path: "/api/v0/pin/rm?arg=" + b}, mode: exact},
		{route: "pin/rm (not pinned)", rq: request{path: "/api/v0/pin/rm?arg=" + b}, mode: exact},
		{route: "pin/rm (second)", rq: request{path: "/api/v0/pin/rm?arg=" + c}, mode: exact},
		{route: "repo/gc", rq: request{path: "/api/v0/repo/gc?stream-errors=true"}, mode: shape,
			check: func(t *testing.T, got answer) {
				for _, want := range []string{b, c} {
					if !strings.Contains(string(got.body), `{"Key":{"/":"`+want+`"}}`) {
						t.Errorf("repo/gc did not list %s: %s", want, got.body)
					}
				}
			}},
		{route: "block/stat (after gc)", rq: request{path: "/api/v0/block/stat?arg=%A"}, mode: exact},
		{route: "repo/stat (size-only)", rq: request{path: "/api/v0/repo/stat?size-only=true"}, mode: shape},
		{route: "repo/stat", rq: request{path: "/api/v0/repo/stat"}, mode: shape},
		{route: "id", rq: request{path: "/api/v0/id"}, mode: shape,
			check: func(t *testing.T, got answer) {
				var id idOutput
				if err := json.Unmarshal(got.body, &id); err != nil || id.ID != sn.Info().ID || id.PublicKey == "" || len(id.Protocols) == 0 {
					t.Errorf("id answered %s", got.body)
				}
			}},
		{route: "version", rq: request{path: "/api/v0/version"}, mode: shape},
		{route: "swarm/connect", rq: request{path: "/api/v0/swarm/connect?arg=" + q(k.swarm)}, kubo: &request{path: "/api/v0/swarm/connect?arg=" + q(shoalAddr)}, mode: shape},
		{route: "swarm/peers", rq: request{path: "/api/v0/swarm/peers"}, mode: shape},
		{route: "config/show", rq: request{path: "/api/v0/config/show"}, mode: configSubset},
		{route: "command not found", rq: request{path: "/api/v0/no/such/command"}, mode: rawBytes},
		{route: "outside /api/v0", rq: request{path: "/api/v1/version"}, mode: rawBytes},
		{route: "GET refused", rq: request{method: http.MethodGet, path: "/api/v0/version"}, mode: rawBytes},
		{route: "PUT refused", rq: request{method: http.MethodPut, path: "/api/v0/id"}, mode: rawBytes},
	}
	for _, tc := range cases {
		ok := t.Run(tc.route, func(t *testing.T) {
			rq := tc.rq
			rq.path = strings.ReplaceAll(rq.path, "%A", a)
			krq := rq
			if tc.kubo != nil {
				krq = *tc.kubo
			}
			want := do(t, k.apiAddr, krq)
			got := do(t, shoal, rq)
			if tc.check != nil && got.status == http.StatusOK {
				defer tc.check(t, got)
			}
			compareAnswers(t, tc.mode, want, got)
		})
		if !ok && tc.route == "add" {
			t.Fatal("add differs; the later cases need its CID")
		}
	}
}

func compareAnswers(t *testing.T, mode compareMode, kubo, shoal answer) {
	t.Helper()
	if kubo.status != shoal.status {
		t.Errorf("status: kubo %d, shoal %d\nkubo:  %s\nshoal: %s", kubo.status, shoal.status, kubo.body, shoal.body)
		return
	}
	for _, h := range headersCompared {
		if k, s := kubo.header.Get(h), shoal.header.Get(h); k != s {
			t.Errorf("header %s: kubo %q, shoal %q", h, k, s)
		}
	}
	switch mode {
	case rawBytes:
		if !bytes.Equal(kubo.body, shoal.body) {
			t.Errorf("bodies differ: kubo %d bytes %.200q, shoal %d bytes %.200q", len(kubo.body), kubo.body, len(shoal.body), shoal.body)
		}
	case exact:
		k, s := sortedLines(t, kubo.body), sortedLines(t, shoal.body)
		if !slices.Equal(k, s) {
			t.Errorf("answers differ:\nkubo:  %s\nshoal: %s", strings.Join(k, "\n       "), strings.Join(s, "\n       "))
		}
	case shape:
		k, s := shapes(t, kubo.body), shapes(t, shoal.body)
		if !slices.Equal(k, s) {
			t.Errorf("shapes differ:\nkubo:  %s\nshoal: %s\nkubo body:  %.600s\nshoal body: %.600s", k, s, kubo.body, shoal.body)
		}
	case configSubset:
		var k, s map[string]any
		if err := json.Unmarshal(kubo.body, &k); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(shoal.body, &s); err != nil {
			t.Fatal(err)
		}
		subset(t, "", k, s)
	}
}

// sortedLines is the answer's lines, each re-encoded from its JSON (so
// key order does not matter), sorted.
func sortedLines(t *testing.T, body []byte) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		var v any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		b, _ := json.Marshal(v)
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}

// shapes is each line's JSON with every scalar replaced by its type and
// every array by the set of its elements' shapes; runs of one shape count
// once.
func shapes(t *testing.T, body []byte) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		var v any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		b, _ := json.Marshal(shapeOf(v))
		if s := string(b); len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

func shapeOf(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range v {
			m[k] = shapeOf(e)
		}
		return m
	case []any:
		seen := map[string]bool{}
		var out []string
		for _, e := range v {
			b, _ := json.Marshal(shapeOf(e))
			if !seen[string(b)] {
				seen[string(b)] = true
				out = append(out, string(b))
			}
		}
		slices.Sort(out)
		return out
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func subset(t *testing.T, path string, kubo, shoal map[string]any) {
	for key, sv := range shoal {
		kv, ok := kubo[key]
		if !ok {
			t.Errorf("config/show: shoal shows %s%s, Kubo has no such key", path, key)
			continue
		}
		sm, sIsMap := sv.(map[string]any)
		km, kIsMap := kv.(map[string]any)
		switch {
		case sIsMap && kIsMap:
			subset(t, path+key+".", km, sm)
		case fmt.Sprintf("%T", sv) != fmt.Sprintf("%T", kv):
			t.Errorf("config/show: %s%s is %T in shoal, %T in Kubo", path, key, sv, kv)
		}
	}
}
