package protocol

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
)

// Bitswap protocol IDs, newest first: the order in which we offer them when
// opening a stream.
const (
	ProtocolBitswap        libp2pproto.ID = "/ipfs/bitswap/1.2.0"
	ProtocolBitswapOneOne  libp2pproto.ID = "/ipfs/bitswap/1.1.0"
	ProtocolBitswapOneZero libp2pproto.ID = "/ipfs/bitswap/1.0.0"
	ProtocolBitswapNoVers  libp2pproto.ID = "/ipfs/bitswap"
)

var bitswapProtocols = []libp2pproto.ID{
	ProtocolBitswap, ProtocolBitswapOneOne, ProtocolBitswapOneZero, ProtocolBitswapNoVers,
}

// ErrNetworkClosed is returned by Send after Close.
var ErrNetworkClosed = errors.New("protocol: network closed")

// errSenderGone: the peer disconnected while a send was being set up; the
// caller retries once with a fresh sender.
var errSenderGone = errors.New("protocol: peer sender closed")

// Receiver gets the messages peers send. ReceiveMessage is called from the
// stream's read loop, so it must not block for long: slow receivers slow
// that peer's stream (which is the intended back-pressure) but nothing else.
//
// Ownership: the receiver may keep m, its slices and its CIDs after the
// call, except the bytes of its blocks: each Block's Data points into the
// Network's pooled frame buffer, which is reused for the next frame as
// soon as ReceiveMessage returns (rxFrame). A receiver that needs block
// bytes later copies them during the call; the Client hands them to its
// Blocks store, which must not keep the slice either (Blocks).
type Receiver interface {
	ReceiveMessage(ctx context.Context, from peer.ID, m *Message)
}

// PeerListener hears when a peer becomes connected (first non-limited
// connection) and disconnected (last connection closed). Calls for one
// listener come from a single goroutine, in order, never concurrently.
type PeerListener interface {
	PeerConnected(p peer.ID)
	PeerDisconnected(p peer.ID)
}

// NetworkConfig configures a Network.
type NetworkConfig struct {
	// SendTimeout is the write deadline for a small message; larger ones get
	// SendTimeout + size/MinSendRate, capped at MaxSendTimeout.
	SendTimeout    time.Duration
	MinSendRate    int // bytes per second
	MaxSendTimeout time.Duration
	// NewStreamTimeout bounds opening a stream (and dialling, if needed).
	NewStreamTimeout time.Duration
	// MaxInboundStreamsPerPeer bounds concurrent inbound Bitswap streams per
	// peer; each can hold up to one read message in memory, and the peer's
	// streams together one more large one being dispatched (rxBudget).
	MaxInboundStreamsPerPeer int
	Logger                   *slog.Logger
}

// DefaultNetworkConfig returns the defaults.
func DefaultNetworkConfig() NetworkConfig {
	return NetworkConfig{
		SendTimeout:              10 * time.Second,
		MinSendRate:              64 << 10,
		MaxSendTimeout:           2 * time.Minute,
		NewStreamTimeout:         15 * time.Second,
		MaxInboundStreamsPerPeer: 32,
		Logger:                   slog.New(slog.DiscardHandler),
	}
}

// Validate reports the first invalid field.
func (c NetworkConfig) Validate() error {
	switch {
	case c.SendTimeout <= 0:
		return errors.New("protocol: NetworkConfig.SendTimeout must be positive")
	case c.MinSendRate <= 0:
		return errors.New("protocol: NetworkConfig.MinSendRate must be positive")
	case c.MaxSendTimeout < c.SendTimeout:
		return errors.New("protocol: NetworkConfig.MaxSendTimeout must be at least SendTimeout")
	case c.NewStreamTimeout <= 0:
		return errors.New("protocol: NetworkConfig.NewStreamTimeout must be positive")
	case c.MaxInboundStreamsPerPeer <= 0:
		return errors.New("protocol: NetworkConfig.MaxInboundStreamsPerPeer must be positive")
	case c.Logger == nil:
		return errors.New("protocol: NetworkConfig.Logger must be set (use slog.New(slog.DiscardHandler) for none)")
	}
	return nil
}

// Network speaks Bitswap on a libp2p host: it reads messages from inbound
// streams and hands wants to the server and blocks/presences to the client,
// keeps two reusable outbound streams per peer for Send (bulk, control), tracks peer
// connect/disconnect, and counts traffic per peer.
type Network struct {
	h   host.Host
	cfg NetworkConfig
	log *slog.Logger

	ctx    context.Context // canceled by Close; passed to receivers
	cancel context.CancelFunc

	// Set before Start, read-only afterwards.
	server, client Receiver
	listeners      []PeerListener

	mu             sync.Mutex
	started        bool
	closed         bool
	senders        map[senderKey]*peerSender
	inbound        map[network.Stream]struct{}
	inboundPerPeer map[peer.ID]*inboundPeer
	handlers       sync.WaitGroup // inbound stream handlers in flight

	events *peerEvents
	loop   sync.WaitGroup // the peer event loop
	notif  *network.NotifyBundle

	traffic trafficCounters
}

// NewNetwork returns a Network on h; call SetReceivers and AddPeerListener,
// then Start.
func NewNetwork(h host.Host, cfg NetworkConfig) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Network{
		h: h, cfg: cfg, log: cfg.Logger,
		ctx: ctx, cancel: cancel,
		senders:        make(map[senderKey]*peerSender),
		inbound:        make(map[network.Stream]struct{}),
		inboundPerPeer: make(map[peer.ID]*inboundPeer),
		events:         newPeerEvents(),
		traffic:        newTrafficCounters(),
	}
	return n, nil
}

// SetReceivers sets where messages go: entries of a wantlist (and a Full
// flag) to server, blocks, presences and pendingBytes to client. A message
// carrying both is split in two. Either may be nil (that part is dropped).
// Call before Start.
func (n *Network) SetReceivers(server, client Receiver) {
	n.server, n.client = server, client
}

// AddPeerListener adds a listener for peer connect/disconnect. Call before Start.
func (n *Network) AddPeerListener(l PeerListener) {
	n.listeners = append(n.listeners, l)
}

// Self is the local peer ID.
func (n *Network) Self() peer.ID { return n.h.ID() }

// Start registers the stream handlers, starts watching connections, and
// reports peers that are already connected to the listeners.
func (n *Network) Start() error {
	n.mu.Lock()
	if n.closed || n.started {
		n.mu.Unlock()
		return errors.New("protocol: Network.Start called twice or after Close")
	}
	n.started = true
	n.mu.Unlock()

	n.loop.Add(1)
	go func() {
		defer n.loop.Done()
		n.runPeerEvents()
	}()
	n.notif = &network.NotifyBundle{
		ConnectedF:    func(_ network.Network, c network.Conn) { n.events.push(c.RemotePeer()) },
		DisconnectedF: func(_ network.Network, c network.Conn) { n.events.push(c.RemotePeer()) },
	}
	n.h.Network().Notify(n.notif)
	for _, p := range n.h.Network().Peers() {
		n.events.push(p)
	}
	for _, proto := range bitswapProtocols {
		n.h.SetStreamHandler(proto, n.handleStream)
	}
	return nil
}

// Close stops handlers, resets every Bitswap stream and waits for the
// goroutines the Network owns. It does not close the host. Safe to call twice.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	started := n.started
	senders := n.senders
	n.senders = map[senderKey]*peerSender{}
	for s := range n.inbound {
		_ = s.Reset()
	}
	n.mu.Unlock()

	n.cancel()
	if started {
		for _, proto := range bitswapProtocols {
			n.h.RemoveStreamHandler(proto)
		}
		n.h.Network().StopNotify(n.notif)
	}
	for _, s := range senders {
		s.close()
	}
	n.events.close()
	n.loop.Wait()
	n.handlers.Wait()
	return nil
}

// senderKey names one outbound stream: each peer gets a bulk stream for
// messages that carry blocks and a control stream for the rest, so a want
// or a HAVE never waits behind a megabyte of blocks to the same peer.
type senderKey struct {
	p    peer.ID
	bulk bool
}

// Send writes m to p on one of the peer's two long-lived outbound streams
// (bulk if m carries blocks, control otherwise), opening it (and dialling,
// if needed) when there is none. Sends on one stream are serialized, so
// messages to a peer without blocks keep their order, and so do messages
// with blocks. A failed write resets the stream and is retried once on a
// new one. Messages over MaxMessageSize are refused with ErrMessageTooLarge.
func (n *Network) Send(ctx context.Context, p peer.ID, m *Message) error {
	key := senderKey{p: p, bulk: len(m.Blocks) > 0}
	for range 2 {
		s, err := n.sender(key)
		if err != nil {
			return err
		}
		err = s.send(ctx, m)
		if !errors.Is(err, errSenderGone) {
			if err != nil {
				n.dropIdleSender(key, s)
			}
			return err
		}
	}
	return fmt.Errorf("protocol: sending to %s: peer disconnected during send", p)
}

func (n *Network) sender(key senderKey) (*peerSender, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrNetworkClosed
	}
	s := n.senders[key]
	if s == nil {
		s = &peerSender{n: n, p: key.p, sendMu: make(chan struct{}, 1)}
		n.senders[key] = s
	}
	return s, nil
}

// dropIdleSender forgets s if it failed without ever holding a stream
// (e.g. the peer is gone and could not be reached), so that senders for
// departed peers do not pile up; a later Send makes a fresh one.
func (n *Network) dropIdleSender(key senderKey, s *peerSender) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.senders[key] == s && s.idle() {
		delete(n.senders, key)
		s.close()
	}
}

// SupportsHave reports whether p speaks Bitswap 1.2.0 (HAVE/DONT_HAVE,
// want-have). It uses the protocol of our open stream to p if any, else what
// identify recorded; with no information it assumes yes.
func (n *Network) SupportsHave(p peer.ID) bool {
	for _, bulk := range []bool{false, true} {
		n.mu.Lock()
		s := n.senders[senderKey{p, bulk}]
		n.mu.Unlock()
		if s == nil {
			continue
		}
		if proto, ok := s.protocol(); ok {
			return proto == ProtocolBitswap
		}
	}
	protos, err := n.h.Peerstore().GetProtocols(p)
	if err != nil || len(protos) == 0 {
		return true
	}
	for _, proto := range protos {
		if proto == ProtocolBitswap {
			return true
		}
	}
	return false
}

// ConnectedPeers lists the peers currently reported as connected.
func (n *Network) ConnectedPeers() []peer.ID {
	return n.events.connectedPeers()
}

// handleStream serves one inbound stream with two goroutines: this one
// reads frames, and a dispatcher decodes each (which hashes its blocks)
// and hands it to the receivers, in arrival order. So the stream is read
// while earlier frames are verified and stored: a reader that stopped for
// each block's hash, store and hand-off to the client's loop left the
// muxer's receive window to fill (yamux then also stops growing it) and
// the sender waiting on it every block, which held an exchange with one
// fast peer well under the raw stream's rate, and far under it on a busy
// CPU, where every wait for a descheduled goroutine stalled the stream.
// Frames waiting for or in dispatch count against the peer's budget
// (inboundPeer), so the memory a peer can make us hold stays bounded.
func (n *Network) handleStream(st network.Stream) {
	p := st.Conn().RemotePeer()
	ip := n.trackInbound(st, p)
	if ip == nil {
		_ = st.Reset()
		return
	}
	defer n.untrackInbound(st, p)

	frames := make(chan queuedFrame, dispatchDepth)
	bad := make(chan struct{}) // closed by the dispatcher when it gives up on the stream
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.dispatchFrames(st, p, ip, frames, bad)
	}()

	r := bufio.NewReader(st)
	var readErr error
read:
	for {
		frame, err := readFrame(r)
		if err != nil {
			readErr = err
			break
		}
		q := queuedFrame{frame: frame, tokens: rxTokens(len(frame.bytes()))}
		if !ip.acquire(q.tokens, bad) {
			frame.release()
			break read
		}
		select {
		case frames <- q:
		case <-bad:
			ip.release(q.tokens)
			frame.release()
			break read
		}
	}
	close(frames)
	<-done
	select {
	case <-bad:
		return // the dispatcher reset the stream
	default:
	}
	if errors.Is(readErr, io.EOF) {
		_ = st.Close()
		return
	}
	n.log.Debug("bitswap: reading from peer", "peer", p, "err", readErr)
	_ = st.Reset()
}

// dispatchDepth bounds the frames queued on one stream for its
// dispatcher: one, so that small frames (which take no budget) add at
// most two times readChunk per stream, queued and in dispatch, to what a
// peer can make us hold; large frames are bounded by the budget.
const dispatchDepth = 1

// rxBudget is how many bytes of one peer's large frames (over readChunk)
// may be in dispatch, across all of the peer's streams: one 1 MiB block,
// so the next frame is read (into its own buffer) while this one is
// verified and stored, and the reader then waits for the budget. Deeper
// queues (2–8 MiB) measured no faster on this machine and only allocated
// more buffers. A frame larger than the budget takes all of it. A peer
// can so make us hold, besides this, one partly or wholly read frame per
// stream, as before.
const rxBudget = 1 << 20

// rxTokens is the budget a frame of n bytes takes, in readChunk units:
// none for a small frame (wants, HAVEs), so control messages never wait
// behind a peer's queued blocks (dispatchDepth bounds those), and at most
// the whole budget, so every frame fits.
func rxTokens(n int) int { return min(n/readChunk, rxBudget/readChunk) }

// inboundPeer is one peer's inbound streams: how many, and its byte budget
// of frames waiting for dispatch (a channel of tokens, so that waiting for
// budget is durably blocking under testing/synctest).
type inboundPeer struct {
	streams int
	budget  chan struct{}
	// taking is held (a token in it) by the one reader taking tokens:
	// two streams' readers that each took part of the budget for a frame
	// larger than what was left would wait for each other forever (the
	// dispatchers, idle, hold none).
	taking chan struct{}
}

func newInboundPeer() *inboundPeer {
	return &inboundPeer{budget: make(chan struct{}, rxTokens(rxBudget)), taking: make(chan struct{}, 1)}
}

// acquire takes k tokens, all or none, or gives up when abort is closed.
func (ip *inboundPeer) acquire(k int, abort <-chan struct{}) bool {
	if k == 0 {
		return true
	}
	select {
	case ip.taking <- struct{}{}:
	case <-abort:
		return false
	}
	defer func() { <-ip.taking }()
	for i := range k {
		select {
		case ip.budget <- struct{}{}:
		case <-abort:
			ip.release(i)
			return false
		}
	}
	return true
}

func (ip *inboundPeer) release(k int) {
	for range k {
		<-ip.budget
	}
}

// queuedFrame is a read frame on its way to the dispatcher, with the
// budget tokens it holds.
type queuedFrame struct {
	frame  rxFrame
	tokens int
}

// dispatchFrames decodes and dispatches the frames of one stream in order.
// It owns each frame it takes (rxFrame) and releases it, and its budget,
// once the receivers have returned. A frame that does not decode resets
// the stream; the dispatcher then closes bad and drops whatever else was
// read.
func (n *Network) dispatchFrames(st network.Stream, p peer.ID, ip *inboundPeer, frames <-chan queuedFrame, bad chan<- struct{}) {
	drop := func(q queuedFrame) {
		q.frame.release()
		ip.release(q.tokens)
	}
	for q := range frames {
		m, err := DecodeMessage(q.frame.bytes())
		if err != nil {
			drop(q)
			n.log.Debug("bitswap: bad message from peer; resetting stream", "peer", p, "err", err)
			_ = st.Reset()
			close(bad)
			for q := range frames {
				drop(q)
			}
			return
		}
		n.traffic.received(p, len(q.frame.bytes()), m)
		n.dispatch(p, m)
		// The receivers are done with the block bytes (Receiver's rule),
		// so the buffer can take the next frame of any stream.
		drop(q)
	}
}

func (n *Network) trackInbound(st network.Stream, p peer.ID) *inboundPeer {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	ip := n.inboundPerPeer[p]
	if ip == nil {
		ip = newInboundPeer()
		n.inboundPerPeer[p] = ip
	}
	if ip.streams >= n.cfg.MaxInboundStreamsPerPeer {
		n.log.Debug("bitswap: too many inbound streams from peer", "peer", p)
		return nil
	}
	ip.streams++
	n.inbound[st] = struct{}{}
	n.handlers.Add(1)
	return ip
}

func (n *Network) untrackInbound(st network.Stream, p peer.ID) {
	n.mu.Lock()
	delete(n.inbound, st)
	if ip := n.inboundPerPeer[p]; ip != nil {
		if ip.streams--; ip.streams <= 0 {
			delete(n.inboundPerPeer, p)
		}
	}
	n.mu.Unlock()
	n.handlers.Done()
}

// dispatch splits m between server (wants) and client (everything else).
func (n *Network) dispatch(p peer.ID, m *Message) {
	hasWants := m.Full || len(m.Wants) > 0
	hasData := len(m.Blocks) > 0 || len(m.Presences) > 0 || m.PendingBytes != 0
	switch {
	case hasWants && hasData:
		if n.server != nil {
			n.server.ReceiveMessage(n.ctx, p, &Message{Full: m.Full, Wants: m.Wants})
		}
		if n.client != nil {
			n.client.ReceiveMessage(n.ctx, p, &Message{Blocks: m.Blocks, Presences: m.Presences, PendingBytes: m.PendingBytes})
		}
	case hasWants:
		if n.server != nil {
			n.server.ReceiveMessage(n.ctx, p, m)
		}
	case hasData:
		if n.client != nil {
			n.client.ReceiveMessage(n.ctx, p, m)
		}
	}
}

// peerDisconnected drops the peer's outbound stream and per-peer counters.
func (n *Network) peerDisconnected(p peer.ID) {
	var gone []*peerSender
	n.mu.Lock()
	for _, bulk := range []bool{false, true} {
		if s := n.senders[senderKey{p, bulk}]; s != nil {
			gone = append(gone, s)
			delete(n.senders, senderKey{p, bulk})
		}
	}
	n.mu.Unlock()
	for _, s := range gone {
		s.close()
	}
	n.traffic.forget(p)
}

// sendTimeout is the write deadline for a frame of size bytes.
func (n *Network) sendTimeout(size int) time.Duration {
	t := n.cfg.SendTimeout + time.Duration(int64(size)*int64(time.Second)/int64(n.cfg.MinSendRate))
	return min(t, n.cfg.MaxSendTimeout)
}
