package dht

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ipfs/go-datastore"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Mode says whether this node answers DHT queries (server) or only asks them
// (client). A client is never added to other nodes' routing tables.
type Mode int

const (
	// ModeServer serves DHT queries and stores provider records for others.
	ModeServer Mode = iota
	// ModeClient only queries; use it behind NAT or on short-lived nodes.
	ModeClient
)

func (m Mode) String() string {
	switch m {
	case ModeServer:
		return "server"
	case ModeClient:
		return "client"
	default:
		return fmt.Sprintf("Mode(%d)", int(m))
	}
}

// Networks a router can join.
const (
	// NetworkShoal is a fleet's own DHT, protocol prefix /shoal. Nodes of the
	// public IPFS DHT never see it.
	NetworkShoal = "shoal"
	// NetworkIPFS is the public IPFS ("Amino") DHT, protocol prefix /ipfs.
	NetworkIPFS = "ipfs"
)

// Protocol prefixes of the two networks (the DHT protocol is
// <prefix>/kad/1.0.0).
const (
	ShoalProtocolPrefix protocol.ID = "/shoal"
	IPFSProtocolPrefix  protocol.ID = "/ipfs"
)

// mDNS service names: a shoal fleet does not answer Kubo's LAN discovery, and
// on the IPFS network we use the name Kubo uses so LAN Kubo nodes are found.
const (
	DefaultShoalMDNSService = "_shoal-discovery._udp"
	DefaultIPFSMDNSService  = "_p2p._udp"
)

// The public IPFS bootstrap peers (the list Kubo ships). They are dialled only
// when Config.Network is NetworkIPFS and no BootstrapPeers are given.
const (
	ipfsBootstrap0 = "/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
	ipfsBootstrap1 = "/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa"
	ipfsBootstrap2 = "/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx3BHJX9KiKNN6tpvbUeqanj75Nb"
	ipfsBootstrap3 = "/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt"
	ipfsBootstrap4 = "/dnsaddr/va1.bootstrap.libp2p.io/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8"
	ipfsBootstrap5 = "/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ"
	ipfsBootstrap6 = "/ip4/104.131.131.82/udp/4001/quic-v1/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ"
)

// IPFSBootstrapPeers returns (a fresh copy of) the public IPFS bootstrap
// multiaddrs.
func IPFSBootstrapPeers() []string {
	return []string{ipfsBootstrap0, ipfsBootstrap1, ipfsBootstrap2, ipfsBootstrap3,
		ipfsBootstrap4, ipfsBootstrap5, ipfsBootstrap6}
}

// Defaults.
const (
	// DefaultReprovideInterval matches Kubo: provider records live 48h on the
	// servers, so every root is re-announced well before it expires.
	DefaultReprovideInterval = 22 * time.Hour
	// DefaultProvideWorkers is how many keyspace regions are (re)provided at
	// once.
	DefaultProvideWorkers = 8
	// DefaultProvideConnsPerWorker is how many peers one region sweep sends
	// records to in parallel.
	DefaultProvideConnsPerWorker = 20
	// DefaultBucketSize is Kademlia's k: routing-table bucket size and the
	// number of peers each provider record is stored on.
	DefaultBucketSize = 20
	// DefaultRefreshDelay is how long after Start a router first
	// refreshes its routing table (upkeep.go).
	DefaultRefreshDelay = time.Minute
	// DefaultRejoinInterval is how often a router checks it still knows a
	// bootstrap peer (Kubo's bootstrap check runs every 30 s too).
	DefaultRejoinInterval = 30 * time.Second
)

// Config configures a Router. Start from DefaultConfig.
type Config struct {
	// Network is NetworkShoal (default) or NetworkIPFS.
	Network string
	// Mode is ModeServer (default) or ModeClient.
	Mode Mode
	// BootstrapPeers are multiaddrs ending in /p2p/<peer id>. Empty on
	// NetworkIPFS means the public IPFS bootstrap peers; empty on NetworkShoal
	// means this node waits to be found (first node of a fleet, or mDNS).
	BootstrapPeers []string
	// MDNS turns on LAN discovery; found peers are connected to and so join
	// the routing table.
	MDNS bool
	// MDNSServiceName overrides the mDNS service name (default depends on
	// Network).
	MDNSServiceName string

	// ReprovideInterval is how often every provided root is re-announced.
	ReprovideInterval time.Duration
	// ProvideWorkers bounds concurrent region sweeps (at least 2: one is kept
	// for new provides, one for reprovides).
	ProvideWorkers int
	// ProvideConnsPerWorker bounds peers written to in parallel per sweep.
	ProvideConnsPerWorker int
	// BucketSize is Kademlia's k (replication factor). Must be 20 on
	// NetworkIPFS.
	BucketSize int
	// RejoinInterval is how often a joined router checks that its routing
	// table still holds a bootstrap peer and, if none is left (a network
	// split or an outage dropped them), bootstraps again. kad-dht itself
	// re-dials bootstrap peers only once the table is empty, so a group of
	// nodes cut off together would otherwise stay an island after the
	// split heals. Zero means DefaultRejoinInterval; negative turns the
	// check off.
	RejoinInterval time.Duration
	// RefreshDelay is how long after Start the router first refreshes
	// its routing table (a lookup of its own key and of a random key in
	// every bucket), then every 10 minutes. kad-dht by itself refreshes
	// as its table gains its first peer, and again when that ends: ten
	// or so lookups in the first second of a node that joined to fetch
	// something, on the link the fetch needs. Zero means
	// DefaultRefreshDelay; negative leaves the refresh to kad-dht.
	RefreshDelay time.Duration

	// extraDHTOptions are appended to kad-dht's options (tests only).
	extraDHTOptions []kaddht.Option

	// Datastore holds received provider records, the set of provided roots
	// and the reprovide schedule. Nil means in memory (lost on restart); pass
	// a persistent one to keep the provide set across restarts. The Router
	// does not close it.
	Datastore datastore.Batching
	// Logger receives the router's own logs (kad-dht logs through go-log).
	// Nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration of a server on the shoal network
// with mDNS on and no bootstrap peers.
func DefaultConfig() Config {
	return Config{
		Network:               NetworkShoal,
		Mode:                  ModeServer,
		MDNS:                  true,
		ReprovideInterval:     DefaultReprovideInterval,
		ProvideWorkers:        DefaultProvideWorkers,
		ProvideConnsPerWorker: DefaultProvideConnsPerWorker,
		BucketSize:            DefaultBucketSize,
		RejoinInterval:        DefaultRejoinInterval,
	}
}

// ErrInvalidConfig is wrapped by every Config.Validate error.
var ErrInvalidConfig = errors.New("dht: invalid config")

// Validate reports the first invalid field, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch c.Network {
	case NetworkShoal, NetworkIPFS:
	default:
		return bad("network %q: use %q or %q", c.Network, NetworkShoal, NetworkIPFS)
	}
	if c.Mode != ModeServer && c.Mode != ModeClient {
		return bad("mode %d: use ModeServer or ModeClient", int(c.Mode))
	}
	if _, err := ParseAddrInfos(c.BootstrapPeers); err != nil {
		return bad("%v", err)
	}
	if c.ReprovideInterval <= 0 {
		return bad("reprovide interval %v must be positive (Kubo uses 22h)", c.ReprovideInterval)
	}
	if c.ProvideWorkers < 2 {
		return bad("provide workers %d: need at least 2", c.ProvideWorkers)
	}
	if c.ProvideConnsPerWorker < 1 {
		return bad("provide conns per worker %d: need at least 1", c.ProvideConnsPerWorker)
	}
	if c.BucketSize < 1 {
		return bad("bucket size %d: need at least 1", c.BucketSize)
	}
	if c.Network == NetworkIPFS && c.BucketSize != DefaultBucketSize {
		return bad("bucket size %d: the IPFS network requires %d", c.BucketSize, DefaultBucketSize)
	}
	return nil
}

// ParseAddrInfos parses multiaddrs ending in /p2p/<peer id> and merges
// addresses of the same peer.
func ParseAddrInfos(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	index := map[peer.ID]int{}
	for _, s := range addrs {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("bootstrap peer %q: %v (want a multiaddr ending in /p2p/<peer id>)", s, err)
		}
		if i, ok := index[ai.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		index[ai.ID] = len(out)
		out = append(out, *ai)
	}
	return out, nil
}

// protocolPrefix returns the DHT protocol prefix of the network.
func (c Config) protocolPrefix() protocol.ID {
	if c.Network == NetworkIPFS {
		return IPFSProtocolPrefix
	}
	return ShoalProtocolPrefix
}

func (c Config) mdnsServiceName() string {
	switch {
	case c.MDNSServiceName != "":
		return c.MDNSServiceName
	case c.Network == NetworkIPFS:
		return DefaultIPFSMDNSService
	default:
		return DefaultShoalMDNSService
	}
}

func (c Config) bootstrapPeers() []peer.AddrInfo {
	addrs := c.BootstrapPeers
	if len(addrs) == 0 && c.Network == NetworkIPFS {
		addrs = IPFSBootstrapPeers()
	}
	ais, _ := ParseAddrInfos(addrs) // checked by Validate
	return ais
}

func (c Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
