package protocol

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/internal/p2ptest"
)

// bsTestLogger routes logs to t.Log.
func bsTestLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(bsLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type bsLogWriter struct{ t testing.TB }

// bsTestHost is a host on 127.0.0.1 for the Bitswap tests.
func bsTestHost(t testing.TB) host.Host { return p2ptest.Host(t) }

func (w bsLogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func bsConnect(t testing.TB, a, b host.Host) {
	t.Helper()
	p2ptest.Connect(t, a, b)
}

func bsTestNetwork(t testing.TB, h host.Host) *Network {
	t.Helper()
	cfg := DefaultNetworkConfig()
	cfg.Logger = bsTestLogger(t)
	n, err := NewNetwork(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// serverNode is one of our nodes serving blocks: host, network, server.
type serverNode struct {
	h   host.Host
	net *Network
	srv *Server
}

func newServerNode(t testing.TB, cfg ServerConfig, blks ...Block) *serverNode {
	t.Helper()
	h := bsTestHost(t)
	n := bsTestNetwork(t, h)
	cfg.Logger = bsTestLogger(t)
	s, err := NewServer(cfg, newMemStore(blks...), n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	n.SetReceivers(s, nil)
	n.AddPeerListener(s)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	return &serverNode{h: h, net: n, srv: s}
}

// rawClient is a Bitswap peer written with bare libp2p streams: it sends
// wants on a stream it opens and collects what the server sends back.
type rawClient struct {
	h       host.Host
	msgs    chan *Message
	mu      sync.Mutex
	streams int // inbound streams the server opened to us
}

func newRawClient(t testing.TB) *rawClient {
	c := &rawClient{h: bsTestHost(t), msgs: make(chan *Message, 1024)}
	c.h.SetStreamHandler(ProtocolBitswap, func(s network.Stream) {
		c.mu.Lock()
		c.streams++
		c.mu.Unlock()
		r := bufio.NewReader(s)
		for {
			m, err := ReadMessage(r)
			if err != nil {
				_ = s.Reset()
				return
			}
			c.msgs <- m
		}
	})
	return c
}

func (c *rawClient) send(t testing.TB, to peer.ID, m *Message) {
	t.Helper()
	s, err := c.h.NewStream(context.Background(), to, ProtocolBitswap)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteMessage(s, m); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
}

// collect reads messages until done says it has seen enough.
func (c *rawClient) collect(t testing.TB, done func(*Message) bool) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-c.msgs:
			if done(m) {
				return
			}
		case <-timeout:
			t.Fatal("timed out waiting for the server's answers")
		}
	}
}

func TestNetworkServerRawClient(t *testing.T) {
	big := seqBlocks(t, 5, 1<<20) // 5 MiB: needs several messages
	small := testBlock(t, []byte("small"))
	missing := rawCID(t, []byte("nobody has this"))
	srv := newServerNode(t, DefaultServerConfig(), append(big, small)...)
	cl := newRawClient(t)
	bsConnect(t, cl.h, srv.h)

	wants := []Entry{
		{CID: small.CID, WantType: WantHave, SendDontHave: true},
		{CID: missing, WantType: WantHave, SendDontHave: true},
		{CID: missing, WantType: WantBlock, SendDontHave: true}, // upgrades the want-have
	}
	for _, b := range big {
		wants = append(wants, Entry{CID: b.CID, WantType: WantBlock, SendDontHave: true})
	}
	cl.send(t, srv.h.ID(), &Message{Wants: wants})

	gotBlocks := map[cid.Cid][]byte{}
	gotPres := map[cid.Cid]PresenceType{}
	cl.collect(t, func(m *Message) bool {
		if m.Size() > MaxMessageSize {
			t.Fatalf("message of %d bytes", m.Size())
		}
		for _, b := range m.Blocks {
			gotBlocks[b.CID] = b.Data
		}
		for _, p := range m.Presences {
			gotPres[p.CID] = p.Type
		}
		return len(gotBlocks) == len(big) && len(gotPres) == 2
	})
	for _, b := range big {
		if !bytes.Equal(gotBlocks[b.CID], b.Data) {
			t.Fatalf("block %s: wrong or missing bytes", b.CID)
		}
	}
	if gotPres[small.CID] != Have || gotPres[missing] != DontHave {
		t.Fatalf("presences %v; want HAVE for small, DONT_HAVE for missing", gotPres)
	}
	cl.mu.Lock()
	streams := cl.streams
	cl.mu.Unlock()
	if streams > 2 {
		t.Fatalf("server opened %d streams to the client; want at most two (control, bulk), reused", streams)
	}
	// The server counts a response when its Send returns, which may be
	// after the client read it.
	statsOK := func(st PeerStats) bool {
		return st.BlocksSent == 5 && st.BlockBytesSent == 5<<20 && st.HavesSent == 1 && st.DontHavesSent == 1 && st.WantsReceived == 8
	}
	deadline := time.Now().Add(10 * time.Second)
	st := srv.srv.PeerStats()[cl.h.ID()]
	for !statsOK(st) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		st = srv.srv.PeerStats()[cl.h.ID()]
	}
	if !statsOK(st) {
		t.Fatalf("server stats %+v", st)
	}
	tr := srv.net.PeerTraffic()[cl.h.ID()]
	if tr.BytesSent < 5<<20 || tr.MessagesSent < 3 || tr.MessagesReceived != 1 {
		t.Fatalf("traffic %+v", tr)
	}

	// A want that waits for its block, then the peer leaves: the ledger
	// goes, and the late block is not sent (nor the peer dialled).
	late := testBlock(t, []byte("arrives after the peer left"))
	cl.send(t, srv.h.ID(), &Message{Wants: []Entry{{CID: late.CID}}})
	waitFor(t, func() bool { return srv.srv.PeerStats()[cl.h.ID()].QueuedWants == 2 }) // with "missing"
	if err := cl.h.Network().ClosePeer(srv.h.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, ok := srv.srv.PeerStats()[cl.h.ID()]; return !ok })
	srv.srv.bs.(*memStore).put(late)
	srv.srv.NotifyNewBlocks(late.CID)
	if st := srv.srv.Stats(); st.QueuedWants != 0 || st.BlocksSent != 5 {
		t.Fatalf("after the peer left: totals %+v", st)
	}
}

// waitFor polls cond until it holds (or fails the test after 10s).
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNetworkTwoPeersServed: two clients asking at once both get
// everything, with one worker.
func TestNetworkTwoPeersServed(t *testing.T) {
	blks := seqBlocks(t, 20, 100<<10)
	cfg := DefaultServerConfig()
	cfg.Workers = 1
	cfg.MaxBatchBytes = 256 << 10
	srv := newServerNode(t, cfg, blks...)
	clients := []*rawClient{newRawClient(t), newRawClient(t)}
	var wants []Entry
	for _, b := range blks {
		wants = append(wants, Entry{CID: b.CID})
	}
	for _, c := range clients {
		bsConnect(t, c.h, srv.h)
		c.send(t, srv.h.ID(), &Message{Wants: wants})
	}
	for i, c := range clients {
		got := map[cid.Cid]bool{}
		c.collect(t, func(m *Message) bool {
			for _, b := range m.Blocks {
				got[b.CID] = true
			}
			return len(got) == len(blks)
		})
		// The server counts a batch once its write returns, which can be
		// just after the client has read it.
		deadline := time.Now().Add(5 * time.Second)
		for {
			st := srv.srv.PeerStats()[c.h.ID()]
			if st.BlocksSent == uint64(len(blks)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("client %d: server stats %+v, want %d blocks sent", i, st, len(blks))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// bsRecorder is a Receiver and PeerListener that records what it gets.
type bsRecorder struct {
	msgs   chan *Message
	events chan string
}

func newBsRecorder() *bsRecorder {
	return &bsRecorder{msgs: make(chan *Message, 16), events: make(chan string, 16)}
}

// ReceiveMessage keeps m, so it copies the block bytes first: they are the
// network's receive buffer, reused once the call returns (Receiver).
func (r *bsRecorder) ReceiveMessage(_ context.Context, _ peer.ID, m *Message) {
	for i := range m.Blocks {
		m.Blocks[i].Data = bytes.Clone(m.Blocks[i].Data)
	}
	r.msgs <- m
}
func (r *bsRecorder) PeerConnected(p peer.ID)    { r.events <- "up " + p.String() }
func (r *bsRecorder) PeerDisconnected(p peer.ID) { r.events <- "down " + p.String() }

func bsExpect[T any](t testing.TB, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

func TestNetworkDispatchAndPeerEvents(t *testing.T) {
	ha, hb := bsTestHost(t), bsTestHost(t)
	na, nb := bsTestNetwork(t, ha), bsTestNetwork(t, hb)
	srv, cli := newBsRecorder(), newBsRecorder()
	nb.SetReceivers(srv, cli)
	nb.AddPeerListener(srv)
	for _, n := range []*Network{na, nb} {
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
	}
	bsConnect(t, ha, hb)
	if ev := bsExpect(t, srv.events); ev != "up "+ha.ID().String() {
		t.Fatalf("event %q", ev)
	}

	m := sampleMessage(t)
	if err := na.Send(context.Background(), hb.ID(), m); err != nil {
		t.Fatal(err)
	}
	toServer, toClient := bsExpect(t, srv.msgs), bsExpect(t, cli.msgs)
	if !messagesEqual(toServer, &Message{Full: m.Full, Wants: m.Wants}) {
		t.Fatalf("server got %+v", toServer)
	}
	if !messagesEqual(toClient, &Message{Blocks: m.Blocks, Presences: m.Presences, PendingBytes: m.PendingBytes}) {
		t.Fatalf("client got %+v", toClient)
	}
	// A blocks-only message goes to the client only.
	if err := na.Send(context.Background(), hb.ID(), &Message{Blocks: m.Blocks[:1]}); err != nil {
		t.Fatal(err)
	}
	if got := bsExpect(t, cli.msgs); len(got.Blocks) != 1 || len(got.Wants) != 0 {
		t.Fatalf("client got %+v", got)
	}
	select {
	case x := <-srv.msgs:
		t.Fatalf("server got a blocks-only message: %+v", x)
	default:
	}
	if got := nb.ConnectedPeers(); len(got) != 1 || got[0] != ha.ID() {
		t.Fatalf("connected peers %v", got)
	}
	if tr := nb.Traffic(); tr.MessagesReceived != 2 || tr.BlocksReceived != 3 {
		t.Fatalf("traffic %+v", tr)
	}

	if err := ha.Network().ClosePeer(hb.ID()); err != nil {
		t.Fatal(err)
	}
	if ev := bsExpect(t, srv.events); ev != "down "+ha.ID().String() {
		t.Fatalf("event %q", ev)
	}
	// Send reconnects (dials again) after the disconnect.
	if err := na.Send(context.Background(), hb.ID(), &Message{Wants: m.Wants[:1]}); err != nil {
		t.Fatal(err)
	}
	if got := bsExpect(t, srv.msgs); len(got.Wants) != 1 {
		t.Fatalf("after reconnect server got %+v", got)
	}
}

// TestNetworkRefusesOversizedFrame: a frame announcing more than
// MaxMessageSize resets the stream before anything reaches a receiver.
// rawStreamTo starts a Network whose server and client receiver is rec,
// and returns a raw Bitswap stream to it from another host (which the
// test writes frames on by hand) and that host.
func rawStreamTo(t testing.TB, rec Receiver) (network.Stream, host.Host) {
	t.Helper()
	ha, hb := bsTestHost(t), bsTestHost(t)
	nb := bsTestNetwork(t, hb)
	nb.SetReceivers(rec, rec)
	if err := nb.Start(); err != nil {
		t.Fatal(err)
	}
	bsConnect(t, ha, hb)
	s, err := ha.NewStream(context.Background(), hb.ID(), ProtocolBitswap)
	if err != nil {
		t.Fatal(err)
	}
	return s, ha
}

func TestNetworkRefusesOversizedFrame(t *testing.T) {
	srv := newBsRecorder()
	s, ha := rawStreamTo(t, srv)
	frame := append([]byte{0x81, 0x80, 0x80, 0x03}, make([]byte, 1000)...) // 6 MiB + 1
	_, _ = s.Write(frame)
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.Read(make([]byte, 1)); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read after oversized frame: %v; want the stream reset", err)
	}
	select {
	case m := <-srv.msgs:
		t.Fatalf("receiver got %+v", m)
	default:
	}
	// The peer can still talk on a new stream.
	s2, err := ha.NewStream(context.Background(), s.Conn().RemotePeer(), ProtocolBitswapOneOne)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteMessage(s2, &Message{Wants: []Entry{{CID: rawCID(t, []byte("x"))}}}); err != nil {
		t.Fatal(err)
	}
	if got := bsExpect(t, srv.msgs); len(got.Wants) != 1 {
		t.Fatalf("got %+v", got)
	}
	_ = s2.Close()
}

func TestNetworkSendTooLarge(t *testing.T) {
	ha, hb := bsTestHost(t), bsTestHost(t)
	na, nb := bsTestNetwork(t, ha), bsTestNetwork(t, hb)
	for _, n := range []*Network{na, nb} {
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
	}
	bsConnect(t, ha, hb)
	blks := seqBlocks(t, 3, 2<<20)
	err := na.Send(context.Background(), hb.ID(), &Message{Blocks: blks})
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("Send of a 6 MiB message: %v; want ErrMessageTooLarge", err)
	}
	if err := na.Close(); err != nil {
		t.Fatal(err)
	}
	if err := na.Send(context.Background(), hb.ID(), &Message{}); !errors.Is(err, ErrNetworkClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

// TestNetworkOldProtocolPeers: to a peer that speaks only 1.0.0 we send
// blocks in the old `blocks` field (and no presences); a 1.1.0-only peer
// is reported as not supporting HAVE/DONT_HAVE.
func TestNetworkOldProtocolPeers(t *testing.T) {
	ha := bsTestHost(t)
	na := bsTestNetwork(t, ha)
	if err := na.Start(); err != nil {
		t.Fatal(err)
	}
	got := make(chan *Message, 1)
	old := bsTestHost(t)
	old.SetStreamHandler(ProtocolBitswapOneZero, func(s network.Stream) {
		m, err := ReadMessage(bufio.NewReader(s))
		if err == nil {
			got <- m
		}
		_ = s.Reset()
	})
	bsConnect(t, ha, old)
	v0data := []byte{0x0a, 0x01, 0x00}
	v0 := testBlockV0(t, v0data)
	m := &Message{Blocks: []Block{v0}, Presences: []Presence{{CID: v0.CID, Type: DontHave}}}
	if err := na.Send(context.Background(), old.ID(), m); err != nil {
		t.Fatal(err)
	}
	r := bsExpect(t, got)
	if len(r.Blocks) != 1 || !r.Blocks[0].CID.Equals(v0.CID) || !bytes.Equal(r.Blocks[0].Data, v0data) || len(r.Presences) != 0 {
		t.Fatalf("1.0.0 peer got %+v", r)
	}
	if na.SupportsHave(old.ID()) {
		t.Fatal("SupportsHave true for a 1.0.0-only peer")
	}

	mid := bsTestHost(t)
	mid.SetStreamHandler(ProtocolBitswapOneOne, func(s network.Stream) { _, _ = io.Copy(io.Discard, s) })
	bsConnect(t, ha, mid)
	if err := na.Send(context.Background(), mid.ID(), &Message{Wants: []Entry{{CID: v0.CID}}}); err != nil {
		t.Fatal(err)
	}
	if na.SupportsHave(mid.ID()) {
		t.Fatal("SupportsHave true for a 1.1.0-only peer")
	}
}

func testBlockV0(t testing.TB, data []byte) Block {
	t.Helper()
	b, err := blockFromV0(data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNetworkSendUnreachable: a send that cannot reach the peer fails and
// leaves no sender behind.
func TestNetworkSendUnreachable(t *testing.T) {
	ha, hb := bsTestHost(t), bsTestHost(t)
	na := bsTestNetwork(t, ha)
	if err := na.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := network.WithNoDial(context.Background(), "test")
	if err := na.Send(ctx, hb.ID(), &Message{Wants: []Entry{{CID: rawCID(t, []byte("x"))}}}); err == nil {
		t.Fatal("Send to a peer we are not connected to, without dialling, succeeded")
	}
	na.mu.Lock()
	left := len(na.senders)
	na.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d senders left after a failed send", left)
	}
}
