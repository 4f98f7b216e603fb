package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/protocol"
)

func (n *Node) newClient() (*protocol.Client, error) {
	ccfg := protocol.DefaultClientConfig()
	ccfg.Links = content.Links
	ccfg.Logger = n.log.With("part", "client")
	ccfg.SearchTimeout = n.cfg.Transfer.SearchTimeout.Duration
	c, err := protocol.NewClient(ccfg, protocol.HostNetwork(n.net, n.host), clientStore{n}, n.router)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// clientStore is the store as the fetch client sees it: every verified
// block it stores is also offered to peers waiting for it.
type clientStore struct{ n *Node }

func (s clientStore) Has(ctx context.Context, c cid.Cid) (bool, error) { return s.n.store.Has(ctx, c) }
func (s clientStore) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	return s.n.store.Get(ctx, c)
}
func (s clientStore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	return s.n.store.GetSize(ctx, c)
}
func (s clientStore) Put(ctx context.Context, c cid.Cid, data []byte) error {
	return notifyingPutter(s).Put(ctx, c, data)
}

// PutVerified stores a block the client has already hashed to c.
func (s clientStore) PutVerified(ctx context.Context, c cid.Cid, data []byte) error {
	return notifyingPutter(s).put(ctx, c, data, s.n.store.PutVerified)
}

// getter reads blocks from the store, fetching missing ones from the swarm.
func (n *Node) getter() content.BlockGetter { return n.client }

// Transfer is one fetch of a DAG into the store, with progress.
type Transfer struct {
	n      *Node
	id     string
	root   cid.Cid
	source string
	f      *protocol.Fetch

	mu        sync.Mutex
	info      TransferInfo
	stalled   time.Duration // set when ended for making no progress
	cancelled bool          // set by Cancel
	pin       bool          // pin the root once it is complete

	done chan struct{}
	err  error
}

// Info returns a snapshot of the transfer.
func (t *Transfer) Info() TransferInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	info := t.info
	info.Peers = append([]PeerContribution(nil), t.info.Peers...)
	return info
}

// Done is closed when the transfer has finished, well or not.
func (t *Transfer) Done() <-chan struct{} { return t.done }

// Err is the transfer's failure, once Done is closed.
func (t *Transfer) Err() error {
	<-t.done
	return t.err
}

// transferRegistry keeps running transfers and the most recent finished
// ones for the API and dashboard.
type transferRegistry struct {
	mu      sync.Mutex
	seq     atomic.Uint64
	running map[string]*Transfer // by root CID
	all     []*Transfer          // newest last, capped
}

const keepTransfers = 50

func newTransferRegistry() *transferRegistry {
	return &transferRegistry{running: map[string]*Transfer{}}
}

func (r *transferRegistry) cancelAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.running {
		t.f.Cancel()
	}
}

// ErrTransferCancelled is the error of a transfer ended by Cancel.
var ErrTransferCancelled = errors.New("node: transfer cancelled")

// FetchOptions tune a fetch.
type FetchOptions struct {
	// Source says who asked ("api", "gateway", "pin").
	Source string
	// Pin pins the root once the whole DAG is stored: content a user asked
	// for stays; without it, fetched content is evictable cache.
	Pin bool
	// SearchTimeout bounds the search for a peer that has the content: nil
	// takes transfer.search_timeout, 0 searches until cancelled.
	SearchTimeout *time.Duration
	// Name is what the content is called (the last segment of the path it
	// was fetched by); recorded with the root once fetched. Empty keeps
	// the name this node knows, if any.
	Name string
}

// Fetch starts fetching the whole DAG under c into the store, or joins the
// fetch of c already running. source says who asked ("api", "gateway").
func (n *Node) Fetch(ctx context.Context, c cid.Cid, source string) (*Transfer, error) {
	return n.FetchWith(ctx, c, FetchOptions{Source: source})
}

// FetchWith is Fetch with options. Joining a running fetch adds o.Pin to it;
// its search timeout stays the one it started with.
func (n *Node) FetchWith(ctx context.Context, c cid.Cid, o FetchOptions) (*Transfer, error) {
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if o.Name != "" {
		if err := CheckName(o.Name); err != nil {
			return nil, err
		}
	} else {
		o.Name = n.RootName(c)
	}
	popts := protocol.FetchOptions{SearchTimeout: n.cfg.Transfer.SearchTimeout.Duration}
	if o.SearchTimeout != nil {
		popts.SearchTimeout = *o.SearchTimeout
	}
	r := n.transfers
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.running[c.String()]; ok {
		if o.Pin {
			t.mu.Lock()
			t.pin, t.info.Pinned = true, true
			t.mu.Unlock()
		}
		return t, nil
	}
	// The fetch belongs to the node, not to the request that started it:
	// an API client that starts a fetch and disconnects leaves it running.
	f, err := n.client.FetchWith(n.ctx, c, popts)
	if err != nil {
		return nil, fmt.Errorf("starting fetch of %s: %w", c, err)
	}
	t := &Transfer{n: n, id: fmt.Sprintf("t%d", r.seq.Add(1)), root: c, source: o.Source, f: f, pin: o.Pin, done: make(chan struct{})}
	t.info = TransferInfo{ID: t.id, CID: c.String(), Name: o.Name, Source: o.Source, State: TransferRunning, Phase: PhaseSearching,
		Pinned: o.Pin, Started: time.Now()}
	r.running[c.String()] = t
	n.fetchStats.started()
	r.all = append(r.all, t)
	if len(r.all) > keepTransfers {
		r.all = r.all[len(r.all)-keepTransfers:]
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t.run()
	}()
	return t, nil
}

// Cancel ends a running transfer with ErrTransferCancelled; a finished one
// is left as it is.
func (t *Transfer) Cancel() {
	t.mu.Lock()
	t.cancelled = true
	t.mu.Unlock()
	t.f.Cancel()
}

// CancelTransfer cancels the transfer with the given ID and returns its
// state; an unknown ID wraps ErrNotFound.
func (n *Node) CancelTransfer(id string) (TransferInfo, error) {
	t, ok := n.Transfer(id)
	if !ok {
		return TransferInfo{}, fmt.Errorf("no transfer %q (list them with GET /api/v1/transfers): %w", id, ErrNotFound)
	}
	t.Cancel()
	<-t.Done()
	return t.Info(), nil
}

// Transfers lists running and recent transfers, newest first.
func (n *Node) Transfers() []TransferInfo {
	n.transfers.mu.Lock()
	all := append([]*Transfer(nil), n.transfers.all...)
	n.transfers.mu.Unlock()
	out := make([]TransferInfo, 0, len(all))
	for i := len(all) - 1; i >= 0; i-- {
		out = append(out, all[i].Info())
	}
	return out
}

// Transfer returns a transfer by ID.
func (n *Node) Transfer(id string) (*Transfer, bool) {
	n.transfers.mu.Lock()
	defer n.transfers.mu.Unlock()
	for _, t := range n.transfers.all {
		if t.id == id {
			return t, true
		}
	}
	return nil, false
}

// run follows the fetch's progress until it ends, and ends it when it
// has received nothing new for the configured no-progress timeout.
func (t *Transfer) run() {
	n := t.n
	announced := false
	ctx := n.ctx
	updates := t.f.Updates()
	limit := n.cfg.Transfer.NoProgressTimeout.Duration
	// The no-progress clock starts once some peer has the content: until
	// then the provider search, bounded by its own timeout, is running.
	var stallC <-chan time.Time
	var stall *time.Timer
	defer func() {
		if stall != nil {
			stall.Stop()
		}
	}()
	var lastDone int
	for {
		select {
		case p, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
			t.update(p)
			if limit > 0 && !p.Searching && stall == nil {
				stall = time.NewTimer(limit)
				stallC = stall.C
				lastDone = p.BlocksDone
			}
			if p.BlocksDone != lastDone && stall != nil {
				lastDone = p.BlocksDone
				stall.Reset(limit)
			}
			if !announced && n.cfg.Transfer.AnnounceWhileFetching && p.BlocksDone > p.BlocksLocal {
				announced = true
				// Swarming: once it holds verified blocks, this node can
				// serve them, so others should find it.
				if err := n.router.Provide(ctx, t.root); err != nil {
					n.log.Debug("announcing a root while fetching", "cid", t.root, "err", err)
				}
			}
		case <-stallC:
			stallC = nil
			t.mu.Lock()
			t.stalled = limit
			t.mu.Unlock()
			t.f.Cancel()
		case <-t.f.Done():
			res, err := t.f.Wait()
			t.finish(res, err)
			return
		}
	}
}

func (t *Transfer) update(fp protocol.FetchProgress) {
	p, rate := fp.Progress, fp.Rate
	size := t.info.Size
	if size == 0 && p.BlocksDone > 0 {
		size = t.n.dagSize(t.n.ctx, t.root)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.info.Phase = PhaseFetching
	if fp.Searching {
		t.info.Phase = PhaseSearching
	}
	t.info.Providers, t.info.Lookups = fp.Providers, fp.Lookups
	t.info.ElapsedSeconds = fp.Elapsed.Seconds()
	t.info.Size = size
	t.info.BytesDone = uint64(p.BytesUseful + p.BytesLocal)
	t.info.BytesReceived = uint64(p.BytesReceived)
	t.info.Blocks = p.BlocksDone
	t.info.RateBps = rate
	t.info.DuplicateRatio = p.DuplicateRatio()
	if rate > 0 && size > t.info.BytesDone {
		t.info.ETASeconds = float64(size-t.info.BytesDone) / rate
	}
	t.info.Peers = contributions(p.Peers)
}

func contributions(pp []protocol.PeerProgress) []PeerContribution {
	out := make([]PeerContribution, 0, len(pp))
	for _, p := range pp {
		if p.Bytes == 0 && p.Blocks == 0 {
			continue
		}
		out = append(out, PeerContribution{Peer: p.Peer.String(), Bytes: uint64(p.Bytes), Blocks: p.Blocks})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bytes > out[j].Bytes })
	return out
}

func (t *Transfer) finish(res protocol.FetchResult, err error) {
	n := t.n
	t.mu.Lock()
	stalled, cancelled, pin := t.stalled, t.cancelled, t.pin
	t.mu.Unlock()
	switch {
	case err != nil && cancelled:
		err = fmt.Errorf("%w: fetch of %s", ErrTransferCancelled, t.root)
	case err != nil && stalled > 0:
		err = fmt.Errorf("fetch of %s received nothing for %v from the %s (%s): they accept requests but do not answer; try other peers (shoal connect) or raise transfer.no_progress_timeout",
			t.root, stalled, plural(len(res.Peers), "peer"), peerList(res.Peers))
	default:
		err = withNoProviderHint(err)
	}
	size := n.dagSize(n.ctx, t.root)
	if err == nil && pin {
		if perr := n.store.Pin(n.ctx, t.root); perr != nil {
			err = fmt.Errorf("fetched %s, but pinning it failed: %w", t.root, perr)
		}
	}
	if err == nil {
		if rerr := n.roots.addNamed(t.root, size, t.Info().Name); rerr != nil {
			err = rerr
		} else if perr := n.router.Provide(n.ctx, t.root); perr != nil {
			n.log.Debug("announcing a fetched root", "cid", t.root, "err", perr)
		}
	}
	t.mu.Lock()
	t.info.Finished = time.Now()
	t.info.Size = size
	t.info.BytesReceived = uint64(res.BytesReceived)
	t.info.Blocks = res.Blocks
	t.info.DuplicateRatio = res.DuplicateRatio
	t.info.Peers = contributions(res.Peers)
	t.info.ETASeconds = 0
	t.info.Phase = ""
	t.info.ElapsedSeconds = t.info.Finished.Sub(t.info.Started).Seconds()
	if err != nil {
		n.log.Warn("fetch failed", "cid", t.root, "transfer", t.id, "source", t.source, "err", err)
		t.info.State = TransferFailed
		t.info.Error = err.Error()
	} else {
		t.info.State = TransferDone
		t.info.BytesDone = size
		if el := res.Elapsed.Seconds(); el > 0 {
			t.info.RateBps = float64(res.Bytes) / el
		}
	}
	t.err = classify(err)
	t.mu.Unlock()

	r := n.transfers
	r.mu.Lock()
	if r.running[t.root.String()] == t {
		delete(r.running, t.root.String())
	}
	r.mu.Unlock()
	n.fetchStats.finished(t.Info())
	close(t.done)
}

// File is an open file of the swarm: reads fetch what they need.
type File interface {
	io.ReadSeekCloser
	Size() uint64
}

// openFile streams a file. The first read from the start of the file
// starts a fetch of the whole DAG, so blocks arrive in parallel ahead of
// the reader; a read that starts elsewhere (a Range request) fetches only
// the blocks it touches.
type openFile struct {
	*content.FileReader
	n      *Node
	root   cid.Cid
	pos    int64
	once   sync.Once
	closed atomic.Bool
}

// Open opens the file at c for streaming reads.
func (n *Node) Open(ctx context.Context, c cid.Cid) (File, error) {
	r, err := content.NewFileReader(ctx, n.getter(), c)
	if err != nil {
		return nil, contentErr(c, err)
	}
	return &openFile{FileReader: r, n: n, root: c}, nil
}

func (f *openFile) Read(p []byte) (int, error) {
	if f.pos == 0 {
		f.once.Do(func() {
			if has, _ := f.n.store.Has(f.n.ctx, f.root); has {
				if st, err := f.n.store.PinStatus(f.n.ctx, f.root); err == nil && st.Complete {
					return
				}
			}
			_, _ = f.n.Fetch(f.n.ctx, f.root, "gateway")
		})
	}
	k, err := f.FileReader.Read(p)
	f.pos += int64(k)
	return k, err
}

func (f *openFile) Seek(off int64, whence int) (int64, error) {
	pos, err := f.FileReader.Seek(off, whence)
	if err == nil {
		f.pos = pos
	}
	return pos, err
}

func (f *openFile) Close() error {
	f.closed.Store(true)
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func peerList(pp []protocol.PeerProgress) string {
	if len(pp) == 0 {
		return "none found"
	}
	ids := make([]string, 0, len(pp))
	for _, p := range pp {
		ids = append(ids, p.Peer.String())
	}
	return strings.Join(ids, ", ")
}
