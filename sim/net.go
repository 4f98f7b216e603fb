package sim

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/marcopolo/simnet"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/quic-go/quic-go"
	"go.uber.org/fx"
)

// simNet is the shaped network every simulated host sits on: one simnet
// router, a link (uplink and downlink shaping) per host, a latency per
// pair of regions, and a partition that drops packets and refuses
// connections between the two sides while it lasts.
type simNet struct {
	sn *simnet.Simnet // nil for light hosts (light.go)
	// light: every host is a light host (Plan.Transport "light"): its
	// streams go through lightlink.go's shaped links, not simnet.
	light bool
	// lights are the light hosts' listeners by "ip:port".
	lightMu sync.Mutex
	lights  map[string]*lightListener
	// epMu serializes simnet.NewEndpoint, which writes the simnet's
	// endpoint table without a lock (simnet v0.0.7), while hosts start
	// concurrently.
	epMu sync.Mutex

	mu      sync.RWMutex
	region  map[string]string   // "ip:port" → region name
	access  map[string]int64    // "ip:port" → one-way latency of its own link, ns
	latency map[[2]string]int64 // one-way latency in ns between two regions
	side    map[string]int      // "ip:port" → partition side; empty when healed
	bySide  map[peer.ID]int
	dead    map[string]bool // "ip:port" of hosts that left: all their packets are lost
	deadIDs map[peer.ID]bool
}

func newSimNet(latency map[[2]string]time.Duration) *simNet {
	classicKeyExchange.Do(useClassicKeyExchange)
	n := newNet(latency)
	n.sn = &simnet.Simnet{LatencyFunc: n.packetLatency}
	// simnet logs every packet to a host that has left at Error level.
	n.sn.Logger = slog.New(slog.DiscardHandler)
	return n
}

// newLightNet is the network of light hosts: the same addresses,
// latencies, partitions and departures, links of lightlink.go.
func newLightNet(latency map[[2]string]time.Duration) *simNet {
	n := newNet(latency)
	n.light = true
	n.lights = map[string]*lightListener{}
	return n
}

// start starts the packet simulation (full hosts).
func (n *simNet) start() {
	if n.sn != nil {
		n.sn.Start()
	}
}

// close stops it.
func (n *simNet) close() {
	if n.sn != nil {
		n.sn.Close()
	}
}

func newNet(latency map[[2]string]time.Duration) *simNet {
	n := &simNet{
		region:  map[string]string{},
		access:  map[string]int64{},
		latency: map[[2]string]int64{},
		bySide:  map[peer.ID]int{},
		dead:    map[string]bool{},
		deadIDs: map[peer.ID]bool{},
	}
	for k, d := range latency {
		n.latency[k] = int64(d)
	}
	return n
}

// classicKeyExchange: simulated hosts handshake with X25519 alone, not
// Go's default hybrid X25519MLKEM768, whose keys are the largest part of
// a connection's handshake state (and its ClientHello 1.1 KB longer);
// what is simulated is shoal over a link, not post-quantum key exchange.
// GODEBUG is the only switch crypto/tls has (libp2p builds the TLS
// config), read at each handshake, so it is set for the whole process,
// unless the user set tlsmlkem themselves.
var classicKeyExchange sync.Once

func useClassicKeyExchange() {
	cur := os.Getenv("GODEBUG")
	if strings.Contains(cur, "tlsmlkem=") {
		return
	}
	if cur != "" {
		cur += ","
	}
	_ = os.Setenv("GODEBUG", cur+"tlsmlkem=0")
}

// dropLatency is how long a packet crossing a partition is held: far
// past any QUIC timeout, so to the hosts it is lost.
const dropLatency = 24 * time.Hour

func (n *simNet) packetLatency(p *simnet.Packet) time.Duration {
	from, to := p.From.String(), p.To.String()
	n.mu.RLock()
	defer n.mu.RUnlock()
	if !n.reachableLocked(from, to) {
		return dropLatency
	}
	return n.oneWayLocked(from, to)
}

// reachable reports whether from can reach to (both "ip:port"): neither
// has left and no partition is between them.
func (n *simNet) reachable(from, to string) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.reachableLocked(from, to)
}

func (n *simNet) reachableLocked(from, to string) bool {
	return (n.side == nil || n.side[from] == n.side[to]) && !n.dead[from] && !n.dead[to]
}

// oneWay is the latency from one host to another.
func (n *simNet) oneWay(from, to string) time.Duration {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.oneWayLocked(from, to)
}

func (n *simNet) oneWayLocked(from, to string) time.Duration {
	// A packet pays both ends' access links and the one-way latency
	// between their regions.
	d := n.access[from] + n.access[to]
	a, b := n.region[from], n.region[to]
	if r, ok := n.latency[[2]string{a, b}]; ok {
		d += r
	} else {
		d += n.latency[[2]string{b, a}]
	}
	return time.Duration(d)
}

// A simulated host keeps at most simConnsHigh connections, trimming to
// simConnsLow the least useful ones older than simConnGrace, as a real
// node's connection manager does (node: resources.conns_low/high, 256
// and 512 by default). Without it a 1 + 100 flash crowd is a full mesh
// (120 connections per node, duplicates included: DHT walks, provider
// lookups and announcements, Bitswap), and a connection costs about
// 86 KB (QUIC and TLS state, and the stacks of the goroutines of its
// streams): at 1,000 nodes a full mesh alone is far past the 20 MiB a
// simulated node may use (bench/sim.md). Whether trimming keeps a large
// swarm near these numbers is not measured yet; plans of up to about 50
// nodes stay below the high mark and are never trimmed.
const (
	simConnsLow  = 32
	simConnsHigh = 64
	simConnGrace = 10 * time.Second
)

// simMaxOutbound is how many connections a simulated host opens itself,
// dials in progress included: a dial past it fails at once (libp2p's
// resource manager, every other limit of it infinite). Connections others
// open to it are always accepted, so a joining node still reaches its
// bootstrap peer, and the average host holds at most twice this many.
// Connections are most of a simulated node's memory (≈ 150 KB each:
// QUIC and TLS state, and the stacks of ≈ 8.6 goroutines of the
// connection and its streams), and without a bound a flash crowd of 200
// opened 104 per node in its first simulated second (DHT walks, and the
// swarm extension's peer exchange dialling every peer it hears of):
// bench/sim.md, "Where the memory goes per node, 1 + 199".
const simMaxOutbound = 24

// simInflightSends is how many Bitswap responses a simulated node writes
// at once (node: transfer.max_inflight_sends; the protocol's default is
// 32). A response holds its block twice (the copy read from the store and
// the encoded frame, 2 MiB for a 1 MiB block) until the peer has read it,
// and at 20 Mbit/s a block takes 0.4 s to go: 32 of them made the sends
// the largest part of a simulated node's heap. With 4, flash-crowd-30's
// p50 and the seeder's bytes up were both lower than with 32 (one run
// each, bench/sim.md).
const simInflightSends = 4

// hostSpec says where a host sits and how its link is shaped.
type hostSpec struct {
	index int // picks the key and, unless addrIndex is set, the address
	// addrIndex, when not 0, picks the address instead: a restarted
	// node keeps its key (index) on a fresh address.
	addrIndex int
	region    string
	upMbit    float64
	downMbit  float64
	latency   time.Duration // one-way, of its own access link
	seed      uint64
}

// simHost is one host and the endpoint it sends through, whose byte
// counters are the node's wire traffic.
type simHost struct {
	host  host.Host
	proto protoCounter    // its stream bytes by protocol
	conn  *simnet.SimConn // a full host's socket
	light *lightEndpoint  // or a light host's link
	addr  string          // /ip4/.../udp/8000/quic-v1/p2p/<id> (light: /ip4/.../tcp/8000/p2p/<id>)
}

// key is the host's "ip:port", the key of simNet's maps.
func (sh *simHost) key() string {
	if sh.light != nil {
		return sh.light.addr
	}
	return sh.conn.LocalAddr().String()
}

// traffic is the host's wire bytes up and down so far.
func (sh *simHost) traffic() (up, down int64) {
	if sh.light != nil {
		return sh.light.sent.Load(), sh.light.rcvd.Load()
	}
	if sh.conn == nil {
		return 0, 0
	}
	st := sh.conn.Stats()
	return int64(st.BytesSent), int64(st.BytesRcvd)
}

// protoCounter is a libp2p bandwidth reporter that adds up a host's
// stream bytes by protocol ID: the swarm calls it on every stream read
// and write, once the stream's protocol is set (before that, while
// multistream-select negotiates it on an inbound stream, the protocol is
// ""). What the host's link carried beyond the sum is transport: QUIC's
// packet headers, framing, ACKs and handshakes (full hosts), nothing on
// a light host. libp2p's own metrics.BandwidthCounter would do too, but
// it meters rates on a shared wall-clock ticker; totals are all the
// report needs.
type protoCounter struct {
	mu sync.Mutex
	by map[protocol.ID]*[2]int64 // up, down
}

func (c *protoCounter) log(n int64, p protocol.ID, dir int) {
	c.mu.Lock()
	if c.by == nil {
		c.by = map[protocol.ID]*[2]int64{}
	}
	v := c.by[p]
	if v == nil {
		v = new([2]int64)
		c.by[p] = v
	}
	v[dir] += n
	c.mu.Unlock()
}

// bytes is the count so far, by protocol ("" named negotiationProtocol).
func (c *protoCounter) bytes() map[string]ProtoBytes {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]ProtoBytes, len(c.by))
	for p, v := range c.by {
		name := string(p)
		if name == "" {
			name = negotiationProtocol
		}
		out[name] = ProtoBytes{Up: v[0], Down: v[1]}
	}
	return out
}

func (c *protoCounter) LogSentMessage(int64) {}
func (c *protoCounter) LogRecvMessage(int64) {}
func (c *protoCounter) LogSentMessageStream(n int64, p protocol.ID, _ peer.ID) {
	c.log(n, p, 0)
}
func (c *protoCounter) LogRecvMessageStream(n int64, p protocol.ID, _ peer.ID) {
	c.log(n, p, 1)
}

// The queries of metrics.Reporter: nothing in the sim asks them.
func (c *protoCounter) GetBandwidthForPeer(peer.ID) metrics.Stats         { return metrics.Stats{} }
func (c *protoCounter) GetBandwidthForProtocol(protocol.ID) metrics.Stats { return metrics.Stats{} }
func (c *protoCounter) GetBandwidthTotals() metrics.Stats                 { return metrics.Stats{} }
func (c *protoCounter) GetBandwidthByPeer() map[peer.ID]metrics.Stats     { return nil }
func (c *protoCounter) GetBandwidthByProtocol() map[protocol.ID]metrics.Stats {
	return nil
}
func (c *protoCounter) Reset()             {}
func (c *protoCounter) TrimIdle(time.Time) {}

// newHost builds a real libp2p host (QUIC, TLS, identify, the connection
// gater) whose UDP socket is a shaped simnet endpoint, or on a light
// network the same host on the light transport.
func (n *simNet) newHost(spec hostSpec) (*simHost, error) {
	ip := simnet.IntToPublicIPv4(spec.index)
	if spec.addrIndex != 0 {
		ip = simnet.IntToPublicIPv4(spec.addrIndex)
	}
	port := 8000
	if n.light {
		port = lightPort
	}
	at := (&net.UDPAddr{IP: ip, Port: port}).String()
	n.mu.Lock()
	n.region[at] = spec.region
	n.access[at] = int64(spec.latency)
	n.mu.Unlock()

	// Keys come from the plan's seed, so peer IDs (and so DHT distances)
	// are the same in every run of a plan.
	r := rand.New(rand.NewPCG(spec.seed, uint64(spec.index)))
	var seed [ed25519.SeedSize]byte
	for i := range seed {
		seed[i] = byte(r.Uint32())
	}
	key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		return nil, err
	}
	sh := &simHost{}
	var listen string
	var transport []libp2p.Option
	if n.light {
		if sh.light, err = newLightEndpoint(ip, spec.upMbit, spec.downMbit); err != nil {
			return nil, err
		}
		listen = sh.light.maddr.String()
		transport = []libp2p.Option{libp2p.Transport(n.lightTransport(sh.light))}
	} else {
		link := simnet.NodeBiDiLinkSettings{
			Uplink:   simnet.LinkSettings{BitsPerSecond: int(spec.upMbit * 1e6)},
			Downlink: simnet.LinkSettings{BitsPerSecond: int(spec.downMbit * 1e6)},
		}
		listen = fmt.Sprintf("/ip4/%s/udp/8000/quic-v1", ip)
		transport = []libp2p.Option{libp2p.Transport(libp2pquic.NewTransport), n.quicReuse(link, sh)}
	}
	cm, err := connmgr.NewConnManager(simConnsLow, simConnsHigh, connmgr.WithGracePeriod(simConnGrace))
	if err != nil {
		return nil, fmt.Errorf("sim: host %d: connection manager: %w", spec.index, err)
	}
	rm, err := outboundLimit()
	if err != nil {
		_ = cm.Close()
		return nil, fmt.Errorf("sim: host %d: resource manager: %w", spec.index, err)
	}
	h, err := libp2p.New(append(transport,
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(listen),
		libp2p.DisableRelay(),
		// Address discovery through identify stalls synctest bubbles
		// (see go-libp2p x/simlibp2p).
		libp2p.DisableIdentifyAddressDiscovery(),
		// The host closes it.
		libp2p.ResourceManager(rm),
		// The host closes it.
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(gater{n}),
		libp2p.UserAgent("shoal-sim"),
		libp2p.BandwidthReporter(&sh.proto),
	)...)
	if err != nil {
		_ = cm.Close()
		_ = rm.Close()
		return nil, fmt.Errorf("sim: host %d on %s: %w", spec.index, listen, err)
	}
	sh.host = h
	sh.addr = listen + "/p2p/" + h.ID().String()
	return sh, nil
}

// outboundLimit is a resource manager that bounds a host's outbound
// connections to simMaxOutbound and nothing else.
func outboundLimit() (network.ResourceManager, error) {
	limits := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{ConnsOutbound: simMaxOutbound},
	}.Build(rcmgr.InfiniteLimits)
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits))
}

// quicReuse makes the QUIC transport open its socket on the simnet rather
// than the OS, as go-libp2p's x/simlibp2p does.
func (n *simNet) quicReuse(link simnet.NodeBiDiLinkSettings, sh *simHost) libp2p.Option {
	sel := &fixedSourceIP{}
	opts := []quicreuse.Option{
		quicreuse.OverrideSourceIPSelector(func() (quicreuse.SourceIPSelector, error) { return sel, nil }),
		quicreuse.OverrideListenUDP(func(_ string, addr *net.UDPAddr) (net.PacketConn, error) {
			sel.ip = addr.IP
			n.epMu.Lock()
			sh.conn = n.sn.NewEndpoint(addr, link)
			n.epMu.Unlock()
			return sh.conn, nil
		}),
	}
	return libp2p.QUICReuse(func(l fx.Lifecycle, reset quic.StatelessResetKey, tok quic.TokenGeneratorKey, o ...quicreuse.Option) (*quicreuse.ConnManager, error) {
		cm, err := quicreuse.NewConnManager(reset, tok, o...)
		if err != nil {
			return nil, err
		}
		// A conn manager passed in this way is not closed by libp2p.
		l.Append(fx.StopHook(cm.Close))
		return cm, nil
	}, opts...)
}

type fixedSourceIP struct{ ip net.IP }

func (s *fixedSourceIP) PreferredSourceIPForDestination(*net.UDPAddr) (net.IP, error) {
	return s.ip, nil
}

// partition splits the hosts into sides: packets between sides are lost
// and new connections between them are refused. Existing connections
// across the split are closed.
func (n *simNet) partition(sides map[*simHost]int) {
	n.mu.Lock()
	n.side = map[string]int{}
	n.bySide = map[peer.ID]int{}
	for h, s := range sides {
		n.side[h.key()] = s
		n.bySide[h.host.ID()] = s
	}
	n.mu.Unlock()
	for h, s := range sides {
		for _, c := range h.host.Network().Conns() {
			if other, ok := n.sideOf(c.RemotePeer()); ok && other != s {
				_ = c.Close()
			}
		}
	}
}

// isolate takes a host off the network, as if its machine went away: its
// connections are closed (their close frames still go out), then every
// packet to or from it is lost and no connection to it is accepted. The
// node itself is closed later (see run.leave).
func (n *simNet) isolate(h *simHost) {
	for _, c := range h.host.Network().Conns() {
		_ = c.Close()
	}
	n.mu.Lock()
	n.dead[h.key()] = true
	n.deadIDs[h.host.ID()] = true
	n.mu.Unlock()
}

// revive lets a peer that was isolated connect again (from a fresh
// address: the old one stays dead).
func (n *simNet) revive(id peer.ID) {
	n.mu.Lock()
	delete(n.deadIDs, id)
	// Its side in a partition came with its old address; it rejoins on
	// the side of its new one.
	delete(n.bySide, id)
	n.mu.Unlock()
}

// heal ends the partition.
func (n *simNet) heal() {
	n.mu.Lock()
	n.side = nil
	n.bySide = map[peer.ID]int{}
	n.mu.Unlock()
}

func (n *simNet) sideOf(p peer.ID) (int, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	s, ok := n.bySide[p]
	return s, ok
}

// gater refuses connections across a partition.
type gater struct{ n *simNet }

func (g gater) allowed(local, remote peer.ID) bool {
	g.n.mu.RLock()
	dead := g.n.deadIDs[local] || g.n.deadIDs[remote]
	g.n.mu.RUnlock()
	if dead {
		return false
	}
	a, okA := g.n.sideOf(local)
	b, okB := g.n.sideOf(remote)
	return !okA || !okB || a == b
}

func (g gater) InterceptPeerDial(peer.ID) bool { return true }
func (g gater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool {
	return true
}
func (g gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }
func (g gater) InterceptSecured(_ network.Direction, p peer.ID, c network.ConnMultiaddrs) bool {
	return true
}
func (g gater) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	return g.allowed(c.LocalPeer(), c.RemotePeer()), 0
}
