package node

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/protocol"
	"github.com/shoalnet/shoal/transfer"
)

func (n *Node) newClient() (*protocol.Client, error) {
	ccfg := protocol.DefaultClientConfig()
	ccfg.Links = content.Links
	ccfg.Logger = n.log.With("part", "client")
	ccfg.SearchTimeout = n.cfg.Transfer.SearchTimeout.Duration
	ccfg.OnFetching = func(root cid.Cid, active bool) {
		n.reads.fetching(active)
		n.swarmFetching(root, active)
	}
	ccfg.OnVerified = n.swarmVerified
	ccfg.OnInterest = n.swarmWants
	c, err := protocol.NewClient(ccfg, protocol.HostNetwork(n.net, n.host), clientStore{n}, n.reads)
	if err != nil {
		return nil, err
	}
	n.reads.client = c
	return c, nil
}

// clientStore is the store as the fetch client sees it: every verified
// block it stores is also offered to peers waiting for it, and handed to
// the session readers waiting for it (readSessions.deliver), whose Get
// then takes those bytes instead of reading them back.
type clientStore struct{ n *Node }

func (s clientStore) Has(ctx context.Context, c cid.Cid) (bool, error) { return s.n.store.Has(ctx, c) }
func (s clientStore) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if data, ok := s.n.reads.take(c); ok {
		return data, nil
	}
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
	return notifyingPutter(s).put(ctx, c, data, true)
}

// getter reads blocks from the store, fetching missing ones from the swarm.
func (n *Node) getter() content.BlockGetter { return n.client }

// transferRegistry runs the node's fetches: joining fetches of one root,
// the no-progress timeout and announcing while fetching (package transfer).
type transferRegistry = transfer.Registry

func (n *Node) newTransfers() *transferRegistry {
	return transfer.New(transfer.Config{
		SearchTimeout:         n.cfg.Transfer.SearchTimeout.Duration,
		NoProgressTimeout:     n.cfg.Transfer.NoProgressTimeout.Duration,
		AnnounceWhileFetching: n.cfg.Transfer.AnnounceWhileFetching,
		Size:                  n.dagSize,
		Complete:              n.completeFetch,
		Started:               func(transfer.Status) { n.fetchStats.started() },
		Ended:                 func(s transfer.Status) { n.fetchStats.finished(transferInfo(s)) },
		Logger:                n.log.With("part", "transfers"),
	}, n.client, n.router)
}

// completeFetch is what an ended fetch means for the node: a stored DAG
// is pinned when asked for, catalogued under its name and announced.
func (n *Node) completeFetch(ctx context.Context, s transfer.Status, err error) error {
	err = withNoProviderHint(err)
	if err == nil && s.Pin {
		n.files.flush(s.Root)
		if perr := n.store.Pin(ctx, s.Root); perr != nil {
			err = fmt.Errorf("fetched, but pinning failed: %w", perr) // the store's error names the root
		}
	}
	if err == nil {
		if rerr := n.roots.addNamed(s.Root, s.Size, s.Name); rerr != nil {
			err = rerr
		} else if perr := n.router.Provide(ctx, s.Root); perr != nil {
			n.log.Debug("announcing a fetched root", "cid", s.Root, "err", perr)
		}
	}
	return classify(err)
}

// Transfer is one fetch of a DAG into the store, with progress.
type Transfer struct{ t *transfer.Transfer }

// Info returns a snapshot of the transfer.
func (t *Transfer) Info() TransferInfo { return transferInfo(t.t.Status()) }

// Done is closed when the transfer has finished, well or not.
func (t *Transfer) Done() <-chan struct{} { return t.t.Done() }

// Err is the transfer's failure, once Done is closed.
func (t *Transfer) Err() error { return t.t.Err() }

// Cancel ends a running transfer with ErrTransferCancelled; a finished one
// is left as it is.
func (t *Transfer) Cancel() { t.t.Cancel() }

// ErrTransferCancelled is the error of a transfer ended by Cancel.
var ErrTransferCancelled = transfer.ErrCancelled

// ErrNoProgress is the error of a transfer whose peers sent nothing for
// transfer.no_progress_timeout.
var ErrNoProgress = transfer.ErrNoProgress

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
	t, err := n.transfers.Start(c, transfer.Options{Source: o.Source, Pin: o.Pin, SearchTimeout: o.SearchTimeout, Name: o.Name})
	if err != nil {
		return nil, err
	}
	return &Transfer{t}, nil
}

// CancelTransfer cancels the transfer with the given ID and returns its
// state; an unknown ID wraps ErrNotFound.
func (n *Node) CancelTransfer(id string) (TransferInfo, error) {
	t, err := n.transfer(id)
	if err != nil {
		return TransferInfo{}, err
	}
	t.Cancel()
	<-t.Done()
	return t.Info(), nil
}

// Transfers lists running and recent transfers, newest first.
func (n *Node) Transfers() []TransferInfo {
	all := n.transfers.List()
	out := make([]TransferInfo, 0, len(all))
	for _, t := range all {
		out = append(out, transferInfo(t.Status()))
	}
	return out
}

// Transfer returns the state of the transfer with the given ID; an
// unknown ID wraps ErrNotFound.
func (n *Node) Transfer(id string) (TransferInfo, error) {
	t, err := n.transfer(id)
	if err != nil {
		return TransferInfo{}, err
	}
	return t.Info(), nil
}

// transfer finds a running or recent transfer by ID.
func (n *Node) transfer(id string) (*Transfer, error) {
	t, ok := n.transfers.Get(id)
	if !ok {
		return nil, fmt.Errorf("no transfer %q (list them with GET /api/v1/transfers): %w", id, ErrNotFound)
	}
	return &Transfer{t}, nil
}

// transferInfo is a transfer's state as the API shows it.
func transferInfo(s transfer.Status) TransferInfo {
	p, rate := s.Progress.Progress, s.Progress.Rate
	info := TransferInfo{ID: s.ID, CID: s.Root.String(), Name: s.Name, Source: s.Source, State: TransferRunning,
		Pinned: s.Pin, Started: s.Started, Size: s.Size, Phase: PhaseFetching,
		Providers: s.Progress.Providers, Lookups: s.Progress.Lookups, ElapsedSeconds: s.Progress.Elapsed.Seconds(),
		BytesDone: uint64(p.BytesUseful + p.BytesLocal), BytesReceived: uint64(p.BytesReceived), Blocks: p.BlocksDone,
		RateBps: rate, DuplicateRatio: p.DuplicateRatio(), Peers: contributions(p.Peers)}
	if s.Progress.Searching {
		info.Phase = PhaseSearching
	}
	if rate > 0 && s.Size > info.BytesDone {
		info.ETASeconds = float64(s.Size-info.BytesDone) / rate
	}
	if s.Running() {
		return info
	}
	res := s.Result
	info.Finished = s.Finished
	info.BytesReceived = uint64(res.BytesReceived)
	info.Blocks = res.Blocks
	info.DuplicateRatio = res.DuplicateRatio
	info.Peers = contributions(res.Peers)
	info.ETASeconds = 0
	info.Phase = ""
	info.ElapsedSeconds = info.Finished.Sub(info.Started).Seconds()
	if s.Err != nil {
		info.State = TransferFailed
		info.Error = s.Err.Error()
		return info
	}
	info.State = TransferDone
	info.BytesDone = s.Size
	if el := res.Elapsed.Seconds(); el > 0 {
		info.RateBps = float64(res.Bytes) / el
	}
	return info
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

// File is an open file of the swarm: reads fetch what they need.
type File interface {
	io.ReadSeekCloser
	// ReadAt reads without moving the position and without starting the
	// whole-DAG fetch a Read from the start starts (a content-type sniff
	// of a Range request's file reads its first bytes this way).
	io.ReaderAt
	Size() uint64
	// Expect says the reads that follow are of bytes [from, end) (a
	// Range request's): only blocks holding them are fetched ahead, and
	// a read from the start fetches the whole DAG only when that is the
	// whole file.
	Expect(from, end uint64)
}

// readAheadBlocks is how many blocks a streamed read fetches ahead of the
// one it reads (content.FileReader.ReadAhead): enough to keep a few round
// trips in flight, few enough that a Range read fetches at most this many
// blocks past its end.
const readAheadBlocks = 4

// openFile streams a file, reading ahead as transfer.ReadAhead decides:
// the first read from the start of the file fetches its whole DAG, unless
// this node holds it all already or the reader said it stops earlier
// (Expect). Every read also fetches the next readAheadBlocks blocks that
// are not stored here.
type openFile struct {
	*content.FileReader
	ra      *transfer.ReadAhead
	held    func(cid.Cid) bool // stored here: not fetched ahead
	partial atomic.Bool        // Expect was told less than the whole file
	closed  atomic.Bool
	release func() // ends the file's use of its read session
}

// transferKey keys the transfer a read belongs to (WithTransfer).
type transferKey struct{}

// WithTransfer returns ctx for reads that belong to the transfer with the
// given ID: a client streaming what its own fetch brings (`shoal fetch`
// against a daemon that cannot write its file). Open called with it
// starts no whole-DAG fetch of its own, since the transfer is that fetch,
// and refuses at once with the transfer's error if it has already failed
// or been cancelled: a read that follows a failed fetch must not start
// the same fetch again, onto the same full disk or the same missing
// providers. An unknown ID makes Open fail with ErrNotFound.
func WithTransfer(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, transferKey{}, id)
}

// ownTransfer checks the transfer a read with ctx belongs to, if any: it
// reports whether there is one, and an error if it is unknown or ended
// without its content.
func (n *Node) ownTransfer(ctx context.Context) (bool, error) {
	id, _ := ctx.Value(transferKey{}).(string)
	if id == "" {
		return false, nil
	}
	t, err := n.transfer(id)
	if err != nil {
		return true, err
	}
	if st := t.t.Status(); !st.Running() && st.Err != nil {
		return true, fmt.Errorf("transfer %s of %s ended: %w", id, st.Root, st.Err)
	}
	return true, nil
}

// CheckReadTransfer reports the error Open would refuse a read with ctx
// for because of its transfer (WithTransfer): the transfer is unknown, or
// it failed or was cancelled. Nil without one. The API asks first, before
// its path walk (which would look for the root's providers again) and
// before it sends a status (a tar of a directory).
func (n *Node) CheckReadTransfer(ctx context.Context) error {
	_, err := n.ownTransfer(ctx)
	return err
}

// Open opens the file at c for streaming reads, in the read session of
// its root (WithReadRoot, else c): the file's blocks are fetched with
// the providers the session found, and c counts as the session's for as
// long as the file is open, so a whole-DAG fetch of it asks them too.
// Under WithTransfer that transfer is the whole-DAG fetch.
func (n *Node) Open(ctx context.Context, c cid.Cid) (File, error) {
	owned, err := n.ownTransfer(ctx)
	if err != nil {
		return nil, err
	}
	s, done := n.reads.acquire(readRoot(ctx, c))
	unmark := n.reads.mark(s, c, false)
	release := func() { unmark(); done() }
	r, err := content.NewFileReader(ctx, s.getter(), c)
	if err != nil {
		release()
		return nil, contentErr(c, err)
	}
	f := &openFile{FileReader: r, release: release, held: func(c cid.Cid) bool {
		has, err := n.store.Has(n.ctx, c)
		return err == nil && has
	}}
	r.ReadAhead(readAheadBlocks, 0, r.Size(), f.held)
	f.ra = transfer.NewReadAhead(r, func() {
		if !owned && !f.partial.Load() {
			n.fetchUnlessHeld(c)
		}
	})
	return f, nil
}

// fetchUnlessHeld starts a fetch of the DAG under c unless every block of
// it is stored here.
func (n *Node) fetchUnlessHeld(c cid.Cid) {
	if has, _ := n.store.Has(n.ctx, c); has {
		if st, err := n.store.PinStatus(n.ctx, c); err == nil && st.Complete {
			return
		}
	}
	_, _ = n.Fetch(n.ctx, c, "gateway")
}

func (f *openFile) Expect(from, end uint64) {
	end = min(end, f.Size())
	f.partial.Store(from > 0 || end < f.Size())
	f.FileReader.ReadAhead(readAheadBlocks, from, end, f.held)
}

func (f *openFile) Read(p []byte) (int, error) { return f.ra.Read(p) }

func (f *openFile) Seek(off int64, whence int) (int64, error) { return f.ra.Seek(off, whence) }

func (f *openFile) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
	err := f.FileReader.Close()
	f.release()
	return err
}
