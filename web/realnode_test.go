package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/blockstore"
	"github.com/shoalnet/shoal/internal/storetest"
	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/sim"
)

// startLoopbackNode starts one real node on loopback TCP with an
// in-memory store; opts edit its config. It is closed when the test ends.
// Tests of several nodes use sim.NewCluster.
func startLoopbackNode(t *testing.T, opts ...func(*node.Config)) *node.Node {
	t.Helper()
	return startNodeWithParts(t, node.Parts{}, opts...)
}

// startNodeWithParts is startLoopbackNode with parts of the test's own
// (a store it can take blocks from).
func startNodeWithParts(t *testing.T, parts node.Parts, opts ...func(*node.Config)) *node.Node {
	t.Helper()
	return sim.LoopbackNode(t, parts, opts...)
}

// TestRealNodeFetchAndGateway: a file shared on one node is fetched
// through another node's API (transfer reported, then done), and read in
// whole and in ranges through the gateway of a third that holds nothing.
func TestRealNodeFetchAndGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := sim.NewCluster(t, 3, sim.ClusterOptions{}) // 1 and 2 start connected to 0
	seed, leech, empty := c.Node(0), c.Node(1), c.Node(2)
	data := randomBytes(4<<20+4321, 7)
	seedAPI := newTestAPI(t, seed, nil)
	res := addFile(t, seedAPI.URL, data)

	// Through the leech's API: 202 with a transfer, which finishes.
	leechAPI := newTestAPI(t, leech, nil)
	status, _, body := call(t, "POST", leechAPI.URL+"/api/v1/fetch?cid="+res.CID, nil, nil)
	var tr node.TransferInfo
	if status != http.StatusAccepted || json.Unmarshal(body, &tr) != nil || tr.ID == "" || tr.CID != res.CID {
		t.Fatalf("fetch: %d %s", status, body)
	}
	for {
		status, _, body = call(t, "GET", leechAPI.URL+"/api/v1/transfers/"+tr.ID, nil, nil)
		if status != 200 || json.Unmarshal(body, &tr) != nil {
			t.Fatalf("transfer: %d %s", status, body)
		}
		if tr.State != node.TransferRunning {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("transfer still running: %s", body)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if tr.State != node.TransferDone || tr.BytesReceived < uint64(len(data)) || len(tr.Peers) == 0 || tr.Peers[0].Peer != seed.Info().ID {
		t.Fatalf("finished transfer = %s", body)
	}
	status, _, body = call(t, "POST", leechAPI.URL+"/api/v1/fetch?cid="+res.CID+"&wait=true", nil, nil)
	if status != 200 || json.Unmarshal(body, &tr) != nil || tr.State != node.TransferDone {
		t.Fatalf("fetch wait=true: %d %s", status, body)
	}
	if status, _, got := call(t, "GET", leechAPI.URL+"/api/v1/cat/"+res.CID, nil, nil); status != 200 || !bytes.Equal(got, data) {
		t.Fatalf("cat after fetch: %d, equal=%v", status, bytes.Equal(got, data))
	}

	// Through the gateway of a node that holds nothing: a range first
	// (only its blocks), then the whole file.
	gw := newTestGateway(t, empty, 0)
	url := gw.URL + "/ipfs/" + res.CID
	status, hdr, got := call(t, "GET", url, nil, map[string]string{"Range": "bytes=3000000-3100000"})
	if status != 206 || !bytes.Equal(got, data[3000000:3100001]) || hdr.Get("Content-Range") != "bytes 3000000-3100000/"+itoa(len(data)) {
		t.Fatalf("gateway range: %d %q equal=%v", status, hdr.Get("Content-Range"), bytes.Equal(got, data[3000000:3100001]))
	}
	status, _, got = call(t, "GET", url, nil, nil)
	if status != 200 || !bytes.Equal(got, data) {
		t.Fatalf("gateway whole file: %d, equal=%v", status, bytes.Equal(got, data))
	}
}

// TestRealNodeFetchOntoFullDisk: POST /api/v1/fetch?wait=true onto a
// node whose disk fills up answers 507 with the disk's error, and the
// transfer is listed as failed with it.
func TestRealNodeFetchOntoFullDisk(t *testing.T) {
	c := sim.NewCluster(t, 2, sim.ClusterOptions{Store: func(i int, mem blockstore.Store) blockstore.Store {
		if i == 1 {
			return storetest.NewFull(mem, "", 2) // the leech
		}
		return mem
	}})
	seed, leech := c.Node(0), c.Node(1)
	res := addFile(t, newTestAPI(t, seed, nil).URL, randomBytes(5<<20, 8))
	api := newTestAPI(t, leech, nil)
	status, _, body := call(t, "POST", api.URL+"/api/v1/fetch?wait=true&cid="+res.CID, nil, nil)
	var e apiv1.ErrorBody
	if status != http.StatusInsufficientStorage || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, "no space left on device") {
		t.Fatalf("fetch onto a full disk: %d %s, want 507 with the disk's error", status, body)
	}
	_, _, body = call(t, "GET", api.URL+"/api/v1/transfers", nil, nil)
	var trs []node.TransferInfo
	if json.Unmarshal(body, &trs) != nil || len(trs) != 1 || trs[0].State != node.TransferFailed || !strings.Contains(trs[0].Error, "no space left on device") {
		t.Fatalf("transfers = %s, want one failed with the disk's error", body)
	}

	// A read that belongs to the failed transfer (the CLI streaming its
	// own fetch) is refused with its error and fetches nothing again.
	for _, route := range []string{"cat", "get"} {
		status, _, body = call(t, "GET", api.URL+"/api/v1/"+route+"/"+res.CID+"?transfer="+trs[0].ID, nil, nil)
		if status != http.StatusInsufficientStorage || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, "no space left on device") || !strings.Contains(e.Error, trs[0].ID) {
			t.Errorf("%s ?transfer=%s after it failed: %d %s, want 507 naming the transfer and the disk's error", route, trs[0].ID, status, body)
		}
	}
	status, _, body = call(t, "GET", api.URL+"/api/v1/cat/"+res.CID+"?transfer=t999", nil, nil)
	if status != http.StatusNotFound {
		t.Errorf("cat ?transfer=t999 (unknown): %d %s, want 404", status, body)
	}
	_, _, body = call(t, "GET", api.URL+"/api/v1/transfers", nil, nil)
	if json.Unmarshal(body, &trs) != nil || len(trs) != 1 {
		t.Errorf("transfers after the reads = %s, want still the one", body)
	}
}
