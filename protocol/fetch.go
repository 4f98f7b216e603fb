package protocol

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
)

// FetchProgress is a progress event of a running fetch.
type FetchProgress struct {
	Progress
	Elapsed time.Duration
	Rate    float64 // useful bytes per second since the fetch started
	// Searching: no peer has shown it holds any of the DAG yet; the
	// provider search goes on (see FetchOptions).
	Searching bool
	Lookups   int // DHT lookups made so far
	Providers int // distinct providers they returned
}

// FetchResult is the outcome of a completed fetch.
type FetchResult struct {
	Root           cid.Cid
	Blocks         int   // blocks in the DAG
	BlocksLocal    int   // of which already held locally
	Bytes          int64 // useful bytes received from peers
	BytesReceived  int64 // all block bytes received, duplicates included
	DuplicateRatio float64
	Elapsed        time.Duration
	Peers          []PeerProgress // per-peer contribution
}

// Fetch is one running DAG download. Its Scheduler belongs to the client's
// loop goroutine; everything else is safe for concurrent use.
type Fetch struct {
	c         *Client
	root      cid.Cid
	opts      FetchOptions
	search    searchState // loop-owned
	recursive bool
	start     time.Time
	s         *Scheduler      // loop-owned
	ctx       context.Context // ends with the fetch; bounds its provider search
	userCtx   context.Context // the caller's: cancelling it abandons the fetch
	cancel    context.CancelFunc
	stopWatch func() bool

	updates    chan FetchProgress
	lastUpdate time.Time // loop-owned

	done   chan struct{}
	mu     sync.Mutex
	result FetchResult
	err    error
}

// Fetch starts downloading the DAG under root from every connected peer and
// every provider found for it. Blocks already in the store are not
// requested. Cancel ctx to abandon the fetch. The provider search is bounded
// by ClientConfig.SearchTimeout.
func (c *Client) Fetch(ctx context.Context, root cid.Cid) (*Fetch, error) {
	return c.FetchWith(ctx, root, FetchOptions{SearchTimeout: c.cfg.SearchTimeout})
}

// FetchWith is Fetch with options.
func (c *Client) FetchWith(ctx context.Context, root cid.Cid, o FetchOptions) (*Fetch, error) {
	if o.SearchTimeout < 0 {
		return nil, fmt.Errorf("%w: FetchOptions.SearchTimeout %v is negative (0 searches until cancelled)", ErrFetchConfig, o.SearchTimeout)
	}
	return c.startFetch(ctx, root, true, o)
}

func (c *Client) startFetch(ctx context.Context, root cid.Cid, recursive bool, o FetchOptions) (*Fetch, error) {
	return c.startFetchWith(ctx, root, recursive, o, nil)
}

// startFetchWith is startFetch with init, when set, applied to the new
// scheduler before anything is reported to it.
func (c *Client) startFetchWith(ctx context.Context, root cid.Cid, recursive bool, o FetchOptions, init func(*Scheduler)) (*Fetch, error) {
	s, err := NewScheduler(c.cfg.Scheduler, root)
	if err != nil {
		return nil, err
	}
	if init != nil {
		init(s)
	}
	fctx, cancel := context.WithCancel(c.ctx)
	f := &Fetch{
		c: c, root: root, opts: o, recursive: recursive, start: time.Now(), s: s, ctx: fctx, cancel: cancel,
		updates: make(chan FetchProgress, 1), done: make(chan struct{}),
	}
	// Resume: mark what the store already holds before any want goes out.
	now := time.Now()
	c.storeInline(ctx, root)
	if has, err := c.store.Has(ctx, root); err == nil && has {
		if e, ok := c.localBlock(ctx, root); ok {
			if !recursive {
				e.links = nil
			}
			s.MarkLocal(root, e.size, e.links, now)
			for _, l := range c.localSubtree(ctx, e.links, nil) {
				s.MarkLocal(l.c, l.size, l.links, now)
			}
		}
	}
	f.userCtx = ctx
	if !c.post(func() { c.addFetch(f) }) {
		cancel()
		return nil, ErrFetchClosed
	}
	return f, nil
}

// addFetch runs on the loop.
func (c *Client) addFetch(f *Fetch) {
	c.fetches[f] = struct{}{}
	uctx := f.userCtx
	f.stopWatch = context.AfterFunc(uctx, func() { c.post(func() { c.abandon(f, uctx.Err()) }) })
	now := time.Now()
	for p := range c.peers {
		c.addPeerTo(f, p, now)
	}
	c.replayHeard(f, now)
	c.fetchingChanged(f, +1)
	if c.providers == nil || f.s.Done() {
		f.s.SetSearching(false, now)
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.search(f)
	}()
}

// abandon ends a fetch early with err (on the loop).
func (c *Client) abandon(f *Fetch, err error) {
	if _, ok := c.fetches[f]; ok {
		f.s.closeWith(err)
		c.finish(f, time.Now())
	}
}

// finish retires a fetch that is done, failed or abandoned (on the loop).
func (c *Client) finish(f *Fetch, now time.Time) {
	if _, ok := c.fetches[f]; !ok {
		return
	}
	delete(c.fetches, f)
	c.fetchingChanged(f, -1)
	if f.s.HasReady() {
		c.route(f.s.Ready(), now)
	}
	c.takeInterest(f, true)
	pr := f.s.Progress()
	res := FetchResult{
		Root: f.root, Blocks: pr.BlocksDone, BlocksLocal: pr.BlocksLocal,
		Bytes: pr.BytesUseful, BytesReceived: pr.BytesReceived,
		DuplicateRatio: pr.DuplicateRatio(), Elapsed: now.Sub(f.start), Peers: pr.Peers,
	}
	err := f.s.Err()
	if !f.s.Done() && err == nil {
		err = ErrFetchClosed
	}
	f.publish(now)
	f.mu.Lock()
	f.result, f.err = res, err
	f.mu.Unlock()
	if err != nil {
		// Readers waiting for blocks of this fetch will not get them from it.
		for k := range c.waiters {
			if f.s.Known(k) && !c.wantedElsewhere(k) {
				c.wake(k, err)
			}
		}
	}
	close(f.done)
	f.cancel()
	if f.stopWatch != nil {
		f.stopWatch()
	}
}

func (c *Client) wantedElsewhere(k cid.Cid) bool {
	for g := range c.fetches {
		if g.s.Wanted(k) {
			return true
		}
	}
	return false
}

// publish offers the latest progress, replacing an unread older one.
func (f *Fetch) publish(now time.Time) {
	f.lastUpdate = now
	ev := FetchProgress{Progress: f.s.Progress(), Elapsed: now.Sub(f.start),
		Searching: !f.s.Sourced() && !f.s.finished(), Lookups: f.search.lookups, Providers: f.search.found}
	if secs := ev.Elapsed.Seconds(); secs > 0 {
		ev.Rate = float64(ev.BytesUseful) / secs
	}
	select {
	case <-f.updates:
	default:
	}
	f.updates <- ev
}

// Root is the CID being fetched.
func (f *Fetch) Root() cid.Cid { return f.root }

// Updates delivers progress snapshots every ProgressInterval and a last one
// when the fetch ends; a slow reader sees only the latest.
func (f *Fetch) Updates() <-chan FetchProgress { return f.updates }

// Done is closed when the fetch has ended.
func (f *Fetch) Done() <-chan struct{} { return f.done }

// Wait blocks until the fetch ends and returns its result; the error is a
// *FetchError when some block could not be found, the fetch context's
// error when it was cancelled, or ErrFetchClosed when the client closed.
func (f *Fetch) Wait() (FetchResult, error) {
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.result, f.err
}

// Cancel abandons the fetch.
func (f *Fetch) Cancel() {
	f.c.post(func() { f.c.abandon(f, ErrFetchClosed) })
}

// Get returns block k: from the store if it is there, else fetched with
// priority — ahead of other blocks of a running fetch that contains it, or
// alone. It is the "network getter" a streaming file reader uses.
func (c *Client) Get(ctx context.Context, k cid.Cid) ([]byte, error) {
	if data, ok, err := c.getLocal(ctx, k); ok {
		return data, err
	}
	ch := make(chan error, 1)
	if !c.post(func() { c.getBlock(ctx, k, ch) }) {
		return nil, ErrFetchClosed
	}
	return c.awaitBlock(ctx, k, ch)
}

// getLocal reads k from the store; ok false means k is to be fetched.
func (c *Client) getLocal(ctx context.Context, k cid.Cid) (data []byte, ok bool, err error) {
	c.storeInline(ctx, k)
	if has, err := c.store.Has(ctx, k); err == nil && has {
		data, err := c.store.Get(ctx, k)
		if err == nil || ctx.Err() != nil {
			return data, true, err
		}
		// A store that found k rotten (or lost it meanwhile) drops it:
		// then it is missing like any other block, and fetched.
		if has, herr := c.store.Has(ctx, k); herr != nil || has {
			return nil, true, err
		}
	}
	return nil, false, nil
}

// awaitBlock waits for the loop's word on k (ch) and reads it back.
func (c *Client) awaitBlock(ctx context.Context, k cid.Cid, ch chan error) ([]byte, error) {
	select {
	case err := <-ch:
		if err != nil {
			// The fetch that was to bring k failed, but another may have
			// stored it meanwhile.
			if has, herr := c.store.Has(ctx, k); herr == nil && has {
				return c.store.Get(ctx, k)
			}
			return nil, err
		}
		return c.store.Get(ctx, k)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// getBlock runs on the loop: prioritise k where it is already wanted, or
// start a single-block fetch for it.
func (c *Client) getBlock(ctx context.Context, k cid.Cid, ch chan error) {
	if c.awaitWanted(ctx, k, ch, nil) {
		return
	}
	now := time.Now()
	s, err := NewScheduler(c.cfg.Scheduler, k)
	if err != nil {
		c.wake(k, err)
		return
	}
	fctx, cancel := context.WithCancel(c.ctx)
	f := &Fetch{c: c, root: k, opts: FetchOptions{SearchTimeout: c.cfg.SearchTimeout}, start: now, s: s, ctx: fctx, userCtx: ctx, cancel: cancel,
		updates: make(chan FetchProgress, 1), done: make(chan struct{})}
	s.Prioritize(k, now)
	c.addFetch(f)
}

// awaitWanted runs on the loop: ch hears at once if the store holds k;
// else it waits for k (c.waiters), and true means a running fetch other
// than except wants k already and now puts it first. False leaves the
// caller to have k fetched.
func (c *Client) awaitWanted(ctx context.Context, k cid.Cid, ch chan error, except *Fetch) bool {
	if has, err := c.store.Has(ctx, k); err == nil && has {
		ch <- nil
		return true
	}
	c.waiters[k] = append(c.waiters[k], ch)
	now := time.Now()
	for f := range c.fetches {
		if f != except && f.s.Wanted(k) {
			f.s.Prioritize(k, now)
			return true
		}
	}
	return false
}
