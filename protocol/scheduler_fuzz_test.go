package protocol

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// checkInvariants verifies the scheduler's bookkeeping agrees with itself.
func checkInvariants(t *testing.T, s *Scheduler) {
	t.Helper()
	queued, remaining := 0, 0
	for _, b := range s.blocks {
		if b.queued {
			queued++
			if b.done || len(b.inflight) > 0 {
				t.Fatalf("block %s queued but done=%v inflight=%d", b.c, b.done, len(b.inflight))
			}
		}
		if !b.done {
			remaining++
		}
		for _, p := range b.inflight {
			if findReq(p.reqs, b) < 0 {
				t.Fatalf("block %s in flight at %s without a request", b.c, p.id)
			}
			if !p.active {
				t.Fatalf("block %s in flight at departed peer %s", b.c, p.id)
			}
		}
	}
	if s.finished() {
		return
	}
	if queued != s.queued || remaining != s.remaining {
		t.Fatalf("counters queued=%d remaining=%d, recount %d %d", s.queued, s.remaining, queued, remaining)
	}
	for _, p := range s.peers {
		if len(p.reqs) > p.w.cfg.Max*s.cfg.MaxCopies {
			t.Fatalf("peer %s has %d requests", p.id, len(p.reqs))
		}
		for _, r := range p.reqs {
			if r.b.done || !r.b.inflightAt(p) {
				t.Fatalf("peer %s request for %s: done=%v inflight=%v", p.id, r.b.c, r.b.done, r.b.inflightAt(p))
			}
		}
	}
	for _, b := range s.order[s.head:] {
		if !b.done && s.blocks[b.c] != b {
			t.Fatalf("order holds stray block %s", b.c)
		}
	}
	if !slices.IsSortedFunc(s.order, func(a, b *block) int { return slices.Compare(a.path, b.path) }) {
		t.Fatal("order not sorted by path")
	}
}

// FuzzScheduler plays arbitrary event sequences (peers joining and leaving,
// presences, blocks, local blocks, bad blocks, ticks) and checks invariants
// and that no want goes to a banned or departed peer.
func FuzzScheduler(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{0, 0, 0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9, 0xba})
	f.Add([]byte("the quick brown fox jumps over the lazy dog, repeatedly, many times"))
	d := makeDAG("fuzz", 24, 1000, 6)
	f.Fuzz(func(t *testing.T, ops []byte) {
		s, err := NewScheduler(DefaultSchedulerConfig(), d.root)
		if err != nil {
			t.Fatal(err)
		}
		peers := []peer.ID{"p0", "p1", "p2", "p3"}
		now := simEpoch
		inflight := map[peer.ID][]cid.Cid{}
		gone := map[peer.ID]bool{}
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i]%10, int(ops[i+1])
			p := peers[arg%len(peers)]
			c := d.all[arg%len(d.all)]
			now = now.Add(time.Duration(arg) * 10 * time.Millisecond)
			switch op {
			case 0:
				if s.AddPeer(p, now) {
					gone[p] = false
				}
			case 1:
				s.RemovePeer(p, now)
				gone[p] = true
			case 2:
				s.Have(p, c, now)
			case 3:
				s.DontHave(p, c, now)
			case 4, 5:
				// Deliver the oldest outstanding want of p, or c unasked.
				if q := inflight[p]; len(q) > 0 {
					c, inflight[p] = q[0], q[1:]
				}
				if s.Known(c) {
					_ = s.BlockReceived(p, c, d.size[c], d.links[c], now)
				}
			case 6:
				s.MarkLocal(c, d.size[c], d.links[c], now)
			case 7:
				s.BadBlock(p, fmt.Errorf("fuzz"), now)
				gone[p] = true
			case 8:
				s.Tick(now.Add(time.Duration(arg) * time.Second))
			case 9:
				s.SetSearching(arg%2 == 0, now)
			}
			for _, a := range s.Ready() {
				if a.Kind != ActCancel && gone[a.Peer] {
					t.Fatalf("%v to a peer that left", a)
				}
				if a.Kind == ActWantBlock {
					inflight[a.Peer] = append(inflight[a.Peer], a.CID)
				}
			}
			checkInvariants(t, s)
			if s.Done() && s.Progress().BlocksDone != len(d.all) {
				t.Fatalf("done with %d of %d blocks", s.Progress().BlocksDone, len(d.all))
			}
		}
	})
}

// BenchmarkSchedulerSim measures the state machine's own cost per block on
// a 16384-block DAG served by 8 simulated peers (virtual time, no I/O).
func BenchmarkSchedulerSim(b *testing.B) {
	d := makeDAG("bench", 16384, 256<<10, 1024)
	for b.Loop() {
		m := newSim(b, DefaultSchedulerConfig(), d)
		for i := range 8 {
			m.addPeer(fmt.Sprintf("p%d", i), 1000*mbps, 5*time.Millisecond, 0)
		}
		m.run(time.Hour)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(d.all)), "ns/block")
}
