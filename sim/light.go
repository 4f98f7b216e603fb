package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	ma "github.com/multiformats/go-multiaddr"
)

// The light node mode (Plan.Transport "light", `shoal sim --light`): the
// same shoal nodes on the same libp2p host, swarm, resource manager,
// connection manager and gater, but the transport under them is
// lightTransport, whose connections are already "secure" and
// multiplexed: streams are in-process pipes through the shaped links of
// lightlink.go. No QUIC, no TLS, no packets: what a full simulated node
// spends on encryption, packet handling and per-connection QUIC state
// is gone, and the plan's bandwidths and latencies still hold.
//
// A light host listens on /ip4/<its simulated address>/tcp/8000: a plain
// address that every libp2p part (identify, the DHT's address filters,
// the dialer) takes as it is, dialled only by this transport (the hosts
// have no other).

// lightPort is every light host's port.
const lightPort = 8000

// handshakeTimeout is how long a dial to a host that cannot be reached
// (gone, or across a partition) takes to fail: quic-go's handshake idle
// timeout, what a full node's dial would wait for the lost packets.
const handshakeTimeout = 5 * time.Second

// lightEndpoint is one light host's access link and wire counters.
type lightEndpoint struct {
	addr     string // "ip:port", the key of simNet's maps
	maddr    ma.Multiaddr
	up, down *shaper
	sent     atomic.Int64
	rcvd     atomic.Int64
}

func newLightEndpoint(ip net.IP, upMbit, downMbit float64) (*lightEndpoint, error) {
	maddr, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/%s/tcp/%d", ip, lightPort))
	if err != nil {
		return nil, err
	}
	ep := &lightEndpoint{addr: net.JoinHostPort(ip.String(), strconv.Itoa(lightPort)), maddr: maddr}
	ep.up = &shaper{bytesPerS: upMbit * 1e6 / 8, crossed: &ep.sent,
		done: func(q *linkQueue, s *seg) { q.h.uplinkDone(s) }}
	ep.down = &shaper{bytesPerS: downMbit * 1e6 / 8, crossed: &ep.rcvd,
		done: func(q *linkQueue, s *seg) { q.h.downlinkDone(s) }}
	return ep, nil
}

func (ep *lightEndpoint) stop() {
	ep.up.stop()
	ep.down.stop()
}

// lightKey is the "ip:port" of a light address, or false if a is not one.
func lightKey(a ma.Multiaddr) (string, bool) {
	ps := a.Protocols()
	if len(ps) != 2 || ps[0].Code != ma.P_IP4 || ps[1].Code != ma.P_TCP {
		return "", false
	}
	ip, err := a.ValueForProtocol(ma.P_IP4)
	if err != nil {
		return "", false
	}
	port, err := a.ValueForProtocol(ma.P_TCP)
	if err != nil {
		return "", false
	}
	return net.JoinHostPort(ip, port), true
}

// lightTransport is a light host's only transport.
type lightTransport struct {
	net   *simNet
	ep    *lightEndpoint
	id    peer.ID
	pub   crypto.PubKey
	rcmgr network.ResourceManager
	gater connmgr.ConnectionGater
}

var _ transport.Transport = (*lightTransport)(nil)

func (t *lightTransport) CanDial(a ma.Multiaddr) bool {
	_, ok := lightKey(a)
	return ok
}

func (t *lightTransport) Protocols() []int { return []int{ma.P_TCP} }
func (t *lightTransport) Proxy() bool      { return false }

// errUnreachable is a dial to a host that is gone or across a partition,
// after handshakeTimeout.
var errUnreachable = errors.New("sim: light dial: no answer (host gone or across a partition)")

// Dial opens a connection after one round trip (a QUIC handshake's), with
// the resource manager's outbound scope as the QUIC transport opens it.
func (t *lightTransport) Dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (transport.CapableConn, error) {
	scope, err := t.rcmgr.OpenConnection(network.DirOutbound, false, raddr)
	if err != nil {
		return nil, err
	}
	c, err := t.dial(ctx, raddr, p, scope)
	if err != nil {
		scope.Done()
		return nil, err
	}
	return c, nil
}

func (t *lightTransport) dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID, scope network.ConnManagementScope) (*lconn, error) {
	if err := scope.SetPeer(p); err != nil {
		return nil, err
	}
	key, ok := lightKey(raddr)
	if !ok {
		return nil, fmt.Errorf("sim: light transport cannot dial %s", raddr)
	}
	ln := t.net.lightListener(key)
	if ln == nil || !t.net.reachable(t.ep.addr, key) {
		if err := sleepCtx(ctx, handshakeTimeout); err != nil {
			return nil, err
		}
		return nil, errUnreachable
	}
	lat := t.net.oneWay(t.ep.addr, key)
	if err := sleepCtx(ctx, 2*lat); err != nil {
		return nil, err
	}
	if !t.net.reachable(t.ep.addr, key) || ln.closed() {
		return nil, errUnreachable
	}
	if ln.t.id != p {
		return nil, fmt.Errorf("sim: light dial %s: the host there is %s, not %s", raddr, ln.t.id, p)
	}
	pair := newLConnPair(t.ep, ln.t.ep, lat)
	client := &lconn{pair: pair, side: 0, t: t, scope: scope, remote: ln.t.id, remotePub: ln.t.pub,
		laddr: t.ep.maddr, raddr: ln.t.ep.maddr}
	server, err := ln.admit(pair, t)
	if err != nil {
		return nil, err
	}
	if t.gater != nil && !t.gater.InterceptSecured(network.DirOutbound, p, client) {
		server.closeWith(errConnClosed)
		return nil, errors.New("sim: light dial: secured connection gated")
	}
	ln.push(server)
	return client, nil
}

func (t *lightTransport) Listen(laddr ma.Multiaddr) (transport.Listener, error) {
	key, ok := lightKey(laddr)
	if !ok || key != t.ep.addr {
		return nil, fmt.Errorf("sim: light transport listens on %s only, not %s", t.ep.maddr, laddr)
	}
	ln := &lightListener{t: t}
	if err := t.net.addLightListener(key, ln); err != nil {
		return nil, err
	}
	return ln, nil
}

// lightListener hands a host the connections dialled to it.
type lightListener struct {
	t *lightTransport

	mu       sync.Mutex
	changed  signal
	pending  []*lconn
	isClosed bool
}

var _ transport.Listener = (*lightListener)(nil)

// admit builds the accepting end of a dialled connection, with its own
// inbound scope and the gater's verdict.
func (ln *lightListener) admit(pair *lconnPair, dialer *lightTransport) (*lconn, error) {
	t := ln.t
	scope, err := t.rcmgr.OpenConnection(network.DirInbound, false, dialer.ep.maddr)
	if err != nil {
		return nil, fmt.Errorf("sim: light dial refused by %s: %w", t.id, err)
	}
	if err := scope.SetPeer(dialer.id); err != nil {
		scope.Done()
		return nil, fmt.Errorf("sim: light dial refused by %s: %w", t.id, err)
	}
	c := &lconn{pair: pair, side: 1, t: t, scope: scope, remote: dialer.id, remotePub: dialer.pub,
		laddr: t.ep.maddr, raddr: dialer.ep.maddr}
	if t.gater != nil && !(t.gater.InterceptAccept(c) && t.gater.InterceptSecured(network.DirInbound, dialer.id, c)) {
		scope.Done()
		return nil, errors.New("sim: light dial: connection gated by the listener")
	}
	return c, nil
}

func (ln *lightListener) push(c *lconn) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.isClosed {
		c.closeWith(errConnClosed)
		return
	}
	ln.pending = append(ln.pending, c)
	ln.changed.broadcast()
}

func (ln *lightListener) Accept() (transport.CapableConn, error) {
	ln.mu.Lock()
	for {
		if ln.isClosed {
			ln.mu.Unlock()
			return nil, transport.ErrListenerClosed
		}
		if len(ln.pending) > 0 {
			c := ln.pending[0]
			ln.pending[0] = nil
			ln.pending = ln.pending[1:]
			ln.mu.Unlock()
			return c, nil
		}
		ch := ln.changed.wait()
		ln.mu.Unlock()
		<-ch
		ln.mu.Lock()
	}
}

func (ln *lightListener) closed() bool {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	return ln.isClosed
}

func (ln *lightListener) Close() error {
	ln.mu.Lock()
	if ln.isClosed {
		ln.mu.Unlock()
		return nil
	}
	ln.isClosed = true
	pending := ln.pending
	ln.pending = nil
	ln.changed.broadcast()
	ln.mu.Unlock()
	for _, c := range pending {
		c.closeWith(errConnClosed)
	}
	ln.t.net.removeLightListener(ln.t.ep.addr, ln)
	return nil
}

func (ln *lightListener) Addr() net.Addr {
	h, p, _ := net.SplitHostPort(ln.t.ep.addr)
	port, _ := strconv.Atoi(p)
	return &net.TCPAddr{IP: net.ParseIP(h), Port: port}
}

func (ln *lightListener) Multiaddr() ma.Multiaddr { return ln.t.ep.maddr }

// errConnClosed is what the streams of a closed light connection return.
var errConnClosed = &network.StreamError{ErrorCode: 0, Remote: true, TransportError: errors.New("sim: light connection closed")}

// lconnPair is what the two ends of a light connection share.
type lconnPair struct {
	out, back *lightPath // from the dialer and to it

	mu      sync.Mutex
	changed signal
	accept  [2][]*lend // streams opened by the other side, not yet accepted
	streams map[*lstream]struct{}
	closed  bool
}

func newLConnPair(dialer, listener *lightEndpoint, lat time.Duration) *lconnPair {
	return &lconnPair{
		out: newLightPath(dialer, listener, lat), back: newLightPath(listener, dialer, lat),
		streams: map[*lstream]struct{}{},
	}
}

func (c *lconnPair) forget(st *lstream) {
	c.mu.Lock()
	delete(c.streams, st)
	c.mu.Unlock()
}

// lconn is one end of a light connection: transport.CapableConn.
type lconn struct {
	pair      *lconnPair
	side      int // 0 dialled, 1 accepted
	t         *lightTransport
	scope     network.ConnManagementScope
	remote    peer.ID
	remotePub crypto.PubKey
	laddr     ma.Multiaddr
	raddr     ma.Multiaddr
	scopeDone atomic.Bool
}

var _ transport.CapableConn = (*lconn)(nil)

func (c *lconn) OpenStream(ctx context.Context) (network.MuxedStream, error) {
	p := c.pair
	out, back := p.out, p.back
	if c.side == 1 {
		out, back = back, out
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errConnClosed
	}
	st := newLStream(p, out, back)
	p.streams[st] = struct{}{}
	p.accept[1-c.side] = append(p.accept[1-c.side], &st.ends[1])
	p.changed.broadcast()
	return &st.ends[0], nil
}

func (c *lconn) AcceptStream() (network.MuxedStream, error) {
	p := c.pair
	p.mu.Lock()
	for {
		if q := p.accept[c.side]; len(q) > 0 {
			e := q[0]
			q[0] = nil
			p.accept[c.side] = q[1:]
			p.mu.Unlock()
			return e, nil
		}
		if p.closed {
			p.mu.Unlock()
			return nil, errConnClosed
		}
		ch := p.changed.wait()
		p.mu.Unlock()
		<-ch
		p.mu.Lock()
	}
}

// closeWith closes the connection for both ends: every stream is reset
// and the other end's AcceptStream fails, which makes its swarm close
// it (and release its scope).
func (c *lconn) closeWith(err error) {
	p := c.pair
	p.mu.Lock()
	var streams []*lstream
	if !p.closed {
		p.closed = true
		for st := range p.streams {
			streams = append(streams, st)
		}
		p.streams = nil
		p.accept = [2][]*lend{}
		p.changed.broadcast()
	}
	p.mu.Unlock()
	for _, st := range streams {
		st.reset(err)
	}
	if c.scopeDone.CompareAndSwap(false, true) {
		c.scope.Done()
	}
}

func (c *lconn) Close() error { c.closeWith(errConnClosed); return nil }
func (c *lconn) CloseWithError(network.ConnErrorCode) error {
	c.closeWith(errConnClosed)
	return nil
}

func (c *lconn) IsClosed() bool {
	c.pair.mu.Lock()
	defer c.pair.mu.Unlock()
	return c.pair.closed
}

func (c *lconn) As(any) bool                    { return false }
func (c *lconn) LocalPeer() peer.ID             { return c.t.id }
func (c *lconn) RemotePeer() peer.ID            { return c.remote }
func (c *lconn) RemotePublicKey() crypto.PubKey { return c.remotePub }
func (c *lconn) LocalMultiaddr() ma.Multiaddr   { return c.laddr }
func (c *lconn) RemoteMultiaddr() ma.Multiaddr  { return c.raddr }
func (c *lconn) Scope() network.ConnScope       { return c.scope }
func (c *lconn) Transport() transport.Transport { return c.t }
func (c *lconn) ConnState() network.ConnectionState {
	return network.ConnectionState{Transport: "sim-light"}
}

// lightTransport is the constructor libp2p.Transport calls for a light
// host on ep (libp2p supplies the host's key, resource manager and
// gater).
func (n *simNet) lightTransport(ep *lightEndpoint) func(crypto.PrivKey, network.ResourceManager, connmgr.ConnectionGater) (*lightTransport, error) {
	return func(key crypto.PrivKey, rm network.ResourceManager, g connmgr.ConnectionGater) (*lightTransport, error) {
		id, err := peer.IDFromPrivateKey(key)
		if err != nil {
			return nil, err
		}
		return &lightTransport{net: n, ep: ep, id: id, pub: key.GetPublic(), rcmgr: rm, gater: g}, nil
	}
}

func (n *simNet) lightListener(key string) *lightListener {
	n.lightMu.Lock()
	defer n.lightMu.Unlock()
	return n.lights[key]
}

func (n *simNet) addLightListener(key string, ln *lightListener) error {
	n.lightMu.Lock()
	defer n.lightMu.Unlock()
	if n.lights[key] != nil {
		return fmt.Errorf("sim: light address %s is taken", key)
	}
	n.lights[key] = ln
	return nil
}

func (n *simNet) removeLightListener(key string, ln *lightListener) {
	n.lightMu.Lock()
	defer n.lightMu.Unlock()
	if n.lights[key] == ln {
		delete(n.lights, key)
	}
}
