package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/node"
)

// TestAPIFetchParams: POST /api/v1/fetch against a real node: a bad
// timeout or pin is a 400 naming it; a fetch nobody can serve, waited for,
// ends at its timeout as a 504 whose message names the CID once; a
// started transfer can be cancelled, and an unknown one is a 404.
func TestAPIFetchParams(t *testing.T) {
	srv := newTestAPI(t, startLoopbackNode(t), nil)
	h, _ := mh.Sum([]byte("api fetch params: nobody has this"), mh.SHA2_256, -1)
	c := cid.NewCidV1(cid.Raw, h).String()
	for _, q := range []string{"timeout=soon", "timeout=-5s", "pin=maybe"} {
		status, _, body := call(t, http.MethodPost, srv.URL+"/api/v1/fetch?cid="+c+"&"+q, nil, nil)
		param, _, _ := strings.Cut(q, "=")
		if status != http.StatusBadRequest || !strings.Contains(string(body), param) {
			t.Errorf("fetch with %s: %d %s, want 400 naming %s", q, status, body, param)
		}
	}

	status, _, body := call(t, http.MethodPost, srv.URL+"/api/v1/fetch?wait=true&timeout=1s&cid="+c, nil, nil)
	var e apiv1.ErrorBody
	_ = json.Unmarshal(body, &e)
	if status != http.StatusGatewayTimeout || strings.Count(e.Error, c) != 1 || !strings.Contains(e.Error, "no provider of") {
		t.Errorf("waited fetch of a CID nobody has: %d %q, want 504 naming the CID once", status, e.Error)
	}

	status, _, body = call(t, http.MethodPost, srv.URL+"/api/v1/fetch?timeout=0&pin=true&cid=/ipfs/"+c, nil, nil)
	var info node.TransferInfo
	if err := json.Unmarshal(body, &info); status != http.StatusAccepted || err != nil || info.Phase != node.PhaseSearching || !info.Pinned {
		t.Fatalf("fetch with timeout=0: %d %s, want 202, searching, to be pinned", status, body)
	}
	status, _, body = call(t, http.MethodPost, srv.URL+"/api/v1/transfers/"+info.ID+"/cancel", nil, nil)
	if err := json.Unmarshal(body, &info); status != http.StatusOK || err != nil || info.State != node.TransferFailed || !strings.Contains(info.Error, "cancelled") {
		t.Errorf("cancel: %d %s, want 200 and the transfer failed as cancelled", status, body)
	}
	if status, _, body = call(t, http.MethodPost, srv.URL+"/api/v1/transfers/t999/cancel", nil, nil); status != http.StatusNotFound {
		t.Errorf("cancel of an unknown transfer: %d %s, want 404", status, body)
	}
}
