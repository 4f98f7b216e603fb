package node

import (
	"context"
	"testing"
	"time"
)

// TestPlainSwarmLeechersServeEachOther: with the swarm extension off
// (plain Bitswap 1.2.0 between every pair), a seeder whose uplink is
// limited and three leechers that know only the seeder (their bootstrap
// peer) start their fetches together. The leechers meet within a quarter
// second, by which time each has its first leaves queued at the seeder;
// the fetches must learn from the others' HAVEs that they hold blocks and
// take some from them: the block bytes the leechers received from each
// other are at least one block, and every leecher gets the right bytes.
// It failed when only the seeder served: the regression bench/sim.md
// bisected to ccc9e3c, and windows sized by a mean block size that the
// DAG's small root and last leaf pulled down, so each leecher had the
// whole file queued at the seeder before any HAVE came (5 failures in
// 150 runs with -test.cpu 1; the scheduler's winBlock).
func TestPlainSwarmLeechersServeEachOther(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	scfg := swarmConfig(false)
	scfg.Transfer.UploadLimit = 4 << 20 // 8 MiB takes the seeder ~2 s per copy
	seeder, ls, res, data := seedCrowd(t, ctx, scfg, false, 3, 33)
	for i, l := range ls {
		t.Logf("leecher %d: %d peers before the fetch", i, len(l.Peers()))
	}
	trs := fetchAll(t, ctx, ls, res.CID)
	seederID := seeder.host.ID().String()
	var fromPeers, fromSeeder uint64
	for i, tr := range trs {
		select {
		case <-tr.Done():
		case <-ctx.Done():
			t.Fatalf("leecher %d: not done: %v", i, ctx.Err())
		}
		if err := tr.Err(); err != nil {
			t.Fatalf("leecher %d: %v", i, err)
		}
		readSwarmFile(t, ctx, ls[i], res.CID, data)
		for _, pc := range tr.Info().Peers {
			if pc.Peer == seederID {
				fromSeeder += pc.Bytes
			} else {
				fromPeers += pc.Bytes
			}
		}
	}
	t.Logf("block bytes received: %d from the seeder, %d from other leechers (content %d × 3)", fromSeeder, fromPeers, len(data))
	if fromPeers < 1<<20 {
		t.Fatalf("the leechers received %d block bytes from each other and %d from the seeder: over plain Bitswap they must serve each other", fromPeers, fromSeeder)
	}
}
