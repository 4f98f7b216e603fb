package node

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/shoalnet/shoal/content"
)

func swarmConfig(ext bool, bootstrap ...string) Config {
	cfg := testConfig(bootstrap...)
	cfg.Network.SwarmExtension = ext
	return cfg
}

// readSwarmFile reads the file under root from n and fails unless it is want.
func readSwarmFile(t *testing.T, ctx context.Context, n *Node, root cid.Cid, want []byte) {
	t.Helper()
	f, err := n.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("node read %d bytes (err %v), want the %d shared", len(got), err, len(want))
	}
}

func rootLinks(t *testing.T, ctx context.Context, n *Node, root cid.Cid) []cid.Cid {
	t.Helper()
	data, err := n.store.Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	links, err := content.Links(root, data)
	if err != nil || len(links) < 4 {
		t.Fatalf("root has %d links (err %v), want a multi-leaf file", len(links), err)
	}
	return links
}

// crowd: a seeder and three leechers, all connected, fetch one 8 MiB
// file at once; it returns the leechers and their want-have count.
func crowd(t *testing.T, ext bool) ([]*Node, uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seeder, ls, res, data := seedCrowd(t, ctx, swarmConfig(ext), ext, 3, 21)
	for i, a := range ls {
		for _, b := range ls[i+1:] {
			if err := a.Connect(ctx, b.Info().Addresses[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ext {
		waitSwarm(t, ctx, ls, seeder)
	}
	trs := fetchAll(t, ctx, ls, res.CID)
	var wantHaves uint64
	for i, tr := range trs {
		<-tr.Done()
		if err := tr.Err(); err != nil {
			t.Fatalf("leecher %d: %v", i, err)
		}
		readSwarmFile(t, ctx, ls[i], res.CID, data)
		wantHaves += ls[i].client.WantCounts().WantHaves
		tr := ls[i].net.Traffic()
		t.Logf("ext=%v leecher %d: %d block bytes in %d blocks on the wire for %d bytes; wants %+v", ext, i, tr.BlockBytesReceived, tr.BlocksReceived, len(data), ls[i].client.WantCounts())
	}
	return ls, wantHaves
}

// seedCrowd starts a seeder (scfg) sharing 8 MiB of random bytes from
// seed and n leechers that bootstrap from it, with the extension on or off.
func seedCrowd(t *testing.T, ctx context.Context, scfg Config, ext bool, n int, seed uint64) (*Node, []*Node, AddResult, []byte) {
	t.Helper()
	seeder := startNode(t, scfg)
	data := randomBytes(8<<20+1000, seed)
	res, err := seeder.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	boot := seeder.Info().Addresses[0]
	var ls []*Node
	for range n {
		ls = append(ls, startNode(t, swarmConfig(ext, boot)))
	}
	return seeder, ls, res, data
}

// fetchAll starts a fetch of root on every node of ls.
func fetchAll(t *testing.T, ctx context.Context, ls []*Node, root cid.Cid) []*Transfer {
	t.Helper()
	var trs []*Transfer
	for _, l := range ls {
		tr, err := l.Fetch(ctx, root, "test")
		if err != nil {
			t.Fatal(err)
		}
		trs = append(trs, tr)
	}
	return trs
}

// waitSwarm waits until every leecher runs the extension with every
// other node.
func waitSwarm(t *testing.T, ctx context.Context, ls []*Node, seeder *Node) {
	t.Helper()
	all := append([]*Node{seeder}, ls...)
	for _, a := range ls {
		for _, b := range all {
			for a != b && !a.swarm.IsSwarmPeer(b.host.ID()) {
				select {
				case <-ctx.Done():
					t.Fatalf("the extension never started between %s and %s", a.host.ID(), b.host.ID())
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
	}
}

// TestSwarmCrowdMapsAndHaves: with the extension, leechers get the
// seeder's map and each other's HAVE deltas, complete with the right
// bytes, and send fewer want-haves than the same crowd over plain
// Bitswap.
func TestSwarmCrowdMapsAndHaves(t *testing.T) {
	ls, withExt := crowd(t, true)
	var maps, haves, haveMsgs uint64
	for _, l := range ls {
		st := l.swarm.Stats()
		maps += st.MapsReceived
		haves += st.HavesReceived
		haveMsgs += st.HaveMessagesSent
	}
	if maps < uint64(len(ls)) {
		t.Fatalf("leechers received %d maps, want at least one each", maps)
	}
	if haves == 0 || haveMsgs == 0 {
		t.Fatalf("leechers received %d HAVEs in %d messages, want pushed deltas", haves, haveMsgs)
	}
	if haveMsgs >= haves {
		t.Logf("HAVE batching: %d CIDs in %d messages", haves, haveMsgs)
	}
	_, without := crowd(t, false)
	t.Logf("want-haves sent by the leechers: %d with the extension, %d without; %d HAVEs pushed in %d messages", withExt, without, haves, haveMsgs)
	if withExt >= without {
		t.Fatalf("want-haves with the extension = %d, without = %d: want fewer", withExt, without)
	}
}

// TestSwarmPeerExchange: two leechers fetch a file whose seeder lacks one
// leaf that only they hold; they are DHT clients that announce nothing.
// A late leecher that knows only the seeder is told of both by the
// seeder's peer exchange (counted: with the exchange switched off the
// count is 0 and the test fails) and gets the leaf from them.
func TestSwarmPeerExchange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seeder := startNode(t, swarmConfig(true))
	data := randomBytes(6<<20+77, 22)
	res, err := seeder.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	links := rootLinks(t, ctx, seeder, res.CID)
	only, nobody := links[1], links[3] // held by the early leechers only; by nobody
	onlyData, err := seeder.store.Get(ctx, only)
	if err != nil {
		t.Fatal(err)
	}
	if err := seeder.store.Unpin(ctx, res.CID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []cid.Cid{only, nobody} {
		if err := seeder.store.Delete(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	boot := seeder.Info().Addresses[0]
	var early []*Node
	for range 2 {
		cfg := swarmConfig(true, boot)
		cfg.Network.DHTMode = "client"
		cfg.Transfer.AnnounceWhileFetching = false
		n := startNode(t, cfg)
		if err := n.store.Put(ctx, only, onlyData); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Fetch(ctx, res.CID, "test"); err != nil {
			t.Fatal(err)
		}
		early = append(early, n)
	}
	// The early leechers hold all the seeder has; they stall on the leaf
	// nobody has, interested in the root.
	for _, n := range early {
		waitHas(t, ctx, n, links[0])
	}
	late := startNode(t, swarmConfig(true, boot))
	tr, err := late.Fetch(ctx, res.CID, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Cancel()
	waitHas(t, ctx, late, only)
	for _, n := range early {
		if late.host.Network().Connectedness(n.host.ID()) != network.Connected {
			t.Fatalf("late leecher is not connected to early leecher %s", n.host.ID())
		}
	}
	if got := late.swarm.Stats().PeersLearned; got < 2 {
		t.Fatalf("late leecher learned %d peers by exchange, want the 2 early leechers", got)
	}
	// The transfer's per-peer accounting is a snapshot published every
	// progress interval.
	for {
		var fromEarly uint64
		for _, p := range tr.Info().Peers {
			for _, n := range early {
				if p.Peer == n.host.ID().String() {
					fromEarly += p.Bytes
				}
			}
		}
		if fromEarly >= uint64(len(onlyData)) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("late leecher got %d bytes from the early leechers, want at least the %d-byte leaf only they hold", fromEarly, len(onlyData))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func waitHas(t *testing.T, ctx context.Context, n *Node, c cid.Cid) {
	t.Helper()
	for {
		if ok, _ := n.store.Has(ctx, c); ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node %s never got block %s", n.host.ID(), c)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestSwarmLeecherWithStaleChokeIsServed: a leecher fetches from a seeder
// that has unchoked it; then the leecher comes to believe the seeder
// chokes it (a choke message that overtook the unchoke, as the session
// start could send them: issue #12's docker hang). It asks the seeder for
// nothing, and the seeder, which keeps it unchoked, has no reason to send
// another choke message: before the fix the fetch never completed. The
// seeder now says every peer's state again at each choke round, and the
// fetch completes with the right bytes.
func TestSwarmLeecherWithStaleChokeIsServed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	scfg := swarmConfig(true)
	scfg.Transfer.UploadLimit = 512 << 10 // 4 MiB in 8 s: still under way when the leecher is misled
	seeder := startNode(t, scfg)
	data := randomBytes(4<<20+3, 24)
	res, err := seeder.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	leecher := startNode(t, swarmConfig(true, seeder.Info().Addresses[0]))
	waitSwarm(t, ctx, []*Node{leecher}, seeder)
	tr, err := leecher.Fetch(ctx, res.CID, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Cancel()
	// Once a first leaf is in, the seeder's unchoke (sent before the
	// blocks it let go) is in too.
	waitAnyLeaf(t, ctx, leecher, rootLinks(t, ctx, seeder, res.CID))
	time.Sleep(200 * time.Millisecond)
	if seeder.server.Choking(leecher.host.ID()) {
		t.Fatal("the seeder chokes its only leecher")
	}
	leecher.client.PeerChoked(seeder.host.ID(), true)
	select {
	case <-tr.Done():
	case <-ctx.Done():
		t.Fatal("the leecher, believing itself choked by a seeder that unchoked it, never completed")
	}
	if err := tr.Err(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	readSwarmFile(t, ctx, leecher, res.CID, data)
}

func waitAnyLeaf(t *testing.T, ctx context.Context, n *Node, leaves []cid.Cid) {
	t.Helper()
	for {
		for _, c := range leaves {
			if ok, _ := n.store.Has(ctx, c); ok {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node %s got none of %d leaves", n.host.ID(), len(leaves))
		case <-time.After(10 * time.Millisecond):
		}
	}
}
