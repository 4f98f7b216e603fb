package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/shoalnet/shoal/node"
)

// Verify makes memNode a Node: it rehashes its blocks and drops the
// corrupt ones, as the real node's store does.
func (m *memNode) Verify(ctx context.Context) (node.VerifyReport, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rep := node.VerifyReport{Corrupt: []string{}, Vanished: []string{}, RefsGone: []string{}, Incomplete: []node.IncompletePin{}, Relisted: []string{}}
	for c, b := range m.blocks {
		rep.Checked++
		rep.Bytes += int64(len(b))
		if got, err := c.Prefix().Sum(b); err != nil || !got.Equals(c) {
			rep.Corrupt = append(rep.Corrupt, c.String())
			delete(m.blocks, c)
		}
	}
	for _, r := range m.roots {
		if r.pinned {
			rep.Pins++
		}
	}
	return rep, nil
}

// TestAPIRepoVerify: POST /api/v1/repo/verify reports checked and corrupt
// blocks and removes the corrupt one; GET is refused.
func TestAPIRepoVerify(t *testing.T) {
	n := newMemNode()
	srv := newTestAPI(t, n, nil)
	status, _, body := call(t, http.MethodPost, srv.URL+"/api/v1/add", strings.NewReader(strings.Repeat("shoal ", 100000)), nil)
	if status != http.StatusOK {
		t.Fatalf("add: %d %s", status, body)
	}
	n.mu.Lock()
	total := len(n.blocks)
	for c, b := range n.blocks {
		if len(b) > 100 {
			n.blocks[c] = append([]byte("x"), b[1:]...)
			break
		}
	}
	n.mu.Unlock()

	status, _, body = call(t, http.MethodPost, srv.URL+"/api/v1/repo/verify", nil, nil)
	if status != http.StatusOK {
		t.Fatalf("verify: %d %s", status, body)
	}
	var rep node.VerifyReport
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Checked != total || len(rep.Corrupt) != 1 || rep.Pins != 1 {
		t.Fatalf("report = %+v, want %d checked, 1 corrupt, 1 pin", rep, total)
	}
	if len(n.blocks) != total-1 {
		t.Fatalf("%d blocks left, want the corrupt one removed (%d)", len(n.blocks), total-1)
	}
	if status, _, _ := call(t, http.MethodGet, srv.URL+"/api/v1/repo/verify", nil, nil); status != http.StatusMethodNotAllowed {
		t.Fatalf("GET repo/verify = %d, want 405", status)
	}
}
