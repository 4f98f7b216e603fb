package protocol

import (
	"math"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// PeerScores is a node-lifetime table of how peers behaved, shared by every
// fetch of a Client. It remembers each peer's delivery rate and latency (so a
// new fetch sizes its window from the last one's measurements instead of
// starting cold), counts stalls, and bans peers that sent corrupt blocks for
// BanFor. It is safe for concurrent use.
type PeerScores struct {
	banFor time.Duration
	mu     sync.Mutex
	m      map[peer.ID]*peerScore
}

type peerScore struct {
	blocks      int64
	bytes       int64
	stalls      int64
	bad         int64
	rate        float64
	latency     time.Duration
	bannedUntil time.Time
}

// PeerScore is one row of the table.
type PeerScore struct {
	Peer        peer.ID
	Score       float64
	Blocks      int64 // blocks delivered first
	Bytes       int64
	Stalls      int64
	Bad         int64 // corrupt or unwanted blocks
	Rate        float64
	Latency     time.Duration
	BannedUntil time.Time
}

// NewPeerScores returns an empty table; peers that send a corrupt block are
// refused for banFor (at least one minute is sensible).
func NewPeerScores(banFor time.Duration) *PeerScores {
	return &PeerScores{banFor: banFor, m: make(map[peer.ID]*peerScore)}
}

func (t *PeerScores) get(p peer.ID) *peerScore {
	e := t.m[p]
	if e == nil {
		e = &peerScore{}
		t.m[p] = e
	}
	return e
}

// Delivered records a useful block of size bytes with the given latency and
// the fetch's current rate estimate for the peer.
func (t *PeerScores) Delivered(p peer.ID, size int, latency time.Duration, rate float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.get(p)
	e.blocks++
	e.bytes += int64(size)
	if rate > 0 {
		e.rate = rate
	}
	if latency > 0 {
		if e.latency == 0 {
			e.latency = latency
		} else {
			e.latency += (latency - e.latency) / 8
		}
	}
}

// Stalled records a request the peer left unanswered past its timeout.
func (t *PeerScores) Stalled(p peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.get(p).stalls++
}

// Bad records a corrupt or unwanted block and bans the peer until now+BanFor.
func (t *PeerScores) Bad(p peer.ID, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.get(p)
	e.bad++
	e.bannedUntil = now.Add(t.banFor)
}

// Banned reports whether p is refused at time now.
func (t *PeerScores) Banned(p peer.ID, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[p]
	return e != nil && now.Before(e.bannedUntil)
}

// Hint returns the last measured rate (bytes/s) and latency of p, or zeros.
func (t *PeerScores) Hint(p peer.ID) (rate float64, latency time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.m[p]; e != nil {
		return e.rate, e.latency
	}
	return 0, 0
}

// score is log-scaled useful work minus penalties: a stall costs as much as
// a few good blocks, a corrupt block far more than any amount of good work
// earns quickly.
func (e *peerScore) score() float64 {
	return math.Log1p(float64(e.blocks)) - 0.5*float64(e.stalls) - 20*float64(e.bad)
}

// Score returns p's score (0 for an unknown peer; higher is better).
func (t *PeerScores) Score(p peer.ID) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.m[p]; e != nil {
		return e.score()
	}
	return 0
}

// Snapshot returns every row of the table.
func (t *PeerScores) Snapshot() []PeerScore {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]PeerScore, 0, len(t.m))
	for p, e := range t.m {
		out = append(out, PeerScore{
			Peer: p, Score: e.score(), Blocks: e.blocks, Bytes: e.bytes, Stalls: e.stalls,
			Bad: e.bad, Rate: e.rate, Latency: e.latency, BannedUntil: e.bannedUntil,
		})
	}
	return out
}
