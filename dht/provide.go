package dht

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// rootSet is the set of provided roots and, per root, when an ADD_PROVIDER
// record for it was last delivered to a DHT server. The sweeping provider
// announces whole keyspace regions and reports no per-key outcome, so the
// times come from recordingSender, which sees every record as it is sent.
type rootSet struct {
	mu    sync.Mutex
	roots map[string]int64 // multihash bytes → unix nanoseconds of last success, 0 = never
	now   func() time.Time
	first chan struct{} // closed when the first root is added
}

func newRootSet() *rootSet {
	return &rootSet{roots: map[string]int64{}, now: time.Now, first: make(chan struct{})}
}

// nonEmpty is closed once the set has held a root.
func (s *rootSet) nonEmpty() <-chan struct{} { return s.first }

// add inserts roots; existing roots keep their announcement time.
func (s *rootSet) add(keys ...mh.Multihash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if _, ok := s.roots[string(k)]; !ok {
			s.roots[string(k)] = 0
		}
	}
	if len(s.roots) > 0 {
		select {
		case <-s.first:
		default:
			close(s.first)
		}
	}
}

func (s *rootSet) remove(k mh.Multihash) {
	s.mu.Lock()
	delete(s.roots, string(k))
	s.mu.Unlock()
}

// announced records that a record for k was delivered to a server. Keys outside the
// set (a root stopped while its sweep was in flight) are ignored.
func (s *rootSet) announced(k []byte) {
	t := s.now().UnixNano()
	s.mu.Lock()
	if _, ok := s.roots[string(k)]; ok {
		s.roots[string(k)] = t
	}
	s.mu.Unlock()
}

func (s *rootSet) last(k mh.Multihash) (time.Time, bool) {
	s.mu.Lock()
	t, ok := s.roots[string(k)]
	s.mu.Unlock()
	if !ok || t == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, t), true
}

func (s *rootSet) contains(k mh.Multihash) bool {
	s.mu.Lock()
	_, ok := s.roots[string(k)]
	s.mu.Unlock()
	return ok
}

// summary returns the set size, how many roots were announced at least once
// and the oldest last-announcement among those.
func (s *rootSet) summary() (roots, announced int, oldest time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var min int64
	for _, t := range s.roots {
		if t == 0 {
			continue
		}
		announced++
		if min == 0 || t < min {
			min = t
		}
	}
	if min != 0 {
		oldest = time.Unix(0, min)
	}
	return len(s.roots), announced, oldest
}

// recordingSender wraps the DHT's message sender for the sweeping provider:
// every ADD_PROVIDER delivered to a server marks its key in the root set.
type recordingSender struct {
	pb.MessageSender
	roots *rootSet
}

func (r recordingSender) SendMessage(ctx context.Context, p peer.ID, m *pb.Message) error {
	err := r.MessageSender.SendMessage(ctx, p, m)
	if err == nil && m.GetType() == pb.Message_ADD_PROVIDER {
		r.roots.announced(m.GetKey())
	}
	return err
}

// ProvideStatus is a snapshot of the provide system.
type ProvideStatus struct {
	// Roots is the number of roots in the provide set.
	Roots int
	// Announced is how many of them have had a record delivered to at least
	// one DHT server since this router started.
	Announced int
	// OldestAnnouncement is the least recent last announcement among the
	// announced roots; with reproviding healthy it stays within
	// ReprovideInterval of now.
	OldestAnnouncement time.Time
	// QueuedKeys are roots waiting for their first announcement (in the
	// batcher or the provider's queue).
	QueuedKeys int
	// QueuedRegions are keyspace regions waiting for a (re)provide sweep.
	QueuedRegions int
	// Connectivity is the provider's view: "online", "disconnected" or
	// "offline" (nothing is announced unless online), or "closed".
	Connectivity string
	// Regions is the number of keyspace regions in the reprovide schedule.
	Regions int
	// NextReprovide is when the next scheduled region sweep starts.
	NextReprovide time.Time
	// RecordsSent counts provider records delivered to servers since start.
	RecordsSent int64
}

// Provide adds a root to the provide set. It returns at once: the root is
// handed to a batcher that passes everything pending to the sweeping
// provider in one call (which records it in the Datastore and queues its
// announcement, sent in a batched sweep of its keyspace region), and it is
// re-announced every ReprovideInterval until StopProviding. Providing a root
// already in the set is a no-op. Roots are keyed by multihash, as in the DHT.
func (r *Router) Provide(ctx context.Context, c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: provide of an undefined CID", ErrInvalidCID)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dht: provide %s: %w", c, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("dht: provide %s: %w", c, ErrClosed)
	}
	r.roots.add(c.Hash())
	r.pending = append(r.pending, c.Hash())
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return nil
}

// runBatcher hands pending roots to the provider, many per call: one
// StartProviding per root costs about a millisecond (a keystore write and a
// schedule update each), which would make a share of 100 000 roots take
// minutes. On Close it flushes what is left, so nothing accepted is lost.
func (r *Router) runBatcher() {
	defer r.wg.Done()
	for {
		select {
		case <-r.wake:
			r.flushPending()
		case <-r.ctx.Done():
			r.flushPending()
			return
		}
	}
}

func (r *Router) flushPending() {
	r.mu.Lock()
	keys := r.pending
	r.pending = nil
	r.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	// provMu orders this against StopProviding: a root stopped while
	// pending is dropped here, never written to the keystore.
	r.provMu.Lock()
	defer r.provMu.Unlock()
	keep := keys[:0]
	for _, k := range keys {
		if r.roots.contains(k) {
			keep = append(keep, k)
		}
	}
	if err := r.prov.StartProviding(false, keep...); err != nil {
		r.log.Warn("dht: queueing roots for announcement failed", "roots", len(keep), "err", err)
	}
}

// StopProviding removes a root from the provide set: it is no longer
// reprovided, and its records on DHT servers expire within 48h.
func (r *Router) StopProviding(c cid.Cid) {
	if !c.Defined() || r.isClosed() {
		return
	}
	r.provMu.Lock()
	defer r.provMu.Unlock()
	r.roots.remove(c.Hash())
	if err := r.prov.StopProviding(c.Hash()); err != nil {
		r.log.Warn("dht: stop providing failed", "cid", c, "err", err)
	}
}

// IsProviding reports whether c is in the provide set.
func (r *Router) IsProviding(c cid.Cid) bool {
	return c.Defined() && r.roots.contains(c.Hash())
}

// LastProvided returns when a provider record for c was last delivered to a DHT server for
// c, and false if c is not in the provide set or has not been announced since
// this router started.
func (r *Router) LastProvided(c cid.Cid) (time.Time, bool) {
	if !c.Defined() {
		return time.Time{}, false
	}
	return r.roots.last(c.Hash())
}

// ProvideStatus returns a snapshot of the provide system. It scans the root
// set (a few milliseconds per 100 000 roots).
func (r *Router) ProvideStatus() ProvideStatus {
	var st ProvideStatus
	st.Roots, st.Announced, st.OldestAnnouncement = r.roots.summary()
	if r.isClosed() {
		st.Connectivity = "closed"
		return st
	}
	ps, err := r.prov.Stats(r.ctx)
	if err != nil {
		return st
	}
	r.mu.Lock()
	st.QueuedKeys = len(r.pending)
	r.mu.Unlock()
	st.QueuedKeys += int(ps.Queues.PendingKeyProvides)
	st.QueuedRegions = int(ps.Queues.PendingRegionProvides + ps.Queues.PendingRegionReprovides)
	st.Connectivity = ps.Connectivity.Status
	st.Regions = int(ps.Schedule.Regions)
	st.NextReprovide = ps.Schedule.NextReprovideAt
	st.RecordsSent = ps.Operations.Past.RecordsProvided
	return st
}
