package protocol

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var errTestNotFound = errors.New("test: not found")

// memStore is an in-memory Blockstore for server tests.
type memStore struct {
	mu     sync.Mutex
	blocks map[cid.Cid][]byte
}

func newMemStore(blocks ...Block) *memStore {
	s := &memStore{blocks: make(map[cid.Cid][]byte)}
	for _, b := range blocks {
		s.put(b)
	}
	return s
}

func (s *memStore) put(b Block) {
	s.mu.Lock()
	s.blocks[b.CID] = b.Data
	s.mu.Unlock()
}

func (s *memStore) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.blocks[c]
	if !ok {
		return nil, errTestNotFound
	}
	return d, nil
}

func (s *memStore) Has(_ context.Context, c cid.Cid) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.blocks[c]
	return ok, nil
}

func (s *memStore) GetSize(_ context.Context, c cid.Cid) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.blocks[c]
	if !ok {
		return 0, errTestNotFound
	}
	return len(d), nil
}

// sent is one message the server sent.
type sent struct {
	to peer.ID
	m  *Message
}

// chanSender records what the server sends.
type chanSender struct{ ch chan sent }

func newChanSender() *chanSender { return &chanSender{ch: make(chan sent, 4096)} }

func (s *chanSender) Send(_ context.Context, p peer.ID, m *Message) error {
	if m.Size() > MaxMessageSize {
		return ErrMessageTooLarge
	}
	s.ch <- sent{p, m}
	return nil
}

func (s *chanSender) next(t testing.TB) sent {
	t.Helper()
	select {
	case x := <-s.ch:
		return x
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the server to send")
		return sent{}
	}
}

// seqBlocks makes n distinct raw blocks of size bytes.
func seqBlocks(t testing.TB, n, size int) []Block {
	out := make([]Block, n)
	for i := range out {
		d := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, size/2+1)[:size]
		binary.BigEndian.PutUint32(d, uint32(i))
		out[i] = testBlock(t, d)
	}
	return out
}

// fakeCID returns a CID for counter i without hashing anything.
func fakeCID(i int) cid.Cid {
	var d [32]byte
	binary.BigEndian.PutUint64(d[:], uint64(i))
	h, _ := mh.Encode(d[:], mh.SHA2_256)
	return cid.NewCidV1(cid.Raw, h)
}

func bsTestServer(t *testing.T, cfg ServerConfig, bs Blockstore, snd MessageSender) *Server {
	t.Helper()
	s, err := NewServer(cfg, bs, snd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

const peerA, peerB = peer.ID("peer-a"), peer.ID("peer-b")

func TestServerAnswers(t *testing.T) {
	blks := seqBlocks(t, 2, 100)
	missing := rawCID(t, []byte("missing"))
	snd := newChanSender()
	s := bsTestServer(t, DefaultServerConfig(), newMemStore(blks...), snd)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		want  Entry
		block []byte // expected block, or
		pres  *PresenceType
	}{
		{"want-have present", Entry{CID: blks[0].CID, WantType: WantHave}, nil, bsPtr(Have)},
		{"want-have missing, dont-have asked", Entry{CID: missing, WantType: WantHave, SendDontHave: true}, nil, bsPtr(DontHave)},
		{"want-block present", Entry{CID: blks[1].CID, WantType: WantBlock}, blks[1].Data, nil},
		{"want-block missing, dont-have asked", Entry{CID: missing, WantType: WantBlock, SendDontHave: true}, nil, bsPtr(DontHave)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.ReceiveMessage(context.Background(), peerA, &Message{Wants: []Entry{tc.want}})
			got := snd.next(t)
			if got.to != peerA {
				t.Fatalf("sent to %s, want %s", got.to, peerA)
			}
			switch {
			case tc.block != nil:
				if len(got.m.Blocks) != 1 || !got.m.Blocks[0].CID.Equals(tc.want.CID) || !bytes.Equal(got.m.Blocks[0].Data, tc.block) || len(got.m.Presences) != 0 {
					t.Fatalf("got %+v, want block %s", got.m, tc.want.CID)
				}
			default:
				if len(got.m.Presences) != 1 || got.m.Presences[0] != (Presence{CID: tc.want.CID, Type: *tc.pres}) || len(got.m.Blocks) != 0 {
					t.Fatalf("got %+v, want %v for %s", got.m, *tc.pres, tc.want.CID)
				}
			}
			s.ReceiveMessage(context.Background(), peerA, &Message{Wants: []Entry{{CID: tc.want.CID, Cancel: true}}})
		})
	}
	// A want for a missing block without SendDontHave gets no answer; when
	// the block arrives later, NotifyNewBlocks sends it.
	late := testBlock(t, []byte("late block"))
	s.ReceiveMessage(context.Background(), peerA, &Message{Wants: []Entry{{CID: late.CID}}})
	select {
	case x := <-snd.ch:
		t.Fatalf("answered a missing want without SendDontHave: %+v", x.m)
	case <-time.After(50 * time.Millisecond):
	}
	s.bs.(*memStore).put(late)
	s.NotifyNewBlocks(late.CID)
	got := snd.next(t)
	if len(got.m.Blocks) != 1 || !bytes.Equal(got.m.Blocks[0].Data, late.Data) {
		t.Fatalf("after NotifyNewBlocks got %+v, want the late block", got.m)
	}
	// The server counts a response once its Send returns, which is after
	// the sender handed it to this test: wait for the count.
	want := func(st PeerStats) bool {
		return st.BlocksSent == 2 && st.HavesSent == 1 && st.DontHavesSent == 2 && st.WantsReceived == 5 && st.CancelsReceived == 4 && st.QueuedWants == 0
	}
	deadline := time.Now().Add(10 * time.Second)
	st := s.PeerStats()[peerA]
	for !want(st) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		st = s.PeerStats()[peerA]
	}
	if !want(st) {
		t.Fatalf("peer stats = %+v", st)
	}
}

func bsPtr[T any](v T) *T { return &v }

// TestServerCancelBeforeServe: a canceled want is never answered.
func TestServerCancelBeforeServe(t *testing.T) {
	blks := seqBlocks(t, 3, 10)
	snd := newChanSender()
	s := bsTestServer(t, DefaultServerConfig(), newMemStore(blks...), snd)
	ctx := context.Background()
	s.ReceiveMessage(ctx, peerA, &Message{Wants: []Entry{{CID: blks[0].CID}, {CID: blks[1].CID}, {CID: blks[2].CID}}})
	s.ReceiveMessage(ctx, peerA, &Message{Wants: []Entry{{CID: blks[1].CID, Cancel: true}}})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	got := map[cid.Cid]bool{}
	for len(got) < 2 {
		for _, b := range snd.next(t).m.Blocks {
			got[b.CID] = true
		}
	}
	if got[blks[1].CID] || !got[blks[0].CID] || !got[blks[2].CID] {
		t.Fatalf("served %v; want blocks 0 and 2 only", got)
	}
}

// TestServerFullReplacesWantlist: a Full message drops earlier wants.
func TestServerFullReplacesWantlist(t *testing.T) {
	blks := seqBlocks(t, 2, 10)
	snd := newChanSender()
	s := bsTestServer(t, DefaultServerConfig(), newMemStore(blks...), snd)
	ctx := context.Background()
	s.ReceiveMessage(ctx, peerA, &Message{Wants: []Entry{{CID: blks[0].CID}}})
	s.ReceiveMessage(ctx, peerA, &Message{Full: true, Wants: []Entry{{CID: blks[1].CID}}})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	m := snd.next(t).m
	if len(m.Blocks) != 1 || !m.Blocks[0].CID.Equals(blks[1].CID) {
		t.Fatalf("got %+v; want only block 1", m)
	}
}

// TestServerMillionWantsBounded: a peer sending a million wants costs at
// most MaxWantsPerPeer held wants and as many pending DONT_HAVEs.
func TestServerMillionWantsBounded(t *testing.T) {
	const total, perMsg = 1_000_000, 50_000
	cfg := DefaultServerConfig()
	cfg.MaxWantsPerPeer = 1024
	snd := newChanSender()
	s := bsTestServer(t, cfg, newMemStore(), snd)
	ctx := context.Background()
	for start := 0; start < total; start += perMsg {
		m := &Message{Wants: make([]Entry, 0, perMsg)}
		for i := start; i < start+perMsg; i++ {
			m.Wants = append(m.Wants, Entry{CID: fakeCID(i), WantType: WantHave, SendDontHave: true})
		}
		s.ReceiveMessage(ctx, peerA, m)
	}
	s.mu.Lock()
	l := s.ledgers[peerA]
	held, pending, queued := len(l.wants), len(l.dontHaves), len(l.queue)
	s.mu.Unlock()
	if held != cfg.MaxWantsPerPeer || queued != cfg.MaxWantsPerPeer || pending != cfg.MaxWantsPerPeer {
		t.Fatalf("held %d wants, %d queued, %d pending DONT_HAVEs; want %d each", held, queued, pending, cfg.MaxWantsPerPeer)
	}
	st := s.PeerStats()[peerA]
	if st.WantsReceived != total || st.WantsRefused != total-uint64(cfg.MaxWantsPerPeer) {
		t.Fatalf("stats %+v", st)
	}
	// Served: every held want and every pending refusal gets DONT_HAVE.
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	dontHaves := 0
	for dontHaves < 2*cfg.MaxWantsPerPeer {
		for _, p := range snd.next(t).m.Presences {
			if p.Type != DontHave {
				t.Fatalf("got %v for a block nobody has", p.Type)
			}
			dontHaves++
		}
	}
	if dontHaves != 2*cfg.MaxWantsPerPeer {
		t.Fatalf("%d DONT_HAVEs, want %d", dontHaves, 2*cfg.MaxWantsPerPeer)
	}
}

// TestServerRoundRobin: with one worker and small batches, two peers that
// both have work are served alternately.
func TestServerRoundRobin(t *testing.T) {
	blks := seqBlocks(t, 40, 4000)
	cfg := DefaultServerConfig()
	cfg.Workers = 1
	cfg.MaxInflightSends = 1 // sends in order, so the order is deterministic
	cfg.MaxBatchBytes = 8000 // two blocks per message
	snd := newChanSender()
	s := bsTestServer(t, cfg, newMemStore(blks...), snd)
	ctx := context.Background()
	var wa, wb []Entry
	for i, b := range blks {
		if i < 30 {
			wa = append(wa, Entry{CID: b.CID, Priority: int32(100 - i)})
		} else {
			wb = append(wb, Entry{CID: b.CID, Priority: int32(100 - i)})
		}
	}
	s.ReceiveMessage(ctx, peerA, &Message{Wants: wa}) // A asks for 30 blocks
	s.ReceiveMessage(ctx, peerB, &Message{Wants: wb}) // B for 10
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	var order []peer.ID
	got := 0
	for got < len(blks) {
		x := snd.next(t)
		order = append(order, x.to)
		got += len(x.m.Blocks)
		if len(x.m.Blocks) > 2 {
			t.Fatalf("batch of %d blocks over an 8000-byte budget", len(x.m.Blocks))
		}
	}
	// B's 10 blocks take 5 turns; A must alternate with B for those turns.
	want := []peer.ID{peerA, peerB, peerA, peerB, peerA, peerB, peerA, peerB, peerA, peerB}
	for i, p := range want {
		if order[i] != p {
			t.Fatalf("service order %v; want strict alternation first %v", order, want)
		}
	}
	// Priority inside a peer: A's blocks arrive in priority order.
	st := s.PeerStats()
	if st[peerA].BlocksSent != 30 || st[peerB].BlocksSent != 10 {
		t.Fatalf("stats %+v", st)
	}
}

// TestServerRateLimit: in virtual time, serving ~4 MiB under a 1 MiB/s
// limit takes what the token bucket allows: (bytes - burst) / rate.
func TestServerRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		blks := seqBlocks(t, 16, 256<<10) // 4 MiB of data
		cfg := DefaultServerConfig()
		cfg.UploadBytesPerSecond = 1 << 20
		snd := newChanSender()
		s, err := NewServer(cfg, newMemStore(blks...), snd)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var wants []Entry
		for _, b := range blks {
			wants = append(wants, Entry{CID: b.CID})
		}
		start := time.Now()
		s.ReceiveMessage(t.Context(), peerA, &Message{Wants: wants})
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		bytesSent, n := 0, 0
		for n < len(blks) {
			x := <-snd.ch
			n += len(x.m.Blocks)
			bytesSent += x.m.Size()
		}
		elapsed := time.Since(start)
		burst := newUploadLimiter(cfg.UploadBytesPerSecond).burst
		want := time.Duration(float64(bytesSent-burst) / float64(cfg.UploadBytesPerSecond) * float64(time.Second))
		if elapsed < want || elapsed > want+100*time.Millisecond {
			t.Fatalf("sent %d bytes in %v (virtual); token bucket allows %v", bytesSent, elapsed, want)
		}
		if st := s.Stats(); st.BytesSent != uint64(bytesSent) || st.BlocksSent != 16 {
			t.Fatalf("stats %+v; want %d bytes, 16 blocks", st, bytesSent)
		}
	})
}

func TestUploadLimiterUnlimited(t *testing.T) {
	if l := newUploadLimiter(0); l != nil {
		t.Fatal("rate 0 must mean no limiter")
	}
	var l *uploadLimiter
	if err := l.wait(context.Background(), MaxMessageSize); err != nil {
		t.Fatal(err)
	}
}

func TestServerConfigValidate(t *testing.T) {
	for i, mut := range []func(*ServerConfig){
		func(c *ServerConfig) { c.Workers = 0 },
		func(c *ServerConfig) { c.MaxWantsPerPeer = 0 },
		func(c *ServerConfig) { c.MaxInflightSends = 0 },
		func(c *ServerConfig) { c.MaxBatchBytes = MaxMessageSize },
		func(c *ServerConfig) { c.UploadBytesPerSecond = -1 },
		func(c *ServerConfig) { c.SwarmSendsAtOnce = -1 },
		func(c *ServerConfig) { c.Logger = nil },
	} {
		c := DefaultServerConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("case %d: invalid config accepted", i)
		}
	}
	if err := DefaultServerConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

// failSender fails every send.
type failSender struct{ n chan struct{} }

func (f failSender) Send(context.Context, peer.ID, *Message) error {
	f.n <- struct{}{}
	return errors.New("test: peer unreachable")
}

// TestServerDropsLedgerOnSendFailure: a peer we cannot send to loses its
// ledger, so wants of a peer that raced its own disconnect do not linger.
func TestServerDropsLedgerOnSendFailure(t *testing.T) {
	blks := seqBlocks(t, 1, 10)
	snd := failSender{n: make(chan struct{}, 1)}
	s := bsTestServer(t, DefaultServerConfig(), newMemStore(blks...), snd)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	s.ReceiveMessage(context.Background(), peerA, &Message{Wants: []Entry{{CID: blks[0].CID}}})
	<-snd.n
	waitFor(t, func() bool { return len(s.PeerStats()) == 0 })
	if st := s.Stats(); st.SendErrors != 1 || st.BlocksSent != 0 {
		t.Fatalf("totals %+v", st)
	}
}
