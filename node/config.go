package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoalnet/shoal/internal/httpguard"
	"github.com/shoalnet/shoal/ipfscluster"
)

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("node: bad configuration")

// Config is everything a node needs to start. The daemon reads it from
// config.toml in the home directory and lets flags override it.
type Config struct {
	// Home holds the key, the config file, the blocks and the API address
	// file. Empty means an in-memory node (tests, simulation).
	Home string `toml:"-"`

	Network   NetworkConfig   `toml:"network"`
	API       APIConfig       `toml:"api"`
	Store     StoreConfig     `toml:"store"`
	Transfer  TransferConfig  `toml:"transfer"`
	Resources ResourcesConfig `toml:"resources"`
	Cluster   ClusterConfig   `toml:"cluster"`

	Logger *slog.Logger `toml:"-"`
}

// NetworkConfig covers libp2p and the DHT.
type NetworkConfig struct {
	Listen    []string `toml:"listen"`
	Bootstrap []string `toml:"bootstrap"`
	MDNS      bool     `toml:"mdns"`
	Network   string   `toml:"network"`  // "shoal" or "ipfs"
	DHTMode   string   `toml:"dht_mode"` // "server" or "client"
	SwarmKey  string   `toml:"swarm_key"`
	// SwarmExtension speaks shoal's swarm extension (/shoal/swarm/1.0.0)
	// with peers that do: availability maps instead of probes, choking,
	// peer exchange. Off, every peer is plain Bitswap. On by default
	// (Kubo, Helia and boxo peers see plain Bitswap either way).
	SwarmExtension bool `toml:"swarm_extension"`
}

// APIConfig covers the HTTP listeners.
type APIConfig struct {
	Addr        string `toml:"addr"`
	GatewayAddr string `toml:"gateway_addr"`
	Token       string `toml:"token"`
	// TokenFile names a file holding the token (its first line), so the
	// secret need not sit in config.toml or on a command line.
	TokenFile string `toml:"token_file"`
	// MaxConns and GatewayMaxConns cap the connections open at once on
	// the API and the gateway; past them the longest-idle one is closed.
	MaxConns        int `toml:"max_conns"`
	GatewayMaxConns int `toml:"gateway_max_conns"`
	// RPCAddr, when set, serves the Kubo-compatible RPC (/api/v0, for
	// IPFS Cluster and Kubo's CLI) on this HOST:PORT; empty = off.
	RPCAddr string `toml:"rpc_addr"`
}

// ClusterConfig names the IPFS Cluster peer that drives this node
// (ipfs-cluster-service beside it), whose view of the pins the dashboard
// shows.
type ClusterConfig struct {
	// RESTAddr is the cluster peer's REST API, HOST:PORT (its
	// restapi.http_listen_multiaddress, 127.0.0.1:9094 by default);
	// empty = no cluster.
	RESTAddr string `toml:"rest_addr"`
}

// StoreConfig covers the blockstore.
type StoreConfig struct {
	CapacityBytes int64 `toml:"capacity_bytes"`
	Sync          bool  `toml:"sync"`
	// VerifyOnRead is kept so older config files still load; a node
	// always re-hashes the blocks it reads.
	VerifyOnRead bool `toml:"verify_on_read"`
}

// TransferConfig covers block exchange.
type TransferConfig struct {
	UploadLimit           int64 `toml:"upload_limit"`
	AnnounceWhileFetching bool  `toml:"announce_while_fetching"`
	// UploadSlots is how many swarm peers this node uploads to at once
	// besides the optimistic unchoke; 0 sizes it from the uplink.
	UploadSlots int `toml:"upload_slots"`
	// UploadTurns is how many block sends to swarm peers this node writes
	// at once (upload turns, protocol/turn.go); 0, the default, bounds them
	// only by max_inflight_sends. TurnSlices lets a send slower than the
	// uplink's rate run beside the next turn's. Both are measured in
	// bench/sim.md ("turns") and off by default.
	UploadTurns int  `toml:"upload_turns"`
	TurnSlices  bool `toml:"turn_slices"`
	// SwarmAllPeers treats every peer as a shoal swarm peer for upload
	// slots, for simulations run before the swarm extension; never set it
	// on a node that serves Kubo peers (they would be choked untold).
	SwarmAllPeers bool `toml:"swarm_all_peers"`
	// NoProgressTimeout ends a fetch that received nothing new for this
	// long (peers that take requests and never answer); 0 never does.
	NoProgressTimeout Duration `toml:"no_progress_timeout"`
	// SearchTimeout is how long a fetch searches for a peer that has the
	// content before it fails (unless the request gives its own); 0
	// searches until the fetch is cancelled.
	SearchTimeout Duration `toml:"search_timeout"`
	// MaxInflightSends bounds the Bitswap responses this node writes at
	// once (each holds up to a 1 MiB batch until the peer has read it);
	// 0 keeps the protocol's default. The simulator lowers it so that a
	// thousand nodes on 20 Mbit/s links do not each hold 32 batches.
	MaxInflightSends int `toml:"max_inflight_sends"`
	// CacheFetchedFiles keeps a file `fetch -o` writes in the page cache.
	// Off (the default), each stretch leaves the cache once a checkpoint
	// has synced it: the file is written through a few MiB of recycled
	// pages instead of the whole file's worth of memory the kernel hands
	// out fresh (on a virtual machine that backs guest memory on first
	// touch, that costs more CPU than the rest of the file path), and a
	// large fetch does not evict what else the machine keeps cached;
	// reading the file afterwards (the user, or peers it is the seed for)
	// reads the disk.
	CacheFetchedFiles bool `toml:"cache_fetched_files"`
}

// Duration is a time.Duration written in config files as "2m30s".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"2m\" or \"90s\"", string(b))
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as Go formats it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// ResourcesConfig bounds what remote peers can make this node spend.
type ResourcesConfig struct {
	MaxMemoryBytes int64 `toml:"max_memory_bytes"`
	MaxFDs         int   `toml:"max_fds"`
	ConnsLow       int   `toml:"conns_low"`
	ConnsHigh      int   `toml:"conns_high"`
}

// DefaultListenPort is shoal's libp2p port (TCP and UDP/QUIC); Kubo uses
// 4001, so both can run on one machine.
const DefaultListenPort = 4040

// DefaultConfig returns the configuration a fresh home starts with.
func DefaultConfig(home string) Config {
	return Config{
		Home: home,
		Network: NetworkConfig{
			Listen: []string{
				fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", DefaultListenPort),
				fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", DefaultListenPort),
			},
			MDNS:           true,
			Network:        "shoal",
			DHTMode:        "server",
			SwarmExtension: true,
		},
		API: APIConfig{
			Addr:            "127.0.0.1:5080",
			GatewayAddr:     "127.0.0.1:8080",
			MaxConns:        512,
			GatewayMaxConns: 2048,
		},
		Transfer: TransferConfig{AnnounceWhileFetching: true, NoProgressTimeout: Duration{2 * time.Minute}, SearchTimeout: Duration{2 * time.Minute}},
		Resources: ResourcesConfig{
			MaxMemoryBytes: 1 << 30,
			MaxFDs:         4096,
			ConnsLow:       256,
			ConnsHigh:      512,
		},
	}
}

// Validate reports the first thing wrong with the configuration, naming
// the setting and what is accepted.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if len(c.Network.Listen) == 0 {
		return bad("network.listen is empty: give at least one multiaddr such as /ip4/0.0.0.0/tcp/%d", DefaultListenPort)
	}
	for _, s := range c.Network.Listen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return bad("network.listen %q is not a multiaddr: %v", s, err)
		}
	}
	for _, s := range c.Network.Bootstrap {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return bad("network.bootstrap %q is not a multiaddr: %v", s, err)
		}
		if !strings.Contains(s, "/p2p/") {
			return bad("network.bootstrap %q has no /p2p/<peer-id> part: a bootstrap address must name the peer", s)
		}
	}
	switch c.Network.Network {
	case "shoal", "ipfs":
	default:
		return bad("network.network is %q: use \"shoal\" (a fleet's own DHT) or \"ipfs\" (the public IPFS DHT)", c.Network.Network)
	}
	switch c.Network.DHTMode {
	case "server", "client":
	default:
		return bad("network.dht_mode is %q: use \"server\" or \"client\"", c.Network.DHTMode)
	}
	if c.Network.SwarmKey != "" && c.Network.Network == "ipfs" {
		return bad("network.swarm_key makes a private swarm, which cannot join the public IPFS network: remove one of them")
	}
	for name, addr := range map[string]string{"api.addr": c.API.Addr, "api.gateway_addr": c.API.GatewayAddr, "api.rpc_addr": c.API.RPCAddr} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return bad("%s %q is not HOST:PORT: %v", name, addr, err)
		}
	}
	if c.Cluster.RESTAddr != "" {
		if ipfscluster.CheckAddr(c.Cluster.RESTAddr) != nil {
			return bad("cluster.rest_addr %q is not HOST:PORT of the IPFS Cluster peer's REST API: use such as 127.0.0.1:9094, or \"\" for no cluster", c.Cluster.RESTAddr)
		}
	}
	if c.API.Token != "" && c.API.TokenFile != "" {
		return bad("api.token and api.token_file are both set: keep one (token_file keeps the secret out of config.toml)")
	}
	if c.API.Addr != "" && !httpguard.IsLoopbackAddr(c.API.Addr) && c.API.Token == "" && c.API.TokenFile == "" {
		return bad("api.addr %q is not a loopback address: set api.token_file (or SHOAL_API_TOKEN, or --api-token-file) so strangers cannot drive this node", c.API.Addr)
	}
	if c.API.RPCAddr != "" && !httpguard.IsLoopbackAddr(c.API.RPCAddr) && c.API.Token == "" && c.API.TokenFile == "" {
		return bad("api.rpc_addr %q is not a loopback address: set api.token_file (or SHOAL_API_TOKEN, or --api-token-file) so strangers cannot drive this node", c.API.RPCAddr)
	}
	if c.API.MaxConns <= 0 || c.API.GatewayMaxConns <= 0 {
		return bad("api.max_conns (%d) and api.gateway_max_conns (%d) must be positive", c.API.MaxConns, c.API.GatewayMaxConns)
	}
	if c.Store.CapacityBytes < 0 {
		return bad("store.capacity_bytes is negative: use 0 for unlimited")
	}
	if c.Transfer.NoProgressTimeout.Duration < 0 {
		return bad("transfer.no_progress_timeout is negative: use \"0s\" to never give up on a silent fetch")
	}
	if c.Transfer.SearchTimeout.Duration < 0 {
		return bad("transfer.search_timeout is negative: use \"0s\" to search until the fetch is cancelled")
	}
	if c.Transfer.MaxInflightSends < 0 {
		return bad("transfer.max_inflight_sends is negative: use 0 for the default")
	}
	if c.Transfer.UploadLimit < 0 {
		return bad("transfer.upload_limit is negative: use 0 for unlimited")
	}
	if c.Transfer.UploadTurns < 0 {
		return bad("transfer.upload_turns is negative: use 0 for no upload turns")
	}
	if c.Transfer.UploadSlots < 0 {
		return bad("transfer.upload_slots is negative: use 0 to size the slots from the uplink")
	}
	if c.Resources.ConnsLow <= 0 || c.Resources.ConnsHigh < c.Resources.ConnsLow {
		return bad("resources.conns_low (%d) and conns_high (%d) must be positive with low <= high", c.Resources.ConnsLow, c.Resources.ConnsHigh)
	}
	if c.Resources.MaxMemoryBytes < 64<<20 {
		return bad("resources.max_memory_bytes is %d: give at least 64 MiB (67108864)", c.Resources.MaxMemoryBytes)
	}
	if c.Resources.MaxFDs < 64 {
		return bad("resources.max_fds is %d: give at least 64", c.Resources.MaxFDs)
	}
	return nil
}

// ConfigFile is the name of the configuration file inside a home.
const ConfigFile = "config.toml"

// LoadConfig reads home/config.toml over the defaults. Errors name the
// file, the line and what is wrong.
func LoadConfig(home string) (Config, error) { return LoadConfigWith(home, nil) }

// LoadConfigWith is LoadConfig with overrides (command-line flags, a token
// from the environment or a file) applied before the result is validated,
// so a setting the file lacks can come from them: a config with a
// non-loopback api.addr loads when the token comes from SHOAL_API_TOKEN.
func LoadConfigWith(home string, override func(*Config) error) (Config, error) {
	cfg := DefaultConfig(home)
	path := filepath.Join(home, ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("%w: reading %s: %w", ErrConfig, path, err)
	}
	md, err := toml.Decode(string(b), &cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return cfg, fmt.Errorf("%w: %s line %d: %s", ErrConfig, path, pe.Position.Line, pe.Message)
		}
		return cfg, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return cfg, fmt.Errorf("%w: %s: unknown setting %s (see the comments in a fresh `shoal init` config for the valid ones)", ErrConfig, path, strings.Join(keys, ", "))
	}
	cfg.Home = home
	if override != nil {
		if err := override(&cfg); err != nil {
			return cfg, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// WriteConfig writes a commented config file for cfg into its home.
func WriteConfig(cfg Config) error {
	var b strings.Builder
	q := func(ss []string) string {
		parts := make([]string, len(ss))
		for i, s := range ss {
			parts[i] = fmt.Sprintf("%q", s)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	fmt.Fprintf(&b, `# shoal node configuration. Flags given to "shoal daemon" override it.

[network]
# libp2p listen addresses (TCP and QUIC). Port 0 picks a free port.
listen = %s
# Peers to join the DHT through: multiaddrs ending in /p2p/<peer-id>.
bootstrap = %s
# Find peers on the local network by multicast DNS.
mdns = %v
# "shoal": the fleet forms its own DHT (protocol prefix /shoal).
# "ipfs": join the public IPFS DHT and its bootstrap peers.
network = %q
# "server" answers DHT queries for others; "client" only asks.
dht_mode = %q
# Path to a pre-shared key file (libp2p PSK v1) for a private swarm.
# A private swarm speaks TCP only: QUIC listen addresses are ignored.
swarm_key = %q
# Speak shoal's swarm extension (/shoal/swarm/1.0.0) with other shoal
# nodes: availability maps instead of probes, upload slots (choking),
# peer exchange. Kubo and other Bitswap peers see plain Bitswap either way.
swarm_extension = %v

[api]
# HTTP API and dashboard. Keep it on loopback unless you set a token.
addr = %q
# HTTP gateway serving /ipfs/<cid>[/path], read-only.
gateway_addr = %q
# Bearer token required by the API; mandatory on non-loopback addresses.
# Prefer token_file, a file (mode 0600) whose first line is the token;
# set one of the two.
token = %q
token_file = %q
# Connections open at once on the API and on the gateway. Past the cap the
# connection idle the longest is closed; when all are busy, new ones wait.
max_conns = %d
gateway_max_conns = %d
# Kubo-compatible RPC (/api/v0) for IPFS Cluster and Kubo's CLI
# (ipfs --api /ip4/127.0.0.1/tcp/5001 ...); off unless set. Same rules as
# the API: a non-loopback address needs a token. IPFS Cluster cannot send
# the token, so give a cluster peer a tokenless loopback RPC.
%s

[store]
# Block storage limit in bytes; unpinned blocks are evicted least recently
# used first. 0 = unlimited.
capacity_bytes = %d
# fsync every block before acknowledging it, so blocks survive power loss.
# Without it a crash or kill -9 still leaves every block whole or absent
# (writes are renamed into place), and a restart after an unclean stop
# re-checks the newest blocks; see bench/blockstore.md for the cost.
sync = %v
# Ignored: every block read is re-hashed, and a corrupt one is dropped
# and fetched again. Kept so older config files load.
verify_on_read = %v

[transfer]
# Upload limit for the whole node in bytes per second. 0 = unlimited.
upload_limit = %d
# Peers running shoal are uploaded to a few at a time (BitTorrent's
# choking): this many, plus one rotating optimistic slot. 0 = sized from
# the uplink (one per 10 Mbit/s, at least 2). Kubo and other Bitswap
# peers are not limited.
upload_slots = %d
# Block sends to shoal peers written at once (upload turns). 0 = no turns,
# every unchoked peer is sent to at once. With turn_slices, a send slower
# than the uplink's rate goes on beside the next turn's. upload_turns = 3
# with turn_slices = true made a flash crowd's origin send 2.0 copies of
# the file instead of 2.3-2.9, at the same or up to 7 %% later completion
# (bench/sim.md, "turns"): for an origin whose egress costs more than time.
upload_turns = %d
turn_slices = %v
# Announce a root as soon as verified blocks of it arrive, so peers can
# fetch from this node while it is still downloading.
announce_while_fetching = %v
# End a fetch that received nothing new for this long (its peers take
# requests and never answer), with an error naming the CID and the peers.
# "0s" waits forever.
no_progress_timeout = %q
# How long a fetch searches the DHT and connected peers for one that has
# the content before it fails (shoal fetch --timeout overrides it).
# "0s" searches until the fetch is cancelled.
search_timeout = %q
# Keep a file "shoal fetch -o" writes in the page cache. false drops each
# stretch from the cache once it is synced: cheaper to write (far cheaper
# on a VM that backs memory on first touch) and no eviction of the rest
# of the cache; reading the file afterwards reads the disk.
cache_fetched_files = %v

[resources]
# Ceilings for what remote peers may make this node spend (the libp2p
# resource manager and connection manager).
max_memory_bytes = %d
max_fds = %d
conns_low = %d
conns_high = %d

[cluster]
# The IPFS Cluster peer (ipfs-cluster-service) that drives this node: its
# REST API as HOST:PORT, such as "127.0.0.1:9094". The dashboard then
# shows the cluster's replication of each pin. "" = no cluster.
rest_addr = %q
`, q(cfg.Network.Listen), q(cfg.Network.Bootstrap), cfg.Network.MDNS, cfg.Network.Network,
		cfg.Network.DHTMode, cfg.Network.SwarmKey, cfg.Network.SwarmExtension, cfg.API.Addr, cfg.API.GatewayAddr, cfg.API.Token, cfg.API.TokenFile,
		cfg.API.MaxConns, cfg.API.GatewayMaxConns, rpcAddrLine(cfg.API.RPCAddr),
		cfg.Store.CapacityBytes, cfg.Store.Sync, cfg.Store.VerifyOnRead, cfg.Transfer.UploadLimit,
		cfg.Transfer.UploadSlots, cfg.Transfer.UploadTurns, cfg.Transfer.TurnSlices, cfg.Transfer.AnnounceWhileFetching, cfg.Transfer.NoProgressTimeout.Duration.String(), cfg.Transfer.SearchTimeout.Duration.String(), cfg.Transfer.CacheFetchedFiles, cfg.Resources.MaxMemoryBytes, cfg.Resources.MaxFDs,
		cfg.Resources.ConnsLow, cfg.Resources.ConnsHigh, cfg.Cluster.RESTAddr)
	return writeFileAtomic(filepath.Join(cfg.Home, ConfigFile), []byte(b.String()), 0o600)
}

// rpcAddrLine is the config file's rpc_addr setting: commented out with
// Kubo's usual address when the RPC is off.
func rpcAddrLine(addr string) string {
	if addr == "" {
		return `# rpc_addr = "127.0.0.1:5001"`
	}
	return fmt.Sprintf("rpc_addr = %q", addr)
}

// writeFileAtomic writes data under a temporary name and renames it, so a
// crash leaves either the old file or the new one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReadTokenFile returns the API token held in the first line of path,
// without surrounding spaces.
func ReadTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("API token file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	tok := strings.TrimSpace(line)
	if tok == "" {
		return "", fmt.Errorf("API token file %s holds no token: write the token on its first line", path)
	}
	return tok, nil
}
