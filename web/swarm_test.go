package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/internal/clustertest"
	"github.com/shoalnet/shoal/node"
)

// getSwarm reads GET /api/v1/swarm, which must answer 200 with JSON.
func getSwarm(t *testing.T, base string) apiv1.Swarm {
	t.Helper()
	status, hdr, body := call(t, "GET", base+"/api/v1/swarm", nil, nil)
	var sw apiv1.Swarm
	if status != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") || json.Unmarshal(body, &sw) != nil {
		t.Fatalf("GET /api/v1/swarm: %d %s %s", status, hdr.Get("Content-Type"), body)
	}
	return sw
}

func swarmRoot(sw apiv1.Swarm, c string) *apiv1.SwarmRoot {
	for i := range sw.Roots {
		if sw.Roots[i].CID == c {
			return &sw.Roots[i]
		}
	}
	return nil
}

func swarmPeer(sw apiv1.Swarm, p string) *apiv1.SwarmPeer {
	for i := range sw.Peers {
		if sw.Peers[i].Peer == p {
			return &sw.Peers[i]
		}
	}
	return nil
}

// waitSwarm polls a node's GET /api/v1/swarm until ok holds, failing with
// the last answer when ctx ends first.
func waitSwarm(t *testing.T, ctx context.Context, base, what string, ok func(apiv1.Swarm) bool) apiv1.Swarm {
	t.Helper()
	for {
		sw := getSwarm(t, base)
		if ok(sw) {
			return sw
		}
		select {
		case <-ctx.Done():
			j, _ := json.MarshalIndent(sw, "", " ")
			t.Fatalf("waiting for %s: %v; last answer:\n%s", what, ctx.Err(), j)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func withExtension(c *node.Config) { c.Network.SwarmExtension = true }

// withoutExtension turns the swarm extension off (it is on by default):
// the node speaks plain Bitswap only.
func withoutExtension(c *node.Config) { c.Network.SwarmExtension = false }

// TestSwarmAPIRealNodes: with the swarm extension on, a leecher fetching
// from a throttled seeder sees the seeder's complete map over the DAG's
// blocks in walk order (8 leaves + the root = 9), the seeder unchoking
// it; the seeder sees the leecher interested and unchoked in one of its
// upload slots. After the fetch, the leecher shares the root with every
// block held.
func TestSwarmAPIRealNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := randomBytes(8<<20, 41)
	seed := startLoopbackNode(t, withExtension, func(c *node.Config) { c.Transfer.UploadLimit = 1 << 20 })
	leech := startLoopbackNode(t, withExtension)
	res, err := seed.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	root := res.CID.String()
	seedAPI, leechAPI := newTestAPI(t, seed, nil), newTestAPI(t, leech, nil)
	seedID, leechID := seed.Info().ID, leech.Info().ID

	// Before any peer: the seeder's own bar, every block held here.
	sw := getSwarm(t, seedAPI.URL)
	r := swarmRoot(sw, root)
	if !sw.Extension || r == nil || r.Role != apiv1.RoleSharing || r.Blocks != 9 || r.Held != 9 || r.Partial ||
		r.BlocksPerCell != 1 || len(r.Avail) != 9 || len(r.Local) != 9 || len(r.Peers) != 0 || sw.Slots.Total < 2 {
		t.Fatalf("seeder alone: %+v, root %+v", sw, r)
	}
	for i := range r.Avail {
		if r.Avail[i] != 0 || r.Local[i] != 1 {
			t.Fatalf("seeder alone, cell %d: avail %d local %d", i, r.Avail[i], r.Local[i])
		}
	}

	if err := leech.Connect(ctx, seed.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	tr, err := leech.Fetch(ctx, res.CID, "test")
	if err != nil {
		t.Fatal(err)
	}
	sw = waitSwarm(t, ctx, leechAPI.URL, "the leecher to see the seeder's map", func(sw apiv1.Swarm) bool {
		r := swarmRoot(sw, root)
		p := swarmPeer(sw, seedID)
		return r != nil && r.Role == apiv1.RoleFetching && !r.Partial && len(r.Peers) == 1 && r.Peers[0].Complete &&
			p != nil && p.Extension && p.AmInterested && !p.PeerChoking
	})
	r = swarmRoot(sw, root)
	if r.Blocks != 9 || r.Peers[0].Peer != seedID || r.Peers[0].Blocks != 9 || r.TransferID != tr.Info().ID {
		t.Fatalf("leecher's root while fetching: %+v (transfer %s)", r, tr.Info().ID)
	}
	for i, a := range r.Avail {
		if a != 1 {
			t.Fatalf("leecher's bar: cell %d held by %d peers, want 1 (the seeder): %v", i, a, r.Avail)
		}
	}
	if r.Held == 9 {
		t.Fatalf("leecher held everything before its fetch was seen running: %+v", r)
	}
	sw = waitSwarm(t, ctx, seedAPI.URL, "the seeder to unchoke the interested leecher", func(sw apiv1.Swarm) bool {
		p := swarmPeer(sw, leechID)
		return p != nil && p.Extension && p.PeerInterested && !p.AmChoking && sw.Slots.Used >= 1
	})
	if r := swarmRoot(sw, root); r == nil || len(r.Peers) != 1 || r.Peers[0].Peer != leechID || !r.Peers[0].Interested {
		t.Fatalf("seeder's root while the leecher fetches: %+v", r)
	}

	waitTransfer(t, ctx, tr)
	sw = waitSwarm(t, ctx, leechAPI.URL, "the leecher to share the root", func(sw apiv1.Swarm) bool {
		r := swarmRoot(sw, root)
		return r != nil && r.Role == apiv1.RoleSharing
	})
	if r := swarmRoot(sw, root); r.Held != 9 || r.Blocks != 9 {
		t.Fatalf("leecher after the fetch: %+v", r)
	}
	p := swarmPeer(sw, seedID)
	if p == nil || p.BytesIn < uint64(len(data)) {
		t.Fatalf("leecher's peer row for the seeder: %+v, want at least %d bytes in", p, len(data))
	}
}

// TestSwarmAPIExtensionOff: without the extension the view says so and
// shows what Bitswap knows: the peer and its bytes, never choked.
func TestSwarmAPIExtensionOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	seed, leech := startLoopbackNode(t, withoutExtension), startLoopbackNode(t, withoutExtension)
	data := randomBytes(2<<20+5, 42)
	res, err := seed.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := leech.Connect(ctx, seed.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	tr, err := leech.Fetch(ctx, res.CID, "test")
	if err != nil {
		t.Fatal(err)
	}
	waitTransfer(t, ctx, tr)
	sw := getSwarm(t, newTestAPI(t, leech, nil).URL)
	p := swarmPeer(sw, seed.Info().ID)
	r := swarmRoot(sw, res.CID.String())
	if sw.Extension || p == nil || p.Extension || p.AmChoking || p.PeerChoking || p.BytesIn < uint64(len(data)) ||
		r == nil || r.Blocks != 4 || r.Held != 4 || len(r.Peers) != 0 {
		t.Fatalf("swarm view without the extension: %+v", sw)
	}
}

// waitTransfer waits for tr to end, failing the test unless it succeeded.
func waitTransfer(t *testing.T, ctx context.Context, tr *node.Transfer) {
	t.Helper()
	select {
	case <-tr.Done():
	case <-ctx.Done():
		t.Fatalf("transfer %s: %v", tr.Info().ID, ctx.Err())
	}
	if err := tr.Err(); err != nil {
		t.Fatal(err)
	}
}

// deadAddr is a loopback HOST:PORT nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// TestClusterAPI: GET /api/v1/cluster is 404 without cluster.rest_addr,
// 502 naming the address when the cluster does not answer, and the
// cluster's pins otherwise; the dashboard's snapshot carries the
// cluster's view of the local roots, or the error as a note beside
// the content table that still lists the roots.
func TestClusterAPI(t *testing.T) {
	ctx := context.Background()
	data := randomBytes(3<<20+17, 43)

	none := startLoopbackNode(t)
	status, _, body := call(t, "GET", newTestAPI(t, none, nil).URL+"/api/v1/cluster", nil, nil)
	if status != http.StatusNotFound || !strings.Contains(string(body), "cluster.rest_addr") {
		t.Fatalf("no cluster: %d %s", status, body)
	}
	s := &site{cfg: DefaultAPIConfig("127.0.0.1:5001"), n: none}
	if d := s.snapshot(ctx, time.Now()); d.Cluster != nil {
		t.Fatalf("snapshot without a cluster: %+v", d.Cluster)
	}

	dead := deadAddr(t)
	down := startLoopbackNode(t, func(c *node.Config) { c.Cluster.RESTAddr = dead })
	if _, err := down.AddFile(ctx, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	status, _, body = call(t, "GET", newTestAPI(t, down, nil).URL+"/api/v1/cluster", nil, nil)
	if status != http.StatusBadGateway || !strings.Contains(string(body), dead) || !strings.Contains(string(body), "ipfs-cluster-service") {
		t.Fatalf("cluster down: %d %s", status, body)
	}
	s = &site{cfg: DefaultAPIConfig("127.0.0.1:5001"), n: down}
	d := s.snapshot(ctx, time.Now())
	if d.Cluster == nil || !strings.Contains(d.Cluster.Error, dead) || d.Cluster.RESTAddr != dead || len(d.Roots) != 1 || d.RootsError != "" {
		t.Fatalf("snapshot with the cluster down: cluster %+v, roots %+v %q", d.Cluster, d.Roots, d.RootsError)
	}

	local := expectedCID(t, data)
	n := startLoopbackNode(t, func(c *node.Config) { c.Cluster.RESTAddr = clustertest.ServeRecorded(t, local) })
	if _, err := n.AddFile(ctx, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	status, _, body = call(t, "GET", newTestAPI(t, n, nil).URL+"/api/v1/cluster", nil, nil)
	var c apiv1.Cluster
	if status != http.StatusOK || json.Unmarshal(body, &c) != nil || len(c.Pins) != 2 || c.Error != "" {
		t.Fatalf("cluster: %d %s", status, body)
	}
	s = &site{cfg: DefaultAPIConfig("127.0.0.1:5001"), n: n}
	d = s.snapshot(ctx, time.Now())
	if d.Cluster == nil || len(d.Cluster.Pins) != 1 {
		t.Fatalf("snapshot's cluster view: %+v", d.Cluster)
	}
	p := d.Cluster.Pins[0]
	if p.CID != local || p.ReplicationMin != 2 || p.ReplicationMax != 3 || p.Pinned != 1 || p.Allocations != 2 || len(p.Peers) != 3 {
		t.Fatalf("the local root's cluster pin: %+v", p)
	}
}
