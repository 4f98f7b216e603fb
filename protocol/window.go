package protocol

import (
	"fmt"
	"math"
	"time"
)

// WindowConfig bounds the per-peer request window and the stall timeout.
//
// The window is the number of want-block requests kept in flight to one peer.
// It is sized to the peer's bandwidth-delay product in blocks, the way
// libtorrent sizes its request queue from download rate × queue time:
//
//	target = ceil(rate × max(baseLatency, MinQueue) / avgBlock) + Headroom
//
// where rate is the EWMA of the peer's delivery rate (bytes per second of busy
// time), baseLatency is the smallest request→block latency seen from the peer
// (one round trip plus one block's transmission, i.e. the latency of an
// unqueued request) and avgBlock is the fetch's block size weighted by bytes
// (the scheduler's winBlock: a DAG's small root and last leaf do not make
// its 1 MiB leaves count as small ones). With the
// pipe full, rate × baseLatency / avgBlock is exactly the number of blocks that
// must be outstanding so the peer never idles between requests; Headroom keeps
// a few more queued at the peer to absorb jitter.
//
// MinQueue is a floor on that latency: whatever the base latency, the window
// covers at least MinQueue of the peer's measured rate (libtorrent's
// request_queue_time plays the same part). On a short path (loopback, a LAN)
// the base latency is a millisecond or less while one round of the request
// loop — a want written, read, answered, the block verified and stored, the
// next want sent — takes that long or longer under load, and a window of
// "BDP + 2" blocks leaves the peer idle between rounds. The floor costs
// nothing on a long path (base latency above MinQueue) and on a slow peer
// (MinQueue of its rate is under one block). Since target is then about
// window × MinQueue / srtt + Headroom, MinQueue is in effect the request
// latency the window aims for: with 50 ms, a seeder whose request round
// took 300 ms on a busy CPU (latency that no smaller window would remove)
// was held at 2–3 blocks of 1 MiB; 250 ms keeps about 12.
//
// When the window itself limits throughput the measured rate is
// window × avgBlock / baseLatency, so target = window + Headroom: the window
// grows by about Headroom blocks per round trip until the pipe is full, after
// which queueing raises latency but not rate and the target stops growing.
// Before that, slow start grows the window by one block per delivered block
// (doubling per round trip) until the first stall or until queueing delay
// shows (smoothed latency above twice the base latency).
//
// A stall (a request unanswered for the retransmission timeout while the peer
// delivered nothing else either) halves the window and doubles the timeout
// (exponential backoff, reset by the next delivery).
// The timeout is the peer's own srtt + 4·rttvar of block latency (RFC 6298
// applied to request→block latency), clamped to [MinTimeout, MaxTimeout].
type WindowConfig struct {
	Min      int // smallest window, in blocks (≥ 1)
	Max      int // largest window, in blocks
	Initial  int // window of a peer with no history
	Headroom int // blocks queued beyond the bandwidth-delay product
	// MinQueue is the least time of a peer's rate the window covers.
	MinQueue time.Duration

	InitialTimeout time.Duration // stall timeout before the first sample
	MinTimeout     time.Duration
	MaxTimeout     time.Duration
}

// DefaultWindowConfig returns bounds suited to 1 MiB blocks on links from a
// few Mbit/s to a few Gbit/s.
func DefaultWindowConfig() WindowConfig {
	return WindowConfig{
		Min:            2,
		Max:            64,
		Initial:        4,
		Headroom:       2,
		MinQueue:       250 * time.Millisecond,
		InitialTimeout: 5 * time.Second,
		MinTimeout:     time.Second,
		MaxTimeout:     60 * time.Second,
	}
}

// Validate reports whether the bounds are usable.
func (c WindowConfig) Validate() error {
	switch {
	case c.Min < 1:
		return fmt.Errorf("%w: window Min %d < 1", ErrFetchConfig, c.Min)
	case c.Max < c.Min:
		return fmt.Errorf("%w: window Max %d < Min %d", ErrFetchConfig, c.Max, c.Min)
	case c.Initial < c.Min || c.Initial > c.Max:
		return fmt.Errorf("%w: window Initial %d outside [%d, %d]", ErrFetchConfig, c.Initial, c.Min, c.Max)
	case c.Headroom < 0:
		return fmt.Errorf("%w: window Headroom %d < 0", ErrFetchConfig, c.Headroom)
	case c.MinQueue < 0:
		return fmt.Errorf("%w: window MinQueue %v < 0", ErrFetchConfig, c.MinQueue)
	case c.MinTimeout <= 0 || c.MaxTimeout < c.MinTimeout:
		return fmt.Errorf("%w: timeouts [%v, %v] invalid", ErrFetchConfig, c.MinTimeout, c.MaxTimeout)
	case c.InitialTimeout < c.MinTimeout || c.InitialTimeout > c.MaxTimeout:
		return fmt.Errorf("%w: InitialTimeout %v outside [%v, %v]", ErrFetchConfig, c.InitialTimeout, c.MinTimeout, c.MaxTimeout)
	}
	return nil
}

// window is one peer's request window and latency/rate estimator. It is pure
// arithmetic on the times it is given.
type window struct {
	cfg       WindowConfig
	cwnd      float64
	ssthresh  float64
	slowStart bool

	samples  int
	srtt     time.Duration
	rttvar   time.Duration
	base     time.Duration // smallest latency seen
	rate     float64       // bytes per second, EWMA of delivery-rate samples
	lastSeen time.Time     // time of the last delivery
	// pairRate is the rate of back-to-back deliveries (EWMA, bytes/s):
	// a block asked before the previous one arrived, over the gap
	// between the two (window.pipe).
	pairRate float64
	// minSmall is the smallest latency of a block under
	// minRateSampleBytes (about a round trip); zero until one is seen.
	// Without one, base is the smallest latency of a large block.
	minSmall time.Duration
	backoff  int // consecutive stalls
	recent   [rateSpan]delivery
	nrecent  int
}

// rateSpan is how many deliveries one rate sample spans. Blocks often
// arrive in clumps (several per message, or queued behind a slow reader), so
// the gap between two consecutive blocks says little; the span of the last
// few says how fast the peer really delivers.
const rateSpan = 8

// minRateSampleBytes is the smallest block whose latency alone is taken as
// a rate sample (before rateSpan deliveries span one).
const minRateSampleBytes = 64 << 10

type delivery struct {
	at time.Time
	n  int
}

func newWindow(cfg WindowConfig) window {
	return window{cfg: cfg, cwnd: float64(cfg.Initial), ssthresh: float64(cfg.Max), slowStart: true}
}

// size is the number of requests that may be in flight.
func (w *window) size() int {
	n := int(w.cwnd)
	return max(w.cfg.Min, min(n, w.cfg.Max))
}

// seed starts the estimator from a previous fetch's measurements of the peer.
func (w *window) seed(rate float64, latency time.Duration) {
	if rate <= 0 || latency <= 0 {
		return
	}
	w.rate = rate
	w.base = latency
	w.srtt = latency
	w.rttvar = latency / 2
	w.samples = 1
}

// delivered records a block of n bytes, requested at sent, arriving at now.
func (w *window) delivered(n int, sent, now time.Time, avgBlock float64) {
	lat := max(now.Sub(sent), time.Microsecond)
	w.samplePair(n, sent, now)
	if n < minRateSampleBytes {
		w.minSmall = minNonZero(w.minSmall, lat)
	}
	w.sampleLatency(lat)
	if sample, ok := w.rateSample(n, sent, now); ok {
		if w.rate == 0 {
			w.rate = sample
		} else {
			w.rate += (sample - w.rate) / 4
		}
	}
	w.lastSeen = now
	w.backoff = 0
	w.grow(avgBlock)
}

// rateSample is the delivery rate over the last rateSpan deliveries: the
// bytes after the oldest one divided by the time since it. Until enough
// deliveries are seen, the one block over its latency (a low estimate that
// slow start corrects).
func (w *window) rateSample(n int, sent, now time.Time) (float64, bool) {
	if w.nrecent == len(w.recent) {
		copy(w.recent[:], w.recent[1:])
		w.nrecent--
	}
	w.recent[w.nrecent] = delivery{at: now, n: n}
	w.nrecent++
	if w.nrecent < 3 {
		// One block over its latency — unless it is small: a few hundred
		// bytes that came in a round trip (or with another block, in no
		// time at all) are no measure of bandwidth, and as the first
		// sample of the average such a block set the rate at many times
		// the link's.
		if d := now.Sub(sent); d > 0 && n >= minRateSampleBytes {
			return float64(n) / d.Seconds(), true
		}
		return 0, false
	}
	span := now.Sub(w.recent[0].at)
	if span <= 0 {
		return 0, false
	}
	bytes := 0
	for _, d := range w.recent[1:w.nrecent] {
		bytes += d.n
	}
	return float64(bytes) / span.Seconds(), true
}

func (w *window) sampleLatency(lat time.Duration) {
	if w.samples == 0 {
		w.srtt, w.rttvar, w.base = lat, lat/2, lat
	} else {
		d := w.srtt - lat
		if d < 0 {
			d = -d
		}
		w.rttvar = (3*w.rttvar + d) / 4
		w.srtt = (7*w.srtt + lat) / 8
		w.base = min(w.base, lat)
	}
	w.samples++
}

func (w *window) grow(avgBlock float64) {
	hi := float64(w.cfg.Max)
	if w.slowStart {
		w.cwnd = math.Min(w.cwnd+1, hi)
		queueing := w.samples >= 4 && w.srtt > 2*w.base
		if w.cwnd >= w.ssthresh || queueing {
			w.slowStart = false
		}
		return
	}
	target := w.target(avgBlock)
	// Move 1/cwnd of the way per delivery: about the whole distance per
	// round trip, without jumping on one noisy sample.
	w.cwnd += (target - w.cwnd) / math.Max(w.cwnd, 1)
	w.cwnd = math.Max(float64(w.cfg.Min), math.Min(w.cwnd, hi))
}

// target is the bandwidth-delay product in blocks (the delay at least
// MinQueue) plus headroom.
func (w *window) target(avgBlock float64) float64 {
	if w.rate <= 0 || avgBlock <= 0 || w.base <= 0 {
		return w.cwnd
	}
	bdp := math.Ceil(w.rate * max(w.base, w.cfg.MinQueue).Seconds() / avgBlock)
	return math.Max(float64(w.cfg.Min), math.Min(bdp+float64(w.cfg.Headroom), float64(w.cfg.Max)))
}

// samplePair takes a packet-pair sample: a block that was asked before
// the previous block from the peer arrived was waiting at the peer while
// that one crossed, so the gap between the two arrivals is its own
// transmission — at the path's rate if the peer sends to us alone, slower
// if it sends to others in between. Small blocks (a DAG's root and
// interior nodes) are no sample: the gap after them is mostly noise.
func (w *window) samplePair(n int, sent, now time.Time) {
	if w.lastSeen.IsZero() || !sent.Before(w.lastSeen) || n < minRateSampleBytes {
		return
	}
	gap := now.Sub(w.lastSeen)
	if gap <= 0 {
		return
	}
	sample := float64(n) / gap.Seconds()
	if w.pairRate == 0 {
		w.pairRate = sample
	} else {
		w.pairRate += (sample - w.pairRate) / 4
	}
}

// pipe is the window for a peer that is itself still fetching (a partial
// swarm holder): the block being sent plus as many as cover the round
// trip, and no queue beyond that: not MinQueue's quarter second of its
// rate, and no Headroom. A partial holder serves the swarm's other
// receivers too; wants queued at it wait behind theirs while the same
// blocks sit unasked at holders that are idle, and are fetched twice in
// the endgame (bench/sim.md, "pipe").
//
// A block's transmission is timed at the back-to-back rate (samplePair),
// or until one is measured at the delivery rate, which with one block at
// a time in flight counts the round trip in and so errs toward fewer. The
// round trip is the smallest latency of a small block (a DAG's root or
// interior node: one round trip) from this peer, else from any peer of
// the fetch (fetchRTT), else the smallest latency of a large block less
// its transmission. A second block is kept in flight once the round trip
// reaches 18 % of a block's transmission; below that, a holder that
// sends to this receiver alone idles for it at most 15 % of the time.
// More blocks are kept as the path grows long and fat:
//   - 1 MiB blocks at 20 Mbit/s over 40 ms: 1;
//   - 256 KiB blocks on the same path: 2;
//   - 1 MiB at 1 Gbit/s over 100 ms: 13.
//
// A holder that sends to others between our blocks delivers them slower,
// hence a round trip that is small beside a block's time: 1. Before any
// delivery the pipe is 1. Never above size.
func (w *window) pipe(avgBlock float64, fetchRTT time.Duration) int {
	rate := w.pairRate
	if rate <= 0 {
		rate = w.rate // one at a time: counts the round trip in, so errs low
	}
	if rate <= 0 || avgBlock <= 0 {
		return 1
	}
	per := avgBlock / rate
	var rtt float64
	switch {
	case w.minSmall > 0:
		rtt = w.minSmall.Seconds()
	case fetchRTT > 0:
		rtt = fetchRTT.Seconds()
	case w.base > 0: // no small block from anyone: base is a large one's
		rtt = max(w.base.Seconds()-per, 0)
	}
	n := 1 + int(math.Floor(rtt/per+pipeSlack))
	return max(1, min(n, w.size()))
}

// minNonZero is the smaller of a and b, where a zero a means none yet.
func minNonZero(a, b time.Duration) time.Duration {
	if a <= 0 || b < a {
		return b
	}
	return a
}

// pipeSlack rounds a fraction of a block of round trip up to a whole
// block once it reaches 0.18 (see pipe). In the simulator's
// flash-crowd-30 a leecher's round trip to another is at most 14 % of a
// 1 MiB block's transmission there, since the holder shares its uplink:
// one block at a time on every pick; on hetero's fast paths across the
// 40 ms between regions 5 % of the picks keep 2 or 3. In TestSimSwarmMapsReplaceProbes two partial peers send 256 KiB
// blocks to one receiver alone over a round trip of 24 %: two, and no
// idle time.
const pipeSlack = 0.82

// stalled records a request that exceeded the timeout.
func (w *window) stalled() {
	w.ssthresh = math.Max(w.cwnd/2, float64(w.cfg.Min))
	w.cwnd = w.ssthresh
	w.slowStart = false
	if w.backoff < 8 {
		w.backoff++
	}
}

// timeout is how long a request to this peer may stay unanswered.
func (w *window) timeout() time.Duration {
	t := w.cfg.InitialTimeout
	if w.samples > 0 {
		t = w.srtt + 4*w.rttvar
	}
	t = max(w.cfg.MinTimeout, min(t, w.cfg.MaxTimeout))
	for range w.backoff {
		t *= 2
		if t >= w.cfg.MaxTimeout {
			return w.cfg.MaxTimeout
		}
	}
	return t
}

// expectedLatency estimates how long a request for a block of avgBlock
// bytes sent now would take, given queued requests already outstanding:
// the unqueued latency, then the queued blocks at the peer's rate. The
// unqueued latency is the smallest seen, but never less than the block's
// own transmission at that rate: the smallest latency may be a tiny block's
// (a DAG's root: one round trip), which says nothing of how long 1 MiB
// takes, and a fetch that took it for a leaf's duplicated blocks it had
// asked elsewhere (bench/sim.md, "multi-source: rate from small blocks").
func (w *window) expectedLatency(queued int, avgBlock float64) time.Duration {
	if w.samples == 0 || w.rate <= 0 {
		return w.cfg.InitialTimeout / 2
	}
	per := time.Duration(avgBlock / w.rate * float64(time.Second))
	return max(w.base, per) + time.Duration(queued)*per
}
