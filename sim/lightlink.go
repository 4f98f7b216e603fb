package sim

import (
	"sync"
	"sync/atomic"
	"time"
)

// The light transport's links. Every light host has an uplink and a
// downlink (a shaper each, at the plan's rates); a byte written to a
// stream goes, in segments of at most lightSegment bytes, through the
// writer's uplink, then the one-way latency of the pair, then the
// reader's downlink, and is readable when its last bit has crossed the
// downlink. A shaper serves the streams queued at it round robin, one
// segment at a time, as simnet's fair queue serves flows, so a small
// message waits behind at most one segment of each busy stream. Nothing
// is encrypted, nothing is framed and nothing is lost: the wire bytes of
// a light node are the bytes written to its streams.

// lightSegment is the largest piece a shaper serves at once: 1.6 ms at
// 20 Mbit/s, the granularity at which streams share a link.
const lightSegment = 4 << 10

// segPool recycles full-size segment buffers. A segment belongs to the
// link that carries it until it is delivered, then to the stream half
// that holds it until its reader has copied it out or it is dropped;
// whoever drops it last puts a full-size buffer back.
var segPool = sync.Pool{New: func() any { b := make([]byte, lightSegment); return &b }}

// seg is one piece of a stream on its way: b is the data (nil for the
// end of the stream, fin). seq numbers a half's segments in the order
// written: timers of one instant run in any order (and in real time two
// completions may overlap), so the queues and the reader put segments
// back in order by it.
type seg struct {
	b   []byte
	buf *[]byte // the pooled buffer b lies in, or nil
	fin bool
	seq uint64
}

func newSeg(p []byte, seq uint64) *seg {
	s := &seg{seq: seq}
	if len(p) == lightSegment {
		s.buf = segPool.Get().(*[]byte)
		s.b = (*s.buf)[:len(p)]
	} else {
		s.b = make([]byte, len(p))
	}
	copy(s.b, p)
	return s
}

func (s *seg) release() {
	if s.buf != nil {
		segPool.Put(s.buf)
		s.buf, s.b = nil, nil
	}
}

// signal wakes every goroutine waiting for a change of what a mutex
// guards; both methods are called with that mutex held. The channel is
// made only when someone waits (most changes have no waiter).
type signal struct{ ch chan struct{} }

// wait is the channel to wait on after releasing the mutex.
func (s *signal) wait() <-chan struct{} {
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// broadcast wakes the waiters.
func (s *signal) broadcast() {
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// linkQueue is one stream half's queue at one shaper, guarded by the
// shaper's mutex.
type linkQueue struct {
	h      *half
	segs   []*seg
	queued bool // in the shaper's round
}

// shaper is one direction of a host's access link: it serves one segment
// at a time, taking len/rate of (virtual) time, and hands each on when it
// has crossed.
type shaper struct {
	bytesPerS float64                    // 0: unlimited
	done      func(q *linkQueue, s *seg) // called without mu held
	crossed   *atomic.Int64              // the bytes that crossed: the host's wire counter

	mu    sync.Mutex
	round []*linkQueue // queues with segments, served in turn
	cur   *seg
	curQ  *linkQueue
	timer *time.Timer
}

// push queues s behind q's earlier segments and starts serving if the
// link is idle.
func (l *shaper) push(q *linkQueue, s *seg) {
	l.mu.Lock()
	defer l.mu.Unlock()
	q.segs = insertBySeq(q.segs, s)
	if !q.queued {
		q.queued = true
		l.round = append(l.round, q)
	}
	if l.cur == nil {
		l.nextLocked()
	}
}

// insertBySeq puts s into segs (in seq order) where it belongs: nearly
// always at the end.
func insertBySeq(segs []*seg, s *seg) []*seg {
	i := len(segs)
	for i > 0 && segs[i-1].seq > s.seq {
		i--
	}
	segs = append(segs, nil)
	copy(segs[i+1:], segs[i:])
	segs[i] = s
	return segs
}

// drop forgets q's segments still waiting (a reset stream).
func (l *shaper) drop(q *linkQueue) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range q.segs {
		s.release()
	}
	q.segs = nil
}

// nextLocked starts serving the next queue's first segment, if any.
func (l *shaper) nextLocked() {
	for len(l.round) > 0 {
		q := l.round[0]
		l.round[0] = nil
		l.round = l.round[1:]
		if len(q.segs) == 0 { // dropped
			q.queued = false
			continue
		}
		s := q.segs[0]
		q.segs[0] = nil
		q.segs = q.segs[1:]
		if len(q.segs) > 0 {
			l.round = append(l.round, q)
		} else {
			q.queued = false
		}
		l.cur, l.curQ = s, q
		var d time.Duration
		if l.bytesPerS > 0 { // 0: unlimited
			d = time.Duration(float64(len(s.b)) / l.bytesPerS * float64(time.Second))
		}
		if l.timer == nil {
			l.timer = time.AfterFunc(d, l.finish)
		} else {
			l.timer.Reset(d)
		}
		return
	}
}

// finish: the segment being served has crossed the link.
func (l *shaper) finish() {
	l.mu.Lock()
	s, q := l.cur, l.curQ
	l.cur, l.curQ = nil, nil
	l.nextLocked()
	l.mu.Unlock()
	if s == nil {
		return
	}
	l.crossed.Add(int64(len(s.b)))
	l.done(q, s)
}

// stop ends the link's timer (the run is over).
func (l *shaper) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
	}
}

// lightPath is one direction between two light hosts: the sender's
// uplink, the latency, the receiver's downlink and the flow-control
// window of every stream half that takes it.
type lightPath struct {
	up, down *shaper
	latency  time.Duration
	// window is how many bytes a stream half may have written but not
	// yet read: twice the path's bandwidth-delay product (at least 64
	// KiB), so one stream can fill the slower link, and what the links
	// hold per stream is bounded by it.
	window int
}

func newLightPath(from, to *lightEndpoint, latency time.Duration) *lightPath {
	rate := min(from.up.bytesPerS, to.down.bytesPerS)
	if rate <= 0 {
		rate = max(from.up.bytesPerS, to.down.bytesPerS)
	}
	w := max(64<<10, min(16<<20, int(2*rate*2*latency.Seconds())))
	return &lightPath{up: from.up, down: to.down, latency: latency, window: w}
}

// half is one direction of a light stream. Its fields are guarded by the
// stream's mutex, but for up and down (the shapers' mutexes).
type half struct {
	st   *lstream
	path *lightPath
	up   linkQueue
	down linkQueue

	flight  []*seg // crossed the uplink, in the latency
	ready   []*seg // delivered, not yet read, in seq order
	off     int    // read offset into ready[0]
	pending int    // written and not yet read: at most path.window
	written uint64 // segments written (the next one's seq)
	next    uint64 // the seq the reader reads next
	wclosed bool   // the writer closed its side (fin sent)
	fin     bool   // the fin was delivered; it is the end once next reaches finSeq
	finSeq  uint64
	stopped bool  // the reader closed its side: data is dropped, writes fail
	err     error // reset
}

// readable reports whether the reader has data: the next segment in
// order has been delivered.
func (h *half) readable() bool { return len(h.ready) > 0 && h.ready[0].seq == h.next }

// atEOF reports whether the reader has read everything before the fin.
func (h *half) atEOF() bool { return h.fin && h.next == h.finSeq }

// uplinkDone: s has crossed the sender's uplink; it arrives at the
// receiver's downlink after the latency.
func (h *half) uplinkDone(s *seg) {
	st := h.st
	st.mu.Lock()
	if h.err != nil || h.stopped {
		st.mu.Unlock()
		h.discard(s)
		return
	}
	h.flight = append(h.flight, s)
	st.mu.Unlock()
	if h.path.latency <= 0 {
		h.arrive()
		return
	}
	time.AfterFunc(h.path.latency, h.arrive)
}

// arrive moves the oldest segment in the latency on to the downlink
// (every segment of a half takes the same latency, so the oldest is the
// one whose time has come, whichever timer of the same instant runs
// first).
func (h *half) arrive() {
	st := h.st
	st.mu.Lock()
	if len(h.flight) == 0 { // reset meanwhile
		st.mu.Unlock()
		return
	}
	s := h.flight[0]
	h.flight[0] = nil
	h.flight = h.flight[1:]
	st.mu.Unlock()
	h.path.down.push(&h.down, s)
}

// downlinkDone: s has crossed the receiver's downlink and is readable.
func (h *half) downlinkDone(s *seg) {
	st := h.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if h.err != nil || h.stopped {
		h.discardLocked(s)
		return
	}
	if s.fin {
		h.fin, h.finSeq = true, s.seq
	} else {
		h.ready = insertBySeq(h.ready, s)
	}
	st.wakeLocked()
}

func (h *half) discard(s *seg) {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	h.discardLocked(s)
}

// discardLocked drops a segment nobody will read, giving its bytes back
// to the window.
func (h *half) discardLocked(s *seg) {
	h.pending -= len(s.b)
	s.release()
	h.st.wakeLocked()
}

// dropLocked drops everything of h not yet read (a reset, or the reader
// stopped); segments still in the links are dropped there.
func (h *half) dropLocked() {
	for _, s := range h.flight {
		h.pending -= len(s.b)
		s.release()
	}
	h.flight = nil
	for i, s := range h.ready {
		n := len(s.b)
		if i == 0 {
			n -= h.off
		}
		h.pending -= n
		s.release()
	}
	h.ready, h.off = nil, 0
}
