package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/shoalnet/shoal/node"
)

// startLoopbackNode starts an in-memory *node.Node on loopback.
func startLoopbackNode(t *testing.T) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig("")
	cfg.Network.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Network.MDNS = false
	cfg.Store.Sync = false
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		n.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("closing node: %v", err)
		}
	})
	return n
}

// TestRealNodeFetchAndGateway: a file shared on one node is fetched
// through another node's API (transfer reported, then done), and read in
// whole and in ranges through the gateway of a third that holds nothing.
func TestRealNodeFetchAndGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seed, leech, empty := startLoopbackNode(t), startLoopbackNode(t), startLoopbackNode(t)
	for _, n := range []*node.Node{leech, empty} {
		if err := n.Connect(ctx, seed.Info().Addresses[0]); err != nil {
			t.Fatal(err)
		}
	}
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
