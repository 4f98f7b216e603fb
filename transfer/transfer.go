package transfer

import (
	"fmt"
	"strings"
	"time"

	"sync"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/protocol"
)

// Transfer is one fetch of a DAG into the store, with its progress.
type Transfer struct {
	r    *Registry
	id   string
	root cid.Cid
	f    *protocol.Fetch
	done chan struct{}

	mu        sync.Mutex
	status    Status
	stalled   time.Duration // set when ended for making no progress
	cancelled bool          // set by Cancel
}

// Status is a transfer's state: what the last progress event and, once
// it ended, the fetch's result said.
type Status struct {
	ID     string
	Root   cid.Cid
	Source string
	Name   string
	Pin    bool // the caller asked for the root to be pinned once fetched
	// Size is the content size once known (from the first stored blocks).
	Size     uint64
	Started  time.Time
	Finished time.Time // zero while running
	// Progress is the last progress event; Searching until the first.
	Progress protocol.FetchProgress
	// Result is the fetch's outcome, once Finished is set.
	Result protocol.FetchResult
	// Err is the transfer's failure once Finished is set, nil when done.
	Err error
}

// Running tells whether the transfer has not ended yet.
func (s Status) Running() bool { return s.Finished.IsZero() }

// ID names the transfer in its registry ("t1", "t2", …).
func (t *Transfer) ID() string { return t.id }

// Status returns a snapshot of the transfer.
func (t *Transfer) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.status
	s.Progress.Peers = append([]protocol.PeerProgress(nil), s.Progress.Peers...)
	s.Result.Peers = append([]protocol.PeerProgress(nil), s.Result.Peers...)
	return s
}

// Done is closed when the transfer has ended, well or not.
func (t *Transfer) Done() <-chan struct{} { return t.done }

// Err is the transfer's failure, once Done is closed.
func (t *Transfer) Err() error {
	<-t.done
	return t.status.Err
}

// Cancel ends a running transfer with ErrCancelled; an ended one is left
// as it is.
func (t *Transfer) Cancel() {
	t.mu.Lock()
	t.cancelled = true
	t.mu.Unlock()
	t.f.Cancel()
}

// run follows the fetch's progress until it ends, and ends it when it
// has received nothing new for the no-progress timeout.
func (t *Transfer) run() {
	cfg := t.r.cfg
	announced := false
	updates := t.f.Updates()
	limit := cfg.NoProgressTimeout
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
			if !announced && cfg.AnnounceWhileFetching && p.BlocksDone > p.BlocksLocal {
				announced = true
				// Swarming: once it holds verified blocks, this node can
				// serve them, so others should find it.
				if err := t.r.a.Provide(t.r.ctx, t.root); err != nil {
					cfg.Logger.Debug("announcing a root while fetching", "cid", t.root, "err", err)
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

func (t *Transfer) update(p protocol.FetchProgress) {
	t.mu.Lock()
	size := t.status.Size
	t.mu.Unlock()
	if size == 0 && p.BlocksDone > 0 {
		size = t.r.cfg.Size(t.r.ctx, t.root)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.status.Size = size
	t.status.Progress = p
}

func (t *Transfer) finish(res protocol.FetchResult, err error) {
	r := t.r
	t.mu.Lock()
	stalled, cancelled := t.stalled, t.cancelled
	t.mu.Unlock()
	switch {
	case err != nil && cancelled:
		err = fmt.Errorf("%w: fetch of %s", ErrCancelled, t.root)
	case err != nil && stalled > 0:
		err = fmt.Errorf("fetch of %s received nothing for %v from the %s (%s): they accept requests but do not answer; try other peers (shoal connect) or raise transfer.no_progress_timeout: %w",
			t.root, stalled, plural(len(res.Peers), "peer"), peerList(res.Peers), ErrNoProgress)
	}
	// Leave the running set before the status is taken for Complete: a
	// Start that joined later could add a pin that Complete never saw.
	// From here on a Start of this root begins a new transfer.
	r.ended(t)
	size := r.cfg.Size(r.ctx, t.root)
	t.mu.Lock()
	t.status.Size, t.status.Result = size, res
	s := t.status
	t.mu.Unlock()
	err = r.cfg.Complete(r.ctx, s, err)
	if err != nil {
		r.cfg.Logger.Warn("fetch failed", "cid", t.root, "transfer", t.id, "source", s.Source, "err", err)
	}
	t.mu.Lock()
	t.status.Finished = time.Now()
	t.status.Err = err
	s = t.status
	t.mu.Unlock()
	r.cfg.Ended(s)
	close(t.done)
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
