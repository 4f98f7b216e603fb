// Package clustertest serves answers of an IPFS Cluster peer's REST API
// (ipfs-cluster v1.1.6) for tests of what reads it (package ipfscluster,
// the dashboard). The answers in testdata were written with the
// cluster's own API types (testdata/gen, a module of its own so that
// shoal does not depend on ipfs-cluster) and are streamed as the cluster
// streams them: one JSON object per line, flushed, an X-Stream-Error
// trailer.
package clustertest

import (
	"embed"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

//go:embed testdata/*.ndjson
var recorded embed.FS

// RecordedCID is the root of the recorded pin that wants 2 to 3 copies
// (replication_factor_min 2, max 3) and has one peer "pinned", one
// "pinning" and one "remote"; the other recorded pin,
// bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku, wants
// every peer (-1) and has two "pinned" and one "pin_error".
const RecordedCID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"

// Recorded returns the recorded answer to GET path ("/allocations" or
// "/pins"), with RecordedCID replaced by root when root is not "".
func Recorded(t testing.TB, path, root string) string {
	t.Helper()
	b, err := recorded.ReadFile("testdata/" + strings.TrimPrefix(path, "/") + ".ndjson")
	if err != nil {
		t.Fatalf("clustertest: no recorded answer to %s: %v", path, err)
	}
	if root == "" {
		return string(b)
	}
	return strings.ReplaceAll(string(b), RecordedCID, root)
}

// Serve starts a cluster REST API on loopback answering GET
// /allocations and GET /pins with bodies[path] (204 No Content for "",
// as the cluster answers an empty pinset), and 404 with the cluster's
// error object otherwise. It returns the HOST:PORT, and closes it when the
// test ends.
func Serve(t testing.TB, bodies map[string]string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := bodies[r.URL.Path]
		if !ok || r.Method != http.MethodGet {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code":404,"message":"not found"}` + "\n"))
			return
		}
		if r.URL.Path == "/allocations" && r.URL.Query().Get("filter") != "pin" {
			t.Errorf("clustertest: GET /allocations with filter %q, want pin", r.URL.Query().Get("filter"))
		}
		if body == "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Trailer", "X-Stream-Error")
		w.WriteHeader(http.StatusOK)
		for _, line := range strings.SplitAfter(body, "\n") {
			_, _ = w.Write([]byte(line))
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Stream-Error", "")
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// ServeRecorded is Serve with the recorded answers, RecordedCID replaced
// by root (when not "").
func ServeRecorded(t testing.TB, root string) string {
	t.Helper()
	return Serve(t, map[string]string{"/allocations": Recorded(t, "/allocations", root), "/pins": Recorded(t, "/pins", root)})
}
