package protocol

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/internal/p2ptest"
)

// checkPool is a blockBufPool that catches misuse: a buffer given back
// twice or never handed out is recorded, and every buffer given back is
// filled with poison at once, so block bytes read after their buffer
// went back are wrong (and, under -race, a race with the poisoning).
// Buffers are reused last-in first-out, as sendBufs reuses them.
type checkPool struct {
	mu         sync.Mutex
	out        map[*[]byte]bool // handed out, not yet back
	free       []*[]byte
	gets, puts int
	misuse     []string
}

var poison = bytes.Repeat([]byte{0xee}, sendBufSize)

func newCheckPool() *checkPool { return &checkPool{out: map[*[]byte]bool{}} }

func (p *checkPool) get() *[]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gets++
	var b *[]byte
	if n := len(p.free); n > 0 {
		b, p.free = p.free[n-1], p.free[:n-1]
	} else {
		s := make([]byte, 0, sendBufSize)
		b = &s
	}
	p.out[b] = true
	return b
}

func (p *checkPool) put(b *[]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.puts++
	if !p.out[b] {
		p.misuse = append(p.misuse, fmt.Sprintf("put %d: a buffer given back twice or not from this pool", p.puts))
		return
	}
	delete(p.out, b)
	copy((*b)[:cap(*b)], poison)
	*b = (*b)[:0]
	p.free = append(p.free, b)
}

// check fails t unless every buffer handed out came back exactly once
// and at least one was handed out (the path under test used the pool).
func (p *checkPool) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.misuse) > 0 || len(p.out) > 0 || p.gets != p.puts || p.gets == 0 {
		t.Fatalf("block buffers: %d handed out, %d given back, %d still out, misuse %q", p.gets, p.puts, len(p.out), p.misuse)
	}
}

// intoBlocks is a Blockstore with GetInto: it copies each block into the
// caller's buffer, as a disk store reads it there.
type intoBlocks struct{ Blockstore }

func (s intoBlocks) GetInto(ctx context.Context, c cid.Cid, dst []byte) ([]byte, error) {
	d, err := s.Get(ctx, c)
	if err != nil || cap(dst) < len(d) {
		return d, err
	}
	return append(dst[:0], d...), nil
}

// pooledBlocks is n blocks the server reads into pooled buffers: sizes
// from half a buffer to a whole one, every one distinct.
func pooledBlocks(t testing.TB, n int) []Block {
	var out []Block
	for i, b := range seqBlocks(t, n, sendBufSize) {
		size := sendBufSize - (i%4)*(sendBufSize/8) // 1, 7/8, 3/4, 5/8 of a buffer
		out = append(out, testBlock(t, b.Data[:size]))
	}
	return out
}

// startPooledServer starts a server over a GetInto store of blks that
// takes its block buffers from a checkPool.
func startPooledServer(t *testing.T, cfg ServerConfig, blks []Block, snd MessageSender) (*Server, *checkPool) {
	t.Helper()
	s := bsTestServer(t, cfg, intoBlocks{newMemStore(blks...)}, snd)
	pool := newCheckPool()
	s.bufs = pool
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s, pool
}

// pipelineFull reports whether p has peerPipeline batches on their way.
func pipelineFull(s *Server, p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.ledgers[p]
	return l != nil && l.sending == peerPipeline
}

func wantBlocks(blks []Block) []Entry {
	var out []Entry
	for _, b := range blks {
		out = append(out, Entry{CID: b.CID, WantType: WantBlock})
	}
	return out
}

// streamSender encodes each message as Network does, in pieces, with a
// pause after every piece, so a buffer given back before Send returned
// shows as a block that does not hash to its CID (the pool poisons
// what it gets back, and other batches are read into it meanwhile). It
// decodes what it wrote and notes the blocks that arrived wrong: the
// wire carries a block's CID prefix and bytes, the receiver hashes the
// bytes, and a CID of none of the blocks sent means bytes went wrong.
type streamSender struct {
	known map[cid.Cid]bool // the blocks that may be sent
	mu    sync.Mutex
	sent  map[peer.ID]int
	wrong []string
}

type pausingWriter struct{ buf bytes.Buffer }

func (w *pausingWriter) Write(p []byte) (int, error) {
	time.Sleep(200 * time.Microsecond)
	return w.buf.Write(p)
}

func (s *streamSender) Send(_ context.Context, p peer.ID, m *Message) error {
	var w pausingWriter
	if _, err := m.writeFrame(&w, false); err != nil {
		return err
	}
	got, err := ReadMessage(bufio.NewReader(&w.buf))
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range got.Blocks {
		s.sent[p]++
		if !s.known[b.CID] {
			s.wrong = append(s.wrong, b.CID.String())
			continue
		}
	}
	return nil
}

// count is the blocks sent to p, whole or not.
func (s *streamSender) count(p peer.ID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent[p]
}

// TestServerBlockBuffersSentWhole: four peers fetching the same blocks
// at once, each block read into a pooled buffer that is poisoned and
// reused the moment it comes back: every block the sender writes
// hashes to its CID, and every buffer comes back exactly once.
func TestServerBlockBuffersSentWhole(t *testing.T) {
	blks := pooledBlocks(t, 12)
	small := seqBlocks(t, 4, 1000) // read by Get, no buffer
	snd := &streamSender{known: map[cid.Cid]bool{}, sent: map[peer.ID]int{}}
	for _, b := range append(blks, small...) {
		snd.known[b.CID] = true
	}
	s, pool := startPooledServer(t, DefaultServerConfig(), append(blks, small...), snd)
	wants := wantBlocks(append(blks, small...))
	peers := []peer.ID{"p0", "p1", "p2", "p3"}
	for _, p := range peers {
		s.ReceiveMessage(context.Background(), p, &Message{Wants: wants})
	}
	waitFor(t, func() bool {
		for _, p := range peers {
			if snd.count(p) < len(wants) {
				return false
			}
		}
		return true
	})
	_ = s.Close()
	if len(snd.wrong) > 0 {
		t.Fatalf("%d blocks were written with bytes other than their own (a buffer went back before its send ended): %v", len(snd.wrong), snd.wrong)
	}
	pool.check(t)
	if pool.gets != len(peers)*len(blks) {
		t.Fatalf("%d buffers handed out, want one per pool-sized block sent: %d", pool.gets, len(peers)*len(blks))
	}
}

// blockingSender holds every send until its context ends, telling
// entered about each.
type blockingSender struct{ entered chan struct{} }

func (s blockingSender) Send(ctx context.Context, _ peer.ID, _ *Message) error {
	s.entered <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// TestServerBlockBuffersBackOnEveryPath: a batch's buffers come back
// exactly once however its send ends — the send fails, the server closes
// during the send, it closes while the batch waits for upload budget,
// the peer cancels its wants and leaves while its batch is on the wire.
func TestServerBlockBuffersBackOnEveryPath(t *testing.T) {
	blks := pooledBlocks(t, 6)
	wants := wantBlocks(blks)
	cases := []struct {
		name string
		cfg  func(*ServerConfig)
		snd  func() MessageSender
		// run drives the server once the wants are in; the test then
		// closes it and checks the pool.
		run func(t *testing.T, s *Server, snd MessageSender)
	}{
		{
			name: "send fails",
			snd:  func() MessageSender { return failSender{n: make(chan struct{}, len(blks))} },
			run: func(t *testing.T, s *Server, snd MessageSender) {
				<-snd.(failSender).n
				waitFor(t, func() bool { return s.Stats().SendErrors >= 1 })
			},
		},
		{
			name: "closed during the send",
			snd:  func() MessageSender { return blockingSender{entered: make(chan struct{}, len(blks))} },
			run: func(t *testing.T, s *Server, snd MessageSender) {
				<-snd.(blockingSender).entered
				<-snd.(blockingSender).entered // both batches of the peer's pipeline
			},
		},
		{
			name: "closed while waiting for upload budget",
			cfg:  func(c *ServerConfig) { c.UploadBytesPerSecond = 1 << 10 }, // a 1 MiB block waits ~17 min
			snd:  func() MessageSender { return newChanSender() },
			run: func(t *testing.T, s *Server, snd MessageSender) {
				waitFor(t, func() bool { return pipelineFull(s, peerA) })
			},
		},
		{
			name: "peer cancels and leaves during the send",
			snd: func() MessageSender {
				return &gatedSender{chanSender: newChanSender(), hold: map[peer.ID]bool{peerA: true}, release: make(chan struct{})}
			},
			run: func(t *testing.T, s *Server, snd MessageSender) {
				waitFor(t, func() bool { return pipelineFull(s, peerA) })
				var cancels []Entry
				for _, w := range wants {
					cancels = append(cancels, Entry{CID: w.CID, Cancel: true})
				}
				s.ReceiveMessage(context.Background(), peerA, &Message{Wants: cancels})
				s.PeerDisconnected(peerA)
				close(snd.(*gatedSender).release)
				waitFor(t, func() bool { return s.Stats().BlocksSent == peerPipeline })
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultServerConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			snd := tc.snd()
			s, pool := startPooledServer(t, cfg, blks, snd)
			s.ReceiveMessage(context.Background(), peerA, &Message{Wants: wants})
			tc.run(t, s, snd)
			_ = s.Close()
			pool.check(t)
		})
	}
}

// TestExchangePooledBlocksWhole: a seeder whose store reads blocks into
// the server's pooled buffers (poisoned and reused the moment they come
// back) serves a whole DAG over a real stream: the leecher gets every
// block right, finds no bad block from the seeder, and every buffer
// comes back exactly once.
func TestExchangePooledBlocksWhole(t *testing.T) {
	d := makeClDAG(t, clTestSize(), sendBufSize, 13)
	st := newClientStore()
	d.fill(st)
	h := p2ptest.Host(t, libp2p.ResourceManager(nil), libp2p.NoSecurity)
	n, err := NewNetwork(h, DefaultNetworkConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(DefaultServerConfig(), intoBlocks{st}, n)
	if err != nil {
		t.Fatal(err)
	}
	pool := newCheckPool()
	srv.bufs = pool
	n.SetReceivers(srv, nil)
	n.AddPeerListener(srv)
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	seeder := p2ptest.Info(h)
	leechStore := newClientStore()
	leech := newLeech(t, leechStore, clProviders{[]peer.AddrInfo{seeder}})
	if _, err := clFetchAll(t, leech, d.root, nil); err != nil {
		t.Fatal(err)
	}
	clCheckStored(t, d, leechStore)
	for _, sc := range leech.cl.Scores().Snapshot() {
		if sc.Bad > 0 {
			t.Fatalf("the leecher got %d bad blocks from %s", sc.Bad, sc.Peer)
		}
	}
	leech.close()
	_ = srv.Close()
	_ = n.Close()
	_ = h.Close()
	pool.check(t)
}
