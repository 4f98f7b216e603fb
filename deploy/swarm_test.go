package deploy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fetchAll fetches cid on every node at once and checks the bytes.
func fetchAll(t *testing.T, nodes []*dnode, cid, want string) []fetchResult {
	t.Helper()
	ctx := nodes[0].c.ctx
	res := make([]fetchResult, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, d := range nodes {
		wg.Go(func() {
			r, sum, err := d.fetch(ctx, cid)
			if err == nil && sum != want {
				err = fmt.Errorf("fetched sha256 %s, want %s", sum, want)
			}
			res[i], errs[i] = r, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("fetch %s on %s: %v", cid, nodes[i].name, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return res
}

// fetchEventually retries a fetch until it succeeds or the test runs out
// of time: after a partition or a restart the swarm needs a moment to
// notice dead connections and re-announce, and a fetch that finds no
// provider fails fast rather than waiting.
func fetchEventually(t *testing.T, d *dnode, cid, want string) fetchResult {
	t.Helper()
	start := time.Now()
	for attempt := 1; ; attempt++ {
		// Each attempt gets at most 20 s: a fetch started while dead
		// connections linger can hang on them rather than fail.
		ctx, cancel := context.WithTimeout(d.c.ctx, 20*time.Second)
		r, sum, err := d.fetch(ctx, cid)
		cancel()
		if err == nil && sum != want {
			t.Fatalf("%s fetched sha256 %s for %s, want %s", d.name, sum, cid, want)
		}
		if err == nil {
			t.Logf("%s fetched %s on attempt %d", d.name, cid, attempt)
			return r
		}
		if d.c.ctx.Err() != nil {
			t.Fatalf("fetch %s on %s: %d attempts in %v, when the test ran out of time; last: %v", cid, d.name, attempt, time.Since(start).Round(time.Second), err)
		}
		sleep(d.c.ctx, 2*time.Second)
	}
}

// TestShareFetchSix shares a file on one node and fetches it on six others
// at once; they find providers through the DHT (mDNS is off and they know
// only the two bootstrap nodes). The seeder's upload is limited, so the
// leechers serve each other.
func TestShareFetchSix(t *testing.T) {
	t.Parallel() // the seeder's upload limit, not the host, sets the pace
	const size = 16 << 20
	c := newCluster(t, 7, clusterOptions{uploadLimit: 8 << 20})
	data, want := randomBytes(t, size)
	seeder := c.nodes[6]
	cid := seeder.share("file", data)
	t.Logf("shared %s (%d MiB) on %s", cid, size>>20, seeder.name)

	start := time.Now()
	res := fetchAll(t, c.nodes[:6], cid, want)
	t.Logf("6 fetches done in %v", time.Since(start).Round(time.Millisecond))

	var fromSeeder, fromLeechers uint64
	for i, r := range res {
		if r.Size != size {
			t.Errorf("%s fetched %d bytes, want %d", c.nodes[i].name, r.Size, size)
		}
		for _, p := range r.Peers {
			if p.Peer == seeder.id {
				fromSeeder += p.Bytes
			} else {
				fromLeechers += p.Bytes
			}
		}
		t.Logf("%s: %d ms, peers %+v", c.nodes[i].name, r.DurationMS, r.Peers)
	}
	t.Logf("bytes served: seeder %d MiB, leechers %d MiB", fromSeeder>>20, fromLeechers>>20)
	if fromLeechers == 0 {
		t.Errorf("leechers served nothing to each other: the seeder's upload was not shared")
	}
}

// TestSeederKilledAndPaused starts two fetches from three seeders, then
// kills one seeder (docker kill) and freezes another (docker pause) while
// the bytes flow: both fetches complete from the rest.
func TestSeederKilledAndPaused(t *testing.T) {
	t.Parallel() // load from the others only slows the fetches: still mid-transfer at the kill
	const size = 32 << 20
	c := newCluster(t, 6, clusterOptions{uploadLimit: 4 << 20})
	data, want := randomBytes(t, size)
	origin, killed, paused := c.nodes[2], c.nodes[3], c.nodes[4]
	cid := origin.share("file", data)
	fetchAll(t, []*dnode{killed, paused}, cid, want)

	leechers := []*dnode{c.nodes[0], c.nodes[5]}
	ctx := c.ctx
	type result struct {
		r   fetchResult
		sum string
		err error
	}
	done := make([]chan result, len(leechers))
	for i, d := range leechers {
		done[i] = make(chan result, 1)
		go func() {
			r, sum, err := d.fetch(ctx, cid)
			done[i] <- result{r, sum, err}
		}()
	}
	// Two leechers want 64 MiB from seeders sending 4 MiB/s each: after a
	// second and a half the transfers are well under way, not over.
	time.Sleep(1500 * time.Millisecond)
	for i := range done {
		if len(done[i]) > 0 {
			t.Fatalf("%s finished before the failures were injected: make the file bigger", leechers[i].name)
		}
	}
	c.must(docker(ctx, "kill", killed.name))
	c.must(docker(ctx, "pause", paused.name))
	t.Logf("killed %s, paused %s mid-transfer", killed.name, paused.name)

	for i, d := range leechers {
		res := <-done[i]
		if res.err != nil {
			t.Fatalf("fetch on %s after the failures: %v", d.name, res.err)
		}
		if res.sum != want {
			t.Fatalf("%s fetched sha256 %s, want %s", d.name, res.sum, want)
		}
		t.Logf("%s: %d ms, peers %+v", d.name, res.r.DurationMS, res.r.Peers)
	}
}

// TestPartitionAndHeal splits the swarm in two (side B leaves the shared
// network and keeps only its own), checks each side serves what it has,
// then heals it and fetches across the former split: the DHT finds the
// providers announced while the sides could not see each other.
func TestPartitionAndHeal(t *testing.T) {
	t.Parallel() // small files: runs beside the other light scenario
	const size = 4 << 20
	c := newCluster(t, 6, clusterOptions{})
	sideA, sideB := c.nodes[:3], c.nodes[3:]
	bnet := c.newNetwork("side-b")
	for _, d := range sideB {
		c.must(docker(c.ctx, "network", "connect", "--ip", bnet.ip(d.i), bnet.name, d.name))
	}
	for _, d := range sideB {
		c.must(docker(c.ctx, "network", "disconnect", c.main.name, d.name))
	}
	t.Logf("partitioned: %s and %s", names(sideA), names(sideB))
	rewire(t, sideB, bnet)
	dataA, wantA := randomBytes(t, size)
	dataB, wantB := randomBytes(t, size)
	cidA := sideA[1].share("a", dataA)
	cidB := sideB[1].share("b", dataB)
	fetchEventually(t, sideA[2], cidA, wantA)
	fetchEventually(t, sideB[2], cidB, wantB)
	t.Logf("each side fetched its own content during the partition")
	// The split is real: side A cannot get side B's content.
	ctx, cancel := context.WithTimeout(c.ctx, 8*time.Second)
	if _, _, err := sideA[1].fetch(ctx, cidB); err == nil {
		t.Fatalf("%s fetched %s from the other side of the partition", sideA[1].name, cidB)
	}
	cancel()

	for _, d := range sideB {
		c.must(docker(c.ctx, "network", "connect", "--ip", c.main.ip(d.i), c.main.name, d.name))
	}
	t.Logf("healed")
	start := time.Now()
	fetchEventually(t, sideA[0], cidB, wantB)
	fetchEventually(t, sideB[0], cidA, wantA)
	t.Logf("fetched across the former split in %v", time.Since(start).Round(time.Millisecond))
}

// rewire waits until every pair of nodes is connected over network n. The
// nodes were connected over the network the partition cut; those
// connections are dead but linger until libp2p notices, and a connect
// to a peer already "connected" does nothing, so this retries until the
// new connection replaces the dead one. (It stands for the side's own
// network in the test's topology; it plays no part on side A or in the
// healing.)
func rewire(t *testing.T, nodes []*dnode, n *dnet) {
	t.Helper()
	start := time.Now()
	for {
		missing := 0
		for _, from := range nodes {
			conns, err := from.peers()
			if err != nil {
				t.Fatal(err)
			}
			for _, to := range nodes {
				if to == from || strings.Contains(conns[to.id], "/"+n.ip(to.i)+"/") {
					continue
				}
				missing++
				ctx, cancel := context.WithTimeout(from.c.ctx, 5*time.Second)
				_, _ = from.shoal(ctx, "connect", fmt.Sprintf("/ip4/%s/tcp/4040/p2p/%s", n.ip(to.i), to.id))
				cancel()
			}
		}
		if missing == 0 {
			t.Logf("side rewired over %s in %v", n.name, time.Since(start).Round(time.Millisecond))
			return
		}
		if nodes[0].c.ctx.Err() != nil {
			t.Fatalf("%d connections still missing over %s after %v, when the test ran out of time", missing, n.name, time.Since(start).Round(time.Second))
		}
		sleep(nodes[0].c.ctx, time.Second)
	}
}

// TestRollingRestart restarts every node in turn, as an upgrade would:
// content and pins survive in the volumes, the swarm re-forms by itself,
// and a node that never held the content fetches it afterwards.
func TestRollingRestart(t *testing.T) {
	t.Parallel() // small files: runs beside the other light scenario
	const size = 4 << 20
	c := newCluster(t, 4, clusterOptions{})
	data, want := randomBytes(t, size)
	cid := c.nodes[1].share("file", data)
	fetchAll(t, c.nodes[2:3], cid, want)
	c.must(c.nodes[2].shoal(c.ctx, "pin", cid))

	for _, d := range c.nodes {
		c.must(docker(c.ctx, "restart", "-t", "10", d.name))
		d.waitReady()
		d.waitPeers(1)
		t.Logf("restarted %s", d.name)
	}
	for _, d := range c.nodes[1:3] {
		list, err := d.ls()
		if err != nil {
			t.Fatal(err)
		}
		if !hasPinned(list, cid) {
			t.Fatalf("%s lost %s (pinned) across its restart: ls says %+v", d.name, cid, list)
		}
	}
	for _, d := range c.nodes {
		d.waitPeers(len(c.nodes) - 1)
	}
	fetchAll(t, []*dnode{c.nodes[0], c.nodes[3]}, cid, want)
}

func hasPinned(list []lsEntry, cid string) bool {
	for _, e := range list {
		if e.CID == cid && e.Pinned {
			return true
		}
	}
	return false
}

func names(nodes []*dnode) []string {
	var s []string
	for _, d := range nodes {
		s = append(s, d.name)
	}
	return s
}
