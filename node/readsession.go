package node

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/protocol"
)

// Read sessions. A read that is not a whole-DAG fetch — a gateway Range
// request, ?format=raw or ?format=car, a path walk, an API cat of a file
// held by peers — reads one block after another through the exchange
// client's Get, and each block the store lacks becomes a single-block
// fetch of the client with a provider search of its own. A session per
// root makes them one read: the root's providers are looked up in the
// DHT once, and the search of every block fetched for the session is
// answered from that lookup (the client asks its Providers, which is the
// node's readSessions); the content reader's read-ahead brings the next
// blocks in file order (at most readAheadBlocks beyond a Range); and a
// block a session reader waits for is handed to it as it is stored, not
// read back from the disk. Every block the store lacks joins the one
// fetch of the session's protocol.Session (one provider search, one set
// of peers), not a single-block fetch of its own.
//
// A session is counted by its readers (every Resolve, Kind, List, Block
// call for its duration, every open File until Close) and lingers
// readSessionLinger after the last one, so the next Range request of a
// player finds its providers. What a session holds is its root's
// provider list; the blocks themselves are in the store.
//
// Ownership of handed-over bytes: deliver copies the block (the client's
// buffer is reused once its Put returns); the copy is shared by every
// reader waiting for that block and by nobody else, is never written,
// and is dropped when the last of those readers has it.

// readSessionLinger is how long a session outlives its last reader.
const readSessionLinger = 10 * time.Second

// readLookupTimeout bounds one DHT lookup of a session's root;
// readRelookup is how long after a lookup that found nobody the next
// search of the session looks again (the root may have been announced
// since) rather than answer with the empty list.
const (
	readLookupTimeout = time.Minute
	readRelookup      = 5 * time.Second
)

// ReadStats count the node's reads of content since start.
type ReadStats struct {
	Sessions     uint64 // read sessions opened, one per root read while none was open
	OpenSessions int    // sessions open now (gauge)
	// ProviderLookups are the DHT provider lookups the node made, for
	// whole-DAG fetches, single blocks and sessions alike.
	ProviderLookups uint64
	// ClientFetches are the fetches the exchange client started (whole
	// DAGs and single blocks), counted per root as it reports them.
	ClientFetches uint64
	// BlocksHanded are blocks handed to a waiting reader as they were
	// stored, not read back from the store.
	BlocksHanded uint64
}

// readSessions is the node's set of read sessions, and the Providers of
// its exchange client.
type readSessions struct {
	ctx    context.Context // the node's: ends lookups and waits at Close
	lookup func(ctx context.Context, c cid.Cid) <-chan peer.AddrInfo
	get    func(ctx context.Context, c cid.Cid) ([]byte, error)
	client *protocol.Client // set once by newClient, before any read

	mu      sync.Mutex
	closed  bool
	byRoot  map[cid.Cid]*readSession
	byBlock map[string]*blockMark // by multihash: blocks being read for a session
	wg      sync.WaitGroup
	nslots  atomic.Int64 // marks with a hand-over slot: deliver does nothing at 0

	sessions, lookups, fetches, handed atomic.Uint64
}

// blockMark is a block read for session s by n readers now; slots of
// them wait for its bytes to be handed over (data, once ready).
type blockMark struct {
	s     *readSession
	n     int
	slots int
	ready bool
	data  []byte
}

// readSession is the reading of one root.
type readSession struct {
	rs     *readSessions
	root   cid.Cid
	refs   int         // guarded by rs.mu
	linger *time.Timer // guarded by rs.mu: set while refs is 0
	ended  bool        // guarded by rs.mu: out of byRoot, its fetch closed

	pmu   sync.Mutex
	fetch *protocol.Session // the client's session of root, opened at the first block read

	mu      sync.Mutex
	found   []peer.AddrInfo // the providers of root, as the lookup streamed them
	looking bool
	looked  time.Time     // when the last lookup ended; zero before
	changed chan struct{} // closed and replaced when found or looking changes
}

func newReadSessions(ctx context.Context, lookup func(context.Context, cid.Cid) <-chan peer.AddrInfo,
	get func(context.Context, cid.Cid) ([]byte, error)) *readSessions {
	return &readSessions{ctx: ctx, lookup: lookup, get: get,
		byRoot: map[cid.Cid]*readSession{}, byBlock: map[string]*blockMark{}}
}

// readRootKey keys the root a request reads under (WithReadRoot).
type readRootKey struct{}

// WithReadRoot returns ctx for reads under root: Resolve, Kind, List,
// Block and Open called with it share root's read session whatever CID
// they are given, so the gateway's path walk, the kind check and the
// file below are one read with one provider lookup. Without it, each
// call reads under the CID it is given.
func WithReadRoot(ctx context.Context, root cid.Cid) context.Context {
	return context.WithValue(ctx, readRootKey{}, root)
}

// readRoot is the root a read of c with ctx is under.
func readRoot(ctx context.Context, c cid.Cid) cid.Cid {
	if r, ok := ctx.Value(readRootKey{}).(cid.Cid); ok && r.Defined() {
		return r
	}
	return c
}

// acquire returns the session of root, opening it if none is, and the
// function that ends this reader's use of it (safe to call twice).
func (rs *readSessions) acquire(root cid.Cid) (*readSession, func()) {
	rs.mu.Lock()
	s := rs.byRoot[root]
	if s == nil {
		s = &readSession{rs: rs, root: root, changed: make(chan struct{})}
		if !rs.closed {
			rs.byRoot[root] = s
			rs.sessions.Add(1)
		}
	}
	s.refs++
	if s.linger != nil {
		s.linger.Stop()
		s.linger = nil
	}
	rs.mu.Unlock()
	var once sync.Once
	return s, func() { once.Do(func() { rs.release(s) }) }
}

func (rs *readSessions) release(s *readSession) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	s.refs--
	if s.refs > 0 || rs.closed || rs.byRoot[s.root] != s {
		return
	}
	s.linger = time.AfterFunc(readSessionLinger, func() {
		rs.mu.Lock()
		end := s.refs == 0 && rs.byRoot[s.root] == s
		if end {
			delete(rs.byRoot, s.root)
			s.ended = true
		}
		rs.mu.Unlock()
		if end {
			s.closeFetch()
		}
	})
}

// close ends every session; lookups end with the node's context, which
// the caller has cancelled.
func (rs *readSessions) close() {
	rs.mu.Lock()
	rs.closed = true
	for r, s := range rs.byRoot {
		if s.linger != nil {
			s.linger.Stop()
		}
		delete(rs.byRoot, r)
		s.ended = true
		defer s.closeFetch()
	}
	rs.mu.Unlock()
	rs.wg.Wait()
}

// goTracked runs fn in a goroutine Close waits for, unless closed.
func (rs *readSessions) goTracked(fn func()) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed {
		return false
	}
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		fn()
	}()
	return true
}

// stats is the counters' snapshot.
func (rs *readSessions) stats() ReadStats {
	rs.mu.Lock()
	open := len(rs.byRoot)
	rs.mu.Unlock()
	return ReadStats{Sessions: rs.sessions.Load(), OpenSessions: open, ProviderLookups: rs.lookups.Load(),
		ClientFetches: rs.fetches.Load(), BlocksHanded: rs.handed.Load()}
}

// FindProviders is the exchange client's provider search (its
// Providers): a block read for a session, or a session's root, gets the
// session's providers, looked up once; anything else asks the DHT.
func (rs *readSessions) FindProviders(ctx context.Context, c cid.Cid) <-chan peer.AddrInfo {
	rs.mu.Lock()
	s := rs.byRoot[c]
	if m := rs.byBlock[string(c.Hash())]; s == nil && m != nil {
		s = m.s
	}
	rs.mu.Unlock()
	if s != nil {
		return s.providers(ctx)
	}
	return rs.dhtLookup(ctx, c)
}

func (rs *readSessions) dhtLookup(ctx context.Context, c cid.Cid) <-chan peer.AddrInfo {
	rs.lookups.Add(1)
	return rs.lookup(ctx, c)
}

// mark records that a reader of s reads block c now (with slot, it waits
// for c's bytes to be handed over); the function returned undoes it.
func (rs *readSessions) mark(s *readSession, c cid.Cid, slot bool) func() {
	key := string(c.Hash())
	rs.mu.Lock()
	m := rs.byBlock[key]
	if m == nil {
		m = &blockMark{s: s}
		rs.byBlock[key] = m
	}
	m.n++
	if slot {
		m.slots++
		rs.nslots.Add(1)
	}
	rs.mu.Unlock()
	return func() {
		rs.mu.Lock()
		m.n--
		if slot {
			m.slots--
			rs.nslots.Add(-1)
			if m.slots == 0 {
				m.ready, m.data = false, nil
			}
		}
		if m.n == 0 && rs.byBlock[key] == m {
			delete(rs.byBlock, key)
		}
		rs.mu.Unlock()
	}
}

// deliver hands a block just stored to the readers waiting for it: they
// take it in take, without reading it back. data is the caller's and is
// copied.
func (rs *readSessions) deliver(c cid.Cid, data []byte) {
	if rs.nslots.Load() == 0 {
		return
	}
	key := string(c.Hash())
	rs.mu.Lock()
	m := rs.byBlock[key]
	want := m != nil && m.slots > 0 && !m.ready
	rs.mu.Unlock()
	if !want {
		return
	}
	b := bytes.Clone(data)
	rs.mu.Lock()
	if m := rs.byBlock[key]; m != nil && m.slots > 0 && !m.ready {
		m.ready, m.data = true, b
	}
	rs.mu.Unlock()
}

// take returns the handed-over bytes of c, if a waiting reader's are
// ready.
func (rs *readSessions) take(c cid.Cid) ([]byte, bool) {
	if rs.nslots.Load() == 0 {
		return nil, false
	}
	rs.mu.Lock()
	m := rs.byBlock[string(c.Hash())]
	ok := m != nil && m.ready
	var data []byte
	if ok {
		data = m.data
	}
	rs.mu.Unlock()
	if ok {
		rs.handed.Add(1)
	}
	return data, ok
}

// fetching is the exchange client's OnFetching, counted.
func (rs *readSessions) fetching(active bool) {
	if active {
		rs.fetches.Add(1)
	}
}

// getter reads the blocks of s: each Get marks its block as the
// session's (its provider search is the session's) and waits for its
// bytes to be handed over.
func (s *readSession) getter() content.BlockGetter { return sessionGetter{s} }

type sessionGetter struct{ s *readSession }

func (g sessionGetter) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	rs := g.s.rs
	done := rs.mark(g.s, c, true)
	defer done()
	if f := g.s.session(); f != nil {
		return f.Get(ctx, c)
	}
	return rs.get(ctx, c)
}

// session returns the client's read session of the root, opened on first
// use; nil when s is no longer the root's session (a reader of a session
// that ended, or opened after Close): its blocks are then fetched alone.
func (s *readSession) session() *protocol.Session {
	rs := s.rs
	rs.mu.Lock()
	live := !s.ended && rs.byRoot[s.root] == s && rs.client != nil
	rs.mu.Unlock()
	if !live {
		return nil
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if s.fetch == nil {
		f, err := rs.client.Session(rs.ctx, s.root)
		if err != nil {
			return nil
		}
		s.fetch = f
	}
	// Ended meanwhile: closeFetch ran before s.fetch was set, so close it
	// here; the read goes on without it.
	rs.mu.Lock()
	ended := s.ended
	rs.mu.Unlock()
	if ended {
		_ = s.fetch.Close()
		s.fetch = nil
		return nil
	}
	return s.fetch
}

// closeFetch closes the client session of an ended read session.
func (s *readSession) closeFetch() {
	s.pmu.Lock()
	f := s.fetch
	s.fetch = nil
	s.pmu.Unlock()
	if f != nil {
		_ = f.Close()
	}
}

// providers streams the providers of the session's root: those the
// lookup found, then those it finds until it ends. A lookup starts when
// none has run, or when the last one found nobody readRelookup ago or
// more; otherwise the answer is the one lookup's.
func (s *readSession) providers(ctx context.Context) <-chan peer.AddrInfo {
	rs := s.rs
	out := make(chan peer.AddrInfo)
	s.mu.Lock()
	if !s.looking && (s.looked.IsZero() || len(s.found) == 0 && time.Since(s.looked) >= readRelookup) {
		s.looking = true
		if !rs.goTracked(s.lookup) {
			s.looking = false
		}
	}
	s.mu.Unlock()
	if !rs.goTracked(func() { s.replay(ctx, out) }) {
		close(out)
	}
	return out
}

// lookup asks the DHT for the providers of the root once.
func (s *readSession) lookup() {
	ctx, cancel := context.WithTimeout(s.rs.ctx, readLookupTimeout)
	defer cancel()
	for ai := range s.rs.dhtLookup(ctx, s.root) {
		s.mu.Lock()
		if !slices.ContainsFunc(s.found, func(f peer.AddrInfo) bool { return f.ID == ai.ID }) {
			s.found = append(s.found, ai)
			s.changedLocked()
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.looking, s.looked = false, time.Now()
	s.changedLocked()
	s.mu.Unlock()
}

func (s *readSession) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// replay sends what the lookup found and finds to out, and closes it
// when the lookup has ended or ctx is done.
func (s *readSession) replay(ctx context.Context, out chan<- peer.AddrInfo) {
	defer close(out)
	for i := 0; ; {
		s.mu.Lock()
		if i < len(s.found) {
			ai := s.found[i]
			i++
			s.mu.Unlock()
			select {
			case out <- ai:
			case <-ctx.Done():
				return
			case <-s.rs.ctx.Done():
				return
			}
			continue
		}
		looking, ch := s.looking, s.changed
		s.mu.Unlock()
		if !looking {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-s.rs.ctx.Done():
			return
		}
	}
}
