package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/shoalnet/shoal/blockstore"
	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/dht"
	"github.com/shoalnet/shoal/protocol"
	"github.com/shoalnet/shoal/swarm"
)

// ErrClosed is returned by operations on a closed node.
var ErrClosed = errors.New("node: closed")

// Node is one running shoal node: a libp2p host, the DHT, the blockstore
// and block exchange, plugged together. It holds no protocol logic.
type Node struct {
	cfg   Config
	log   *slog.Logger
	host  host.Host
	store blockstore.Store

	router *dht.Router
	net    *protocol.Network
	server *protocol.Server
	client *protocol.Client
	swarm  *swarm.Service // nil when network.swarm_extension is off

	roots     *rootRegistry
	transfers *transferRegistry
	started   time.Time

	fetchStats fetchCounters // kept by the transfers, read by Stats
	reads      *readSessions // read sessions, and the client's provider search (readsession.go)
	files      fileSinks     // files WriteFile is writing, fed each received leaf
	placed     placedFiles   // files WriteFile finished, until FilePlaced

	views dashViews // the dashboard's cluster pins and swarm walks (cluster_view.go, swarm_view.go)

	ctx    context.Context // ends at Close; parent of background work
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
	ownHost   bool
}

// Parts lets a caller supply the host and store instead of having New
// build them from the config (the simulator runs nodes on simulated hosts
// with in-memory stores). The node closes what it is given.
type Parts struct {
	Host  host.Host
	Store blockstore.Store
}

// New builds a node from cfg: key and blocks from cfg.Home (in memory when
// Home is empty), the libp2p host, the DHT and block exchange. Nothing
// talks to the network until Start.
func New(cfg Config) (*Node, error) {
	return NewWithParts(cfg, Parts{})
}

// NewWithParts is New with some parts supplied by the caller.
func NewWithParts(cfg Config, parts Parts) (n *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nd := &Node{cfg: cfg, log: log, host: parts.Host, store: parts.Store}
	nd.ctx, nd.cancel = context.WithCancel(context.Background())
	// Every failure below returns nil, err; release what was built under
	// the node's own name, not the (then nil) result.
	defer func() {
		if err != nil {
			nd.Close()
		}
	}()
	n = nd

	if n.store == nil {
		if n.store, err = openStore(cfg, log); err != nil {
			return nil, err
		}
	}
	if n.roots, err = loadRoots(cfg.Home); err != nil {
		return nil, err
	}
	if n.host == nil {
		key, err := nodeKey(cfg.Home)
		if err != nil {
			return nil, err
		}
		if n.host, err = newHost(cfg, key); err != nil {
			return nil, err
		}
	}
	n.ownHost = true

	dcfg := dht.DefaultConfig()
	dcfg.Network = cfg.Network.Network
	dcfg.Mode = dht.ModeServer
	if cfg.Network.DHTMode == "client" {
		dcfg.Mode = dht.ModeClient
	}
	dcfg.BootstrapPeers = cfg.Network.Bootstrap
	dcfg.MDNS = cfg.Network.MDNS
	dcfg.Logger = log.With("part", "dht")
	if n.router, err = dht.New(n.host, dcfg); err != nil {
		return nil, err
	}

	ncfg := protocol.DefaultNetworkConfig()
	if n.net, err = protocol.NewNetwork(n.host, ncfg); err != nil {
		return nil, err
	}
	scfg := protocol.DefaultServerConfig()
	scfg.UploadBytesPerSecond = cfg.Transfer.UploadLimit
	scfg.UploadSlots = cfg.Transfer.UploadSlots
	scfg.ReceivedFrom = n.net.BlockBytesFrom // tit-for-tat: what each peer gave us
	scfg.SwarmAllPeers = cfg.Transfer.SwarmAllPeers
	scfg.SwarmSendsAtOnce = cfg.Transfer.UploadTurns
	scfg.SwarmTurnSlices = cfg.Transfer.TurnSlices
	if cfg.Transfer.MaxInflightSends > 0 {
		scfg.MaxInflightSends = cfg.Transfer.MaxInflightSends
	}
	// A corrupt block was dropped (and logged) by the store: to a peer it
	// is simply missing, answered with DONT_HAVE.
	scfg.IsNotFound = func(err error) bool {
		return errors.Is(err, blockstore.ErrNotFound) || errors.Is(err, blockstore.ErrCorrupt)
	}
	scfg.Logger = log.With("part", "server")
	if n.server, err = protocol.NewServer(scfg, n.store, n.net); err != nil {
		return nil, err
	}
	n.reads = newReadSessions(n.ctx, n.router.FindProviders, func(ctx context.Context, c cid.Cid) ([]byte, error) {
		return n.client.Get(ctx, c)
	})
	if n.client, err = n.newClient(); err != nil {
		return nil, err
	}
	if cfg.Network.SwarmExtension {
		if n.swarm, err = n.newSwarm(); err != nil {
			return nil, err
		}
	}
	n.net.SetReceivers(n.server, n.client)
	n.net.AddPeerListener(n.server)
	n.net.AddPeerListener(n.client)
	n.transfers = n.newTransfers()
	return n, nil
}

// nodeKey is the persistent key of a home, or a fresh one for an
// in-memory node.
func nodeKey(home string) (crypto.PrivKey, error) {
	if home == "" {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		return k, err
	}
	return LoadOrCreateKey(home)
}

func openStore(cfg Config, log *slog.Logger) (blockstore.Store, error) {
	bcfg := blockstore.DefaultConfig("")
	bcfg.CapacityBytes = cfg.Store.CapacityBytes
	bcfg.Sync = cfg.Store.Sync
	// Every block read is re-hashed, whatever store.verify_on_read says:
	// the node serves what it reads (gateway, API, Bitswap), and a block
	// rotted on disk must be dropped and fetched again, never handed out.
	// One SHA-256 per read costs far less than the read itself and runs
	// faster than any link it is served over (bench/blockstore.md).
	bcfg.VerifyOnRead = true
	bcfg.Links = content.Links
	bcfg.Logger = log.With("part", "blockstore")
	if cfg.Home == "" {
		return blockstore.NewMemory(bcfg), nil
	}
	bcfg.Dir = cfg.Home
	s, err := blockstore.Open(bcfg)
	var inUse *blockstore.InUseError
	if errors.As(err, &inUse) {
		return nil, homeInUseError{home: cfg.Home, pid: inUse.PID, err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("node: opening the block store in %s: %w", bcfg.Dir, err)
	}
	return s, nil
}

// homeInUseError: a second daemon started on a home whose store another
// process holds. It unwraps to the store's error (blockstore.ErrInUse).
type homeInUseError struct {
	home string
	pid  int
	err  error
}

func (e homeInUseError) Error() string {
	who := "another shoal daemon"
	if e.pid > 0 {
		who = fmt.Sprintf("another shoal daemon (pid %d)", e.pid)
	}
	return fmt.Sprintf("node: %s is using home %s: stop it first, or start this one with its own --home", who, e.home)
}

func (e homeInUseError) Unwrap() error { return e.err }

// Start brings the node onto the network: block exchange, the DHT and its
// bootstrap, and re-announcement of every root it holds. A failed
// bootstrap is logged, not fatal: a first node has nobody to join.
func (n *Node) Start(ctx context.Context) error {
	if n.ctx.Err() != nil {
		return ErrClosed
	}
	n.started = time.Now()
	if err := n.net.Start(); err != nil {
		return err
	}
	if err := n.server.Start(); err != nil {
		return err
	}
	if err := n.client.Start(); err != nil {
		return err
	}
	if n.swarm != nil {
		n.swarm.Start()
	}
	if err := n.router.Start(); err != nil {
		return err
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		bctx, cancel := context.WithTimeout(n.ctx, time.Minute)
		defer cancel()
		if err := n.router.Bootstrap(bctx); err != nil && n.ctx.Err() == nil {
			n.log.Warn("DHT bootstrap incomplete", "err", err)
		}
	}()
	for _, c := range n.roots.list() {
		if has, _ := n.store.Has(ctx, c); has {
			if err := n.router.Provide(ctx, c); err != nil {
				n.log.Warn("re-announcing root", "cid", c, "err", err)
			}
		}
	}
	return nil
}

// Close stops everything the node started and releases its parts. It is
// safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		var errs []error
		if n.transfers != nil {
			n.transfers.Close()
		}
		n.wg.Wait()
		if n.reads != nil {
			n.reads.close()
		}
		if n.swarm != nil {
			errs = append(errs, n.swarm.Close())
		}
		if n.client != nil {
			errs = append(errs, n.client.Close())
		}
		if n.server != nil {
			errs = append(errs, n.server.Close())
		}
		if n.net != nil {
			errs = append(errs, n.net.Close())
		}
		if n.router != nil {
			errs = append(errs, n.router.Close())
		}
		if n.host != nil && n.ownHost {
			errs = append(errs, n.host.Close())
		}
		if n.store != nil {
			errs = append(errs, n.store.Close())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// Host returns the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Store returns the node's blockstore.
func (n *Node) Store() blockstore.Store { return n.store }

// Router returns the node's DHT router.
func (n *Node) Router() *dht.Router { return n.router }
