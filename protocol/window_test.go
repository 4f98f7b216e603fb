package protocol

import (
	"testing"
	"time"
)

func TestWindowTable(t *testing.T) {
	cfg := DefaultWindowConfig()
	const blk = 256 << 10
	// deliver feeds n blocks arriving every gap, each with latency lat.
	deliver := func(w *window, start time.Time, n int, gap, lat time.Duration) time.Time {
		now := start
		for range n {
			now = now.Add(gap)
			w.delivered(blk, now.Add(-lat), now, blk)
		}
		return now
	}
	tests := []struct {
		name    string
		run     func(w *window)
		wantMin int
		wantMax int
	}{
		{"fresh peer starts at Initial", func(w *window) {}, cfg.Initial, cfg.Initial},
		{"slow start grows one block per delivery", func(w *window) {
			deliver(w, simEpoch, 6, ms(1), ms(10))
		}, cfg.Initial + 6, cfg.Initial + 6},
		{"queueing ends slow start; window settles at BDP + headroom", func(w *window) {
			w.cfg.MinQueue = 0 // the plain BDP rule; the floor has its own case
			// 100 MB/s link, 10 ms base latency: BDP = 1e8×0.01/262144 ≈ 4 blocks.
			gap := time.Duration(float64(blk) / 1e8 * float64(time.Second))
			now := deliver(w, simEpoch, 4, gap, ms(10))
			deliver(w, now, 400, gap, ms(40)) // queue built up: latency 4× base
		}, 5, 8},
		{"a stall halves the window", func(w *window) {
			deliver(w, simEpoch, 12, ms(1), ms(10)) // cwnd 16
			w.stalled()
		}, 8, 8},
		{"repeated stalls shrink to Min", func(w *window) {
			for range 10 {
				w.stalled()
			}
		}, cfg.Min, cfg.Min},
		{"growth is capped at Max", func(w *window) {
			// BDP = 262 MB/s × 1 s ÷ 256 KiB ≈ 1000 blocks.
			deliver(w, simEpoch, 500, ms(1), time.Second)
		}, cfg.Max, cfg.Max},
		{"past slow start the window follows the BDP down", func(w *window) {
			w.cfg.MinQueue = 0
			// BDP = 262 MB/s × 10 ms ÷ 256 KiB = 10 blocks (+2 headroom).
			deliver(w, simEpoch, 500, ms(1), ms(10))
		}, 12, 12},
		{"on a short fast path the window covers MinQueue of the rate", func(w *window) {
			// 26 MB/s, 1 ms latency: BDP is 1 block, but 250 ms of the
			// rate is 25 blocks of 256 KiB (+2 headroom).
			deliver(w, simEpoch, 500, ms(10), ms(1))
		}, 27, 27},
		{"a slow peer's window stays small despite MinQueue", func(w *window) {
			// 256 KB/s, 20 ms latency: 250 ms of the rate is under one block.
			w.slowStart = false // the target rule alone
			deliver(w, simEpoch, 100, time.Second, ms(20))
		}, cfg.Min, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWindow(cfg)
			tc.run(&w)
			if got := w.size(); got < tc.wantMin || got > tc.wantMax {
				t.Errorf("size = %d, want [%d, %d] (cwnd %.2f rate %.0f base %v srtt %v)",
					got, tc.wantMin, tc.wantMax, w.cwnd, w.rate, w.base, w.srtt)
			}
		})
	}
}

func TestWindowTimeout(t *testing.T) {
	cfg := DefaultWindowConfig()
	w := newWindow(cfg)
	if got := w.timeout(); got != cfg.InitialTimeout {
		t.Errorf("timeout before samples = %v, want %v", got, cfg.InitialTimeout)
	}
	for i := range 20 {
		now := simEpoch.Add(time.Duration(i) * time.Second)
		w.delivered(1000, now.Add(-ms(200)), now, 1000)
	}
	// Steady 200 ms latency: rttvar decays, timeout near srtt, at least MinTimeout.
	if got := w.timeout(); got < cfg.MinTimeout || got > 300*time.Millisecond+cfg.MinTimeout {
		t.Errorf("timeout after steady 200ms = %v", got)
	}
	base := w.timeout()
	w.stalled()
	w.stalled()
	if got := w.timeout(); got != 4*base {
		t.Errorf("timeout after two stalls = %v, want 4×%v", got, base)
	}
	for range 10 {
		w.stalled()
	}
	if got := w.timeout(); got != cfg.MaxTimeout {
		t.Errorf("timeout after many stalls = %v, want MaxTimeout %v", got, cfg.MaxTimeout)
	}
	w.delivered(1000, simEpoch, simEpoch.Add(ms(200)), 1000)
	if got := w.timeout(); got != base {
		t.Errorf("timeout after delivery = %v, want backoff reset to %v", got, base)
	}
}

// TestWindowEstimatesIgnoreTinyBlocks: a DAG's root (a few hundred bytes
// in one round trip, or with another block in no time) is neither a rate
// sample nor the latency of a 1 MiB request. Before, a root delivered in
// ~0 s seeded the rate at many times the link's and made the smallest
// latency ~0, so a peer four blocks deep looked able to deliver one more
// within 0.5 s and the endgame duplicated blocks onto it (multi-source
// sim: 7 of 32 leaves fetched twice in one run).
func TestWindowEstimatesIgnoreTinyBlocks(t *testing.T) {
	const leaf = 1 << 20
	const rate = 1.25e6 // 10 Mbit/s
	perLeaf := time.Duration(leaf / rate * float64(time.Second))
	w := newWindow(DefaultWindowConfig())
	now := simEpoch
	w.delivered(1610, now, now.Add(time.Microsecond), leaf) // the root, with another block
	now = now.Add(ms(40))
	w.delivered(1610, now.Add(-ms(40)), now, leaf) // an interior block in one round trip
	if w.rate != 0 {
		t.Errorf("rate %.0f B/s after two tiny blocks, want none yet", w.rate)
	}
	sent := now
	for i := range 3 {
		now = sent.Add(ms(40) + time.Duration(i+1)*perLeaf)
		w.delivered(leaf, sent, now, leaf)
	}
	if w.rate > 1.2*rate || w.rate < 0.3*rate {
		t.Errorf("rate %.0f B/s after three 1 MiB blocks at %.0f B/s, want within [0.3, 1.2] of it", w.rate, rate)
	}
	got := w.expectedLatency(4, leaf)
	if want := time.Duration(float64(5*leaf) / w.rate * float64(time.Second)); got < want-time.Millisecond {
		t.Errorf("expected latency four blocks deep %v, want ≥ %v (five blocks at the measured rate %.0f B/s; smallest latency %v)", got, want, w.rate, w.base)
	}
}

// TestWindowPipe: a partial holder's pipe is the block in flight plus the
// round trip at its back-to-back rate, never MinQueue's queue, and never
// more than the window.
func TestWindowPipe(t *testing.T) {
	const mib = 1 << 20
	// feed delivers n blocks of blk bytes over a path of rate bytes/s and
	// round trip rtt, one after another (each requested as the last one
	// arrived, so each latency is rtt + its transmission).
	feed := func(w *window, n, blk int, rate float64, rtt time.Duration) {
		per := time.Duration(float64(blk) / rate * float64(time.Second))
		now := simEpoch
		for range n {
			now = now.Add(per)
			w.delivered(blk, now.Add(-rtt-per), now, float64(blk))
		}
	}
	tests := []struct {
		name string
		run  func(w *window) int // returns the block size
		want int
	}{
		{"no delivery yet: one", func(w *window) int { return mib }, 1},
		{"1 MiB at 20 Mbit/s over 40 ms: the round trip is a tenth of a block", func(w *window) int {
			feed(w, 8, mib, 20e6/8, ms(40))
			return mib
		}, 1},
		{"256 KiB at 20 Mbit/s over 40 ms: the round trip is over a quarter block", func(w *window) int {
			feed(w, 16, 256<<10, 20e6/8, ms(40))
			return 256 << 10
		}, 2},
		{"1 MiB at 1 Gbit/s over 100 ms: the round trip holds 12 blocks", func(w *window) int {
			feed(w, 64, mib, 1e9/8, ms(100))
			return mib
		}, 13},
		{"a holder that sends to others between our blocks: one", func(w *window) int {
			// The root in one 40 ms round trip, then 1 MiB blocks each
			// asked before the previous one arrived but 1.3 s apart: the
			// holder sends two other receivers a block between ours.
			w.delivered(1<<10, simEpoch, simEpoch.Add(ms(40)), mib)
			now := simEpoch.Add(ms(40))
			for range 8 {
				next := now.Add(ms(1300))
				w.delivered(mib, now.Add(-ms(100)), next, mib)
				now = next
			}
			return mib
		}, 1},
		{"the round trip from the root, the transmission from pairs", func(w *window) int {
			// 256 KiB at 50 Mbit/s (42 ms) after a 10 ms root: a tenth of
			// a block and more of round trip, so two in flight.
			w.delivered(1<<10, simEpoch, simEpoch.Add(ms(10)), 256<<10)
			feed(w, 16, 256<<10, 50e6/8, ms(10))
			return 256 << 10
		}, 2},
		{"never more than the window: after stalls", func(w *window) int {
			feed(w, 64, mib, 1e9/8, ms(100))
			for range 8 {
				w.stalled()
			}
			return mib
		}, DefaultWindowConfig().Min},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWindow(DefaultWindowConfig())
			blk := tc.run(&w)
			if got := w.pipe(float64(blk), 0); got != tc.want {
				t.Errorf("pipe = %d, want %d (size %d, rate %.0f, base %v)", got, tc.want, w.size(), w.rate, w.base)
			}
		})
	}
}
