package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/node"
)

// errorFixture is the content the error cases refer to, added to the Node
// under test through its API.
type errorFixture struct {
	file     string // a pinned file
	tree     string // a pinned directory with a.txt and sub/
	unpinned string // a file added and then unpinned
	missing  string // a valid CID nobody has
	// neverPinned is one nobody has or pinned: a pin of missing may stay
	// (the real node keeps it and fetches later).
	neverPinned string
}

// errorCase is one request that must fail the same way on every Node:
// with one of the statuses and a one-line error containing says.
type errorCase struct {
	gateway      bool // a gateway request, else an API one
	method, path string
	status       []int
	says         string
	// once, if set, must occur exactly once in the error: a CID is named
	// once, however many layers the error passed through.
	once string
}

// notHere is the answer for content nobody has: 404 when the search of
// the swarm has ended, 504 when it was still going at the deadline.
var notHere = []int{http.StatusNotFound, http.StatusGatewayTimeout}

func errorCases(f errorFixture) []errorCase {
	api := func(method, path string, status int, says string) errorCase {
		return errorCase{method: method, path: path, status: []int{status}, says: says}
	}
	gw := func(path string, status []int, says, once string) errorCase {
		return errorCase{gateway: true, method: "GET", path: path, status: status, says: says, once: once}
	}
	missing := func(method, path string) errorCase {
		return errorCase{method: method, path: path, status: notHere, says: f.missing, once: f.missing}
	}
	return []errorCase{
		api("GET", "/api/v1/cat/notacid", 400, "not a valid CID"),
		missing("GET", "/api/v1/cat/"+f.missing),
		missing("GET", "/api/v1/stat/"+f.missing),
		missing("POST", "/api/v1/pin/"+f.missing),
		api("GET", "/api/v1/cat/"+f.tree, 400, "get/"),
		api("GET", "/api/v1/cat/"+f.tree+"/nope", 404, "nope"),
		api("GET", "/api/v1/stat/"+f.tree+"/nope", 404, "nope"),
		api("GET", "/api/v1/cat/"+f.tree+"/../x", 400, "not a valid CID"), // the client cleans the path to /api/v1/cat/x
		api("GET", "/api/v1/stat/zzz", 400, "not a valid CID"),
		api("POST", "/api/v1/pin/bad", 400, "not a valid CID"),
		{method: "POST", path: "/api/v1/unpin/" + f.neverPinned, status: []int{404}, says: "not pinned", once: f.neverPinned},
		{method: "POST", path: "/api/v1/unpin/" + f.unpinned, status: []int{404}, says: "not pinned", once: f.unpinned},
		api("POST", "/api/v1/fetch", 400, "missing CID"),
		api("POST", "/api/v1/transfers/nope/cancel", 404, `no transfer "nope"`),
		api("POST", "/api/v1/connect", 400, "missing multiaddr"),
		api("POST", "/api/v1/connect?addr=/ip4/127.0.0.1/tcp/1", 400, "/p2p/"),
		api("GET", "/api/v1/gc", 405, "POST"),
		api("GET", "/api/v1/pin/"+f.file, 405, "POST"),
		api("GET", "/api/v1/add", 405, "POST"),
		api("GET", "/api/v1/fetch?cid="+f.file, 405, "POST"),
		api("POST", "/api/v1/id", 405, "GET"),
		api("DELETE", "/api/v1/ls", 405, "GET"),
		api("GET", "/api/v1/transfers/nope", 404, "no transfer"),
		api("GET", "/api/v1/nothing-here", 404, "no API route"),
		api("GET", "/api/v1/cluster", 404, "cluster.rest_addr"),
		api("POST", "/api/v1/swarm", 405, "GET"),

		gw("/ipfs/notacid", []int{400}, "not a valid CID", ""),
		gw("/ipfs/"+f.tree+"/a/%2e%2e/b", []int{400}, "..", ""),
		gw("/ipfs/"+f.missing, notHere, f.missing, f.missing),
		gw("/ipfs/"+f.missing+"?format=raw", notHere, f.missing, f.missing),
		gw("/ipfs/"+f.missing+"?format=car", notHere, f.missing, f.missing),
		gw("/ipfs/"+f.tree+"/nope.txt", []int{404}, "nope.txt", ""),
		gw("/ipfs/"+f.tree+"?format=zip", []int{400}, "format", ""),
		{gateway: true, method: "POST", path: "/ipfs/" + f.tree, status: []int{405}, says: "read-only"},
		gw("/ipns/example.com", []int{404}, "/ipfs/", ""),
	}
}

// withDeadline gives every request a deadline, as a client that stops
// waiting does: a Node still searching the swarm then ends the request
// instead of holding it.
func withDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// runErrorCases adds the fixture to n and checks every error case against
// n's API and gateway.
func runErrorCases(t *testing.T, n Node) {
	const deadline = 20 * time.Second
	apiSrv := newTestAPI(t, n, nil)
	apiSrv.Config.Handler = withDeadline(apiSrv.Config.Handler, deadline)
	gwSrv := newTestGateway(t, n, deadline)

	dir, _ := writeTestTree(t)
	status, _, body := call(t, "POST", apiSrv.URL+"/api/v1/add", bytes.NewReader(tarOf(t, dir)), map[string]string{"Content-Type": "application/x-tar"})
	var tree apiv1.AddResult
	if status != 200 || json.Unmarshal(body, &tree) != nil {
		t.Fatalf("add tar: %d %s", status, body)
	}
	f := errorFixture{
		file:     addFile(t, apiSrv.URL, []byte("some bytes")).CID,
		tree:     tree.CID,
		unpinned: addFile(t, apiSrv.URL, []byte("unpin me")).CID,
		missing:  expectedCID(t, []byte("never added")),

		neverPinned: expectedCID(t, []byte("never pinned")),
	}
	if status, _, body := call(t, "POST", apiSrv.URL+"/api/v1/unpin/"+f.unpinned, nil, nil); status != 200 {
		t.Fatalf("unpin: %d %s", status, body)
	}

	for _, tc := range errorCases(f) {
		base := apiSrv.URL
		if tc.gateway {
			base = gwSrv.URL
		}
		status, hdr, body := call(t, tc.method, base+tc.path, nil, nil)
		line, rest, _ := strings.Cut(string(body), "\n")
		msg := line
		if !tc.gateway {
			var e apiv1.ErrorBody
			if err := json.Unmarshal(body, &e); err != nil || hdr.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s: body %q (%s) is not a JSON error: %v", tc.method, tc.path, body, hdr.Get("Content-Type"), err)
			}
			msg = e.Error
		}
		switch {
		case !slices.Contains(tc.status, status):
			t.Errorf("%s %s = %d %q, want %v", tc.method, tc.path, status, body, tc.status)
		case rest != "" || msg == "" || !strings.Contains(msg, tc.says):
			t.Errorf("%s %s: body %q, want one line saying %q", tc.method, tc.path, body, tc.says)
		case tc.once != "" && strings.Count(msg, tc.once) != 1:
			t.Errorf("%s %s: %q names %s %d times, want once", tc.method, tc.path, msg, tc.once, strings.Count(msg, tc.once))
		}
	}
}

// TestErrorsMemNode and TestErrorsRealNode run the same error table: the
// status mapping is checked against the real node, not only the fake.
func TestErrorsMemNode(t *testing.T) { runErrorCases(t, newMemNode()) }

// TestErrorsRealNode runs the table against a real node whose search for
// providers ends after 3 s (2 min by default), so content nobody has
// answers 504 quickly.
func TestErrorsRealNode(t *testing.T) {
	runErrorCases(t, startLoopbackNode(t, func(c *node.Config) { c.Transfer.SearchTimeout.Duration = 3 * time.Second }))
}
