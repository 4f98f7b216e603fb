package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/protocol"
)

// Fetcher starts fetches of whole DAGs (protocol.Client).
type Fetcher interface {
	FetchWith(ctx context.Context, root cid.Cid, o protocol.FetchOptions) (*protocol.Fetch, error)
}

// Announcer tells the swarm this node provides a root (dht.Router).
type Announcer interface {
	Provide(ctx context.Context, c cid.Cid) error
}

// ErrCancelled is the error of a transfer ended by Cancel.
var ErrCancelled = errors.New("transfer: cancelled")

// ErrNoProgress: a fetch ended because its peers accepted requests and
// sent nothing for Config.NoProgressTimeout.
var ErrNoProgress = errors.New("transfer: no progress")

// ErrClosed: Start on a registry that has been closed.
var ErrClosed = errors.New("transfer: registry closed")

// Config tunes a Registry.
type Config struct {
	// SearchTimeout bounds the search for a peer that has the content,
	// unless Options.SearchTimeout says otherwise; 0 searches until
	// cancelled.
	SearchTimeout time.Duration
	// NoProgressTimeout ends a fetch that received nothing new for this
	// long once some peer had the content; 0 never does.
	NoProgressTimeout time.Duration
	// AnnounceWhileFetching provides the root as soon as the first block
	// fetched from peers is verified and stored.
	AnnounceWhileFetching bool
	// Keep is how many transfers List remembers, running or not; 0 means 50.
	Keep int
	// Size is the content size of a root from the blocks held here, 0
	// when unknown. Nil counts nothing.
	Size func(ctx context.Context, c cid.Cid) uint64
	// Complete is called once with every ended fetch: err is the fetch's
	// failure (nil when the whole DAG is stored). What it returns is the
	// transfer's error; it may fail a fetch that succeeded. Nil keeps err.
	Complete func(ctx context.Context, s Status, err error) error
	// Started and Ended, when set, see every transfer once as it starts
	// (a join is not a start) and once in its final state, before Done
	// closes: the hooks for counters that must not miss a transfer.
	Started, Ended func(s Status)
	// Logger receives failed fetches and failed announcements.
	Logger *slog.Logger
}

// Options tune one transfer.
type Options struct {
	Source        string         // who asked ("api", "gateway", "pin")
	Pin           bool           // Status.Pin, for Complete
	SearchTimeout *time.Duration // nil takes Config.SearchTimeout
	Name          string         // what the content is called; kept in Status
}

// Registry keeps running transfers and the most recent finished ones. It
// owns the goroutine that watches each transfer; Close ends and waits for
// them.
type Registry struct {
	cfg Config
	f   Fetcher
	a   Announcer
	ctx context.Context // parent of every fetch; ends at Close
	end context.CancelFunc
	wg  sync.WaitGroup

	mu       sync.Mutex
	seq      atomic.Uint64
	running  map[cid.Cid]*Transfer
	starting map[cid.Cid]*starting // Starts setting up their fetch, lock not held
	all      []*Transfer           // newest last, at most cfg.Keep
	closed   bool                  // set by Close: Start starts nothing after it
}

// New returns a registry whose fetches f runs and a announces.
func New(cfg Config, f Fetcher, a Announcer) *Registry {
	if cfg.Keep <= 0 {
		cfg.Keep = 50
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Size == nil {
		cfg.Size = func(context.Context, cid.Cid) uint64 { return 0 }
	}
	if cfg.Complete == nil {
		cfg.Complete = func(_ context.Context, _ Status, err error) error { return err }
	}
	if cfg.Started == nil {
		cfg.Started = func(Status) {}
	}
	if cfg.Ended == nil {
		cfg.Ended = func(Status) {}
	}
	r := &Registry{cfg: cfg, f: f, a: a, running: map[cid.Cid]*Transfer{}, starting: map[cid.Cid]*starting{}}
	r.ctx, r.end = context.WithCancel(context.Background())
	return r
}

// Start starts fetching the whole DAG under c, or joins the fetch of c
// already running: joining adds o.Pin to it and keeps its search timeout
// and name. The fetch belongs to the registry, not to the caller: a
// request that starts a fetch and goes away leaves it running.
func (r *Registry) Start(c cid.Cid, o Options) (*Transfer, error) {
	popts := protocol.FetchOptions{SearchTimeout: r.cfg.SearchTimeout}
	if o.SearchTimeout != nil {
		popts.SearchTimeout = *o.SearchTimeout
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if r.closed {
			return nil, ErrClosed
		}
		if t, ok := r.running[c]; ok {
			if o.Pin {
				t.mu.Lock()
				t.status.Pin = true
				t.mu.Unlock()
			}
			return t, nil
		}
		s, ok := r.starting[c]
		if !ok {
			break
		}
		// Another Start of c is setting up its fetch: join it once it is
		// running (or fail as it did).
		r.mu.Unlock()
		<-s.done
		r.mu.Lock()
		if s.err != nil {
			return nil, s.err
		}
	}
	// Setting up a fetch walks what the store already holds of the DAG
	// (disk reads): the lock is not held meanwhile, so other transfers'
	// Start, Get and List do not wait on this one's disk.
	s := &starting{done: make(chan struct{})}
	r.starting[c] = s
	r.mu.Unlock()
	f, err := r.f.FetchWith(r.ctx, c, popts)
	r.mu.Lock()
	delete(r.starting, c)
	defer close(s.done)
	if err == nil && r.closed {
		f.Cancel()
		err = ErrClosed
	}
	if err != nil {
		if !errors.Is(err, ErrClosed) {
			err = fmt.Errorf("starting fetch of %s: %w", c, err)
		}
		s.err = err
		return nil, err
	}
	t := &Transfer{r: r, id: fmt.Sprintf("t%d", r.seq.Add(1)), root: c, f: f, done: make(chan struct{})}
	t.status = Status{ID: t.id, Root: c, Source: o.Source, Name: o.Name, Pin: o.Pin,
		Started: time.Now()}
	t.status.Progress.Searching = true
	r.cfg.Started(t.status)
	r.running[c] = t
	r.all = append(r.all, t)
	if len(r.all) > r.cfg.Keep {
		r.all = r.all[len(r.all)-r.cfg.Keep:]
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t.run()
	}()
	return t, nil
}

// starting is a Start setting up its fetch; done closes when the transfer
// runs (it is then in running) or failed with err.
type starting struct {
	done chan struct{}
	err  error
}

// Get returns a remembered transfer by ID.
func (r *Registry) Get(id string) (*Transfer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.all {
		if t.id == id {
			return t, true
		}
	}
	return nil, false
}

// List returns the remembered transfers, newest first.
func (r *Registry) List() []*Transfer {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Transfer, 0, len(r.all))
	for i := len(r.all) - 1; i >= 0; i-- {
		out = append(out, r.all[i])
	}
	return out
}

// Close cancels every running transfer and waits until each has ended.
// It is safe to call more than once.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	r.end()
	for _, t := range r.running {
		t.f.Cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *Registry) ended(t *Transfer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[t.root] == t {
		delete(r.running, t.root)
	}
}
