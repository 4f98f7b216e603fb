package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/blockstore"
	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/node"
)

// startLoopbackNode starts an in-memory *node.Node on loopback.
func startLoopbackNode(t *testing.T, opts ...func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig("")
	cfg.Network.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Network.MDNS = false
	cfg.Store.Sync = false
	for _, o := range opts {
		o(&cfg)
	}
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

// fullStore is a real in-memory store whose "disk" is full after room
// blocks: later Puts fail as the disk store's write does on a full file
// system.
type fullStore struct {
	blockstore.Store
	room atomic.Int64
}

func (s *fullStore) full(c cid.Cid) error {
	if s.room.Add(-1) >= 0 {
		return nil
	}
	return fmt.Errorf("blockstore: put %s: %w", c, &os.PathError{Op: "write", Path: "/home/blocks/.tmp-1", Err: syscall.ENOSPC})
}

func (s *fullStore) Put(ctx context.Context, c cid.Cid, data []byte) error {
	if err := s.full(c); err != nil {
		return err
	}
	return s.Store.Put(ctx, c, data)
}

func (s *fullStore) PutVerified(ctx context.Context, c cid.Cid, data []byte) error {
	if err := s.full(c); err != nil {
		return err
	}
	return s.Store.PutVerified(ctx, c, data)
}

// TestRealNodeFetchOntoFullDisk: POST /api/v1/fetch?wait=true onto a
// node whose disk fills up answers 507 with the disk's error, and the
// transfer is listed as failed with it.
func TestRealNodeFetchOntoFullDisk(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seed := startLoopbackNode(t)
	bcfg := blockstore.DefaultConfig("")
	bcfg.Links = content.Links
	store := &fullStore{Store: blockstore.NewMemory(bcfg)}
	store.room.Store(2)
	cfg := node.DefaultConfig("")
	cfg.Network.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Network.MDNS = false
	leech, err := node.NewWithParts(cfg, node.Parts{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = leech.Close() })
	if err := leech.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := leech.Connect(ctx, seed.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
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
		t.Errorf("transfers = %s, want one failed with the disk's error", body)
	}
}
