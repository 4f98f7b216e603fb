package protocol

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// linkSender is an uplink of rate bytes/s shared by the sends in flight
// (each of k concurrent sends moves at rate/k, as flows on one shaped
// link do); it records when each send started and ended. Sends to a peer
// in stuck block until the server closes. For synctest.
type linkSender struct {
	rate  float64
	stuck map[peer.ID]bool

	mu     sync.Mutex
	active map[*linkSend]bool
	done   []linkSend
	wake   chan struct{}
}

type linkSend struct {
	to         peer.ID
	blocks     int
	left       float64 // bytes
	start, end time.Time
}

func newLinkSender(rate float64) *linkSender {
	return &linkSender{rate: rate, stuck: map[peer.ID]bool{}, active: map[*linkSend]bool{}, wake: make(chan struct{})}
}

const linkTick = 5 * time.Millisecond

func (l *linkSender) Send(ctx context.Context, p peer.ID, m *Message) error {
	if l.stuck[p] {
		<-ctx.Done()
		return ctx.Err()
	}
	x := &linkSend{to: p, blocks: len(m.Blocks), left: float64(m.Size()), start: time.Now()}
	l.mu.Lock()
	l.active[x] = true
	l.mu.Unlock()
	// Every send drains its share of the link per tick.
	for {
		time.Sleep(linkTick)
		l.mu.Lock()
		x.left -= l.rate * linkTick.Seconds() / float64(len(l.active))
		if x.left <= 0 {
			delete(l.active, x)
			x.end = time.Now()
			l.done = append(l.done, *x)
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
	}
}

func (l *linkSender) sends() []linkSend {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]linkSend(nil), l.done...)
}

// TestServerSwarmSendsTakeTurns: five unchoked swarm peers want blocks of
// 100 kB over a 1 MB/s uplink. With upload turns the server sends one
// block at a time, each at the full rate (0.1 s), the peers in turn: the
// first block lands after one block's time, not five (what splitting the
// uplink five ways gives: every first block at 0.5 s), no two block sends
// overlap, and every peer gets its blocks. A Kubo peer (no extension)
// does not wait for a turn.
func TestServerSwarmSendsTakeTurns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const fetchers, nblocks, size, rate = 5, 4, 100_000, 1e6
		blks := seqBlocks(t, nblocks, size)
		cfg := DefaultServerConfig()
		cfg.UploadSlots = fetchers
		cfg.MaxBatchBytes = 1 // one block per message, as 1 MiB blocks are
		cfg.SwarmSendsAtOnce = 1
		link := newLinkSender(rate)
		s := bsTestServer(t, cfg, newMemStore(blks...), link)
		peers := make([]peer.ID, fetchers)
		for i := range peers {
			peers[i] = peer.ID(fmt.Sprintf("fetcher-%d", i))
			s.SetSwarmPeer(peers[i], true)
			s.ReceiveMessage(context.Background(), peers[i], wantAll(blks))
		}
		start := time.Now()
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		one := time.Duration(float64(size) / rate * float64(time.Second))
		time.Sleep(time.Duration(fetchers*nblocks+2) * one * 11 / 10) // the link's ticks add 5 %
		synctest.Wait()
		sends := link.sends()
		if len(sends) != fetchers*nblocks {
			t.Fatalf("%d block sends done, want %d", len(sends), fetchers*nblocks)
		}
		if first := sends[0].end.Sub(start); first > one*3/2 {
			t.Fatalf("first block landed after %v; one block's time is %v", first, one)
		}
		got := map[peer.ID]int{}
		for i, x := range sends {
			got[x.to] += x.blocks
			if i > 0 && x.start.Before(sends[i-1].end) {
				t.Fatalf("send %d to %s started at %v, before send %d to %s ended at %v: block sends overlap",
					i, x.to, x.start.Sub(start), i-1, sends[i-1].to, sends[i-1].end.Sub(start))
			}
			if i > 0 && i < fetchers && x.to == sends[i-1].to {
				t.Fatalf("send %d went to %s again while others waited for their first block", i, x.to)
			}
		}
		for _, p := range peers {
			if got[p] != nblocks {
				t.Fatalf("%s got %d blocks, want %d", p, got[p], nblocks)
			}
		}

		// A peer without the extension is served beside a turn.
		s.ReceiveMessage(context.Background(), peers[0], wantAll(blks)) // a turn in use
		s.ReceiveMessage(context.Background(), "kubo", wantAll(blks[:1]))
		time.Sleep(4 * one)
		synctest.Wait()
		var kubo, swarm *linkSend
		for _, x := range link.sends()[len(sends):] {
			switch {
			case x.to == "kubo" && kubo == nil:
				kubo = &x
			case x.to != "kubo" && swarm == nil:
				swarm = &x
			}
		}
		if kubo == nil || swarm == nil || !kubo.start.Before(swarm.end) {
			t.Fatalf("kubo's send %+v did not overlap the swarm send %+v", kubo, swarm)
		}
	})
}

// TestServerStalledSendGivesTurnBack: a swarm peer that stops reading
// holds the upload turn only for twice its block's time at the rate turns
// were sent at, then another peer's block goes (the stuck send goes on
// beside it). Without the limit the stuck send would hold every swarm
// upload of the node until its write deadline.
func TestServerStalledSendGivesTurnBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size, rate = 100_000, 1e6
		blks := seqBlocks(t, 6, size)
		cfg := DefaultServerConfig()
		cfg.UploadSlots = 2
		cfg.MaxBatchBytes = 1
		cfg.SwarmSendsAtOnce = 1
		link := newLinkSender(rate)
		s := bsTestServer(t, cfg, newMemStore(blks...), link)
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		// A first block measures the rate turns go at.
		s.SetSwarmPeer("ok", true)
		s.ReceiveMessage(ctx, "ok", wantAll(blks[:1]))
		one := time.Duration(float64(size) / rate * float64(time.Second))
		time.Sleep(2 * one)
		synctest.Wait()
		if n := len(link.sends()); n != 1 {
			t.Fatalf("%d sends, want the first block sent", n)
		}
		link.mu.Lock()
		link.stuck["stuck"] = true
		link.mu.Unlock()
		s.SetSwarmPeer("stuck", true)
		s.ReceiveMessage(ctx, "stuck", wantAll(blks[1:3]))
		synctest.Wait()
		asked := time.Now()
		s.ReceiveMessage(ctx, "ok", wantAll(blks[3:4]))
		time.Sleep(4 * one)
		synctest.Wait()
		sends := link.sends()
		if len(sends) != 2 || sends[1].to != "ok" {
			t.Fatalf("sends %+v: want ok's second block sent while stuck's send hangs", sends)
		}
		if waited := sends[1].end.Sub(asked); waited > 2*one+one*3/2 {
			t.Fatalf("ok's second block landed %v after it asked; the stuck send should hold the turn for about %v", waited, 2*one)
		}
	})
}

func TestTurnHold(t *testing.T) {
	for _, c := range []struct {
		size int
		rate float64
		want time.Duration
	}{
		{1 << 20, 20e6 / 8, 838860800 * time.Nanosecond}, // a 1 MiB block at 20 Mbit/s: 2 × 0.42 s
		{1 << 20, 0, 2 * (1 << 20) * time.Second / minTurnRate},
		{1 << 20, 1e3, 2 * (1 << 20) * time.Second / minTurnRate}, // never slower than minTurnRate
	} {
		if got := turnHold(c.size, c.rate); got != c.want {
			t.Errorf("turnHold(%d, %v) = %v, want %v", c.size, c.rate, got, c.want)
		}
	}
}
