package protocol

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoalnet/shoal/internal/p2ptest"
)

// The hostile-peer tests run a real honest transfer (seeder → leecher, on
// 127.0.0.1) while a peer written with bare libp2p streams misbehaves
// against the leecher or the seeder. Each asserts that the attack is cut
// off (stream reset, peer banned, wants refused), that the honest fetch
// still ends with exactly the DAG's bytes and nothing else stored, and
// that the heap stays under a ceiling while it runs.

// hostileCeiling bounds how far HeapInuse may rise above its level before
// the attack (which already holds the seeder's copy of the DAG). The
// leecher's copy, a few messages in flight per stream and garbage awaiting
// collection fit; storing or buffering what the attacks send (256 MiB of
// unrequested blocks, a million wants, 4 MiB per oversized frame) does not.
const hostileCeiling = 160 << 20

const (
	hostileLeaves   = 16
	hostileLeafSize = 1 << 20
)

// hostileHost is a libp2p host on 127.0.0.1 that speaks Bitswap by hand.
func hostileHost(t testing.TB) host.Host {
	t.Helper()
	return p2ptest.Host(t, libp2p.ResourceManager(nil), libp2p.NoSecurity)
}

// hostileScene is one honest seeder, one leecher that knows the seeder
// and the attacker as providers, and the attacker's host.
type hostileScene struct {
	d      *clDAG
	seeder *clNode
	leech  *clNode
	bad    host.Host
}

func newHostileScene(t *testing.T) *hostileScene {
	t.Helper()
	d := makeClDAG(t, hostileLeaves, hostileLeafSize, 11)
	s := newClientStore()
	d.fill(s)
	seeder := newClNode(t, s, 0, nil)
	bad := hostileHost(t)
	leech := newClNode(t, newClientStore(), 0, clProviders{[]peer.AddrInfo{seeder.info(), {ID: bad.ID(), Addrs: bad.Addrs()}}})
	for _, n := range []*clNode{seeder, leech} {
		if err := bad.Connect(context.Background(), n.info()); err != nil {
			t.Fatal(err)
		}
	}
	return &hostileScene{d: d, seeder: seeder, leech: leech, bad: bad}
}

// heapPeak samples HeapInuse until stop is called and returns the highest
// value seen above the level at the start.
func heapPeak() (stop func() uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// runUnderAttack runs attack against sc until the honest fetch has ended
// (and at least until attack returns, if it is finite), then checks the
// fetch and the memory ceiling.
func runUnderAttack(t *testing.T, sc *hostileScene, attack func(ctx context.Context)) FetchResult {
	t.Helper()
	stopHeap := heapPeak()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { attack(ctx) })
	start := time.Now()
	res, err := clFetchAll(t, sc.leech, sc.d.root, nil)
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	peak := stopHeap()
	if err != nil {
		t.Fatalf("honest fetch under attack failed: %v", err)
	}
	clCheckStored(t, sc.d, sc.leech.store)
	t.Logf("honest fetch of %d MiB took %v under attack; heap rose at most %.1f MiB", sc.d.size>>20, elapsed, float64(peak)/(1<<20))
	if peak > hostileCeiling {
		t.Fatalf("heap rose %d MiB during the attack, ceiling %d MiB", peak>>20, hostileCeiling>>20)
	}
	return res
}

// openBitswap opens a Bitswap stream from h to p.
func openBitswap(ctx context.Context, h host.Host, p peer.ID) (network.Stream, error) {
	return h.NewStream(network.WithAllowLimitedConn(ctx, "test"), p, ProtocolBitswap)
}

// wasReset reports whether the other side reset s: a read returns an error
// other than a clean EOF.
func wasReset(s network.Stream) bool {
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, s)
	return err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, context.DeadlineExceeded)
}

var rawBlockSeq atomic.Uint64

// randomRawBlock is a distinct block of size bytes, cheap to make.
func randomRawBlock(size int) Block {
	data := make([]byte, size)
	binary.BigEndian.PutUint64(data, rawBlockSeq.Add(1))
	h, _ := mh.Sum(data, mh.SHA2_256, -1)
	return Block{CID: cid.NewCidV1(cid.Raw, h), Data: data}
}

// TestHostileWrongBlocks: the attacker is a provider that answers every
// want-have with HAVE and every want-block with bytes that do not hash to
// the wanted CID. The leecher bans it, cuts it off with ErrBadBlock and
// gets every block from the honest seeder.
func TestHostileWrongBlocks(t *testing.T) {
	sc := newHostileScene(t)
	var lies atomic.Int64
	sc.bad.SetStreamHandler(ProtocolBitswap, func(s network.Stream) {
		defer s.Reset()
		from := s.Conn().RemotePeer()
		out, err := openBitswap(context.Background(), sc.bad, from)
		if err != nil {
			return
		}
		defer out.Close()
		r := bufio.NewReader(s)
		for {
			m, err := ReadMessage(r)
			if err != nil {
				return
			}
			reply := &Message{}
			for _, w := range m.Wants {
				switch {
				case w.Cancel:
				case w.WantType == WantHave:
					reply.Presences = append(reply.Presences, Presence{CID: w.CID, Type: Have})
				default:
					junk := make([]byte, 64<<10)
					_, _ = rand.Read(junk)
					reply.Blocks = append(reply.Blocks, Block{CID: w.CID, Data: junk})
					lies.Add(1)
				}
			}
			if WriteMessage(out, reply) != nil {
				return
			}
		}
	})
	res := runUnderAttack(t, sc, func(context.Context) {})
	if !sc.leech.cl.Scores().Banned(sc.bad.ID(), time.Now()) {
		t.Fatalf("attacker sent %d wrong blocks and is not banned", lies.Load())
	}
	for _, pp := range res.Peers {
		if pp.Peer == sc.bad.ID() && (pp.Active || !errors.Is(pp.Err, ErrBadBlock)) {
			t.Fatalf("attacker in the result: active=%v err=%v, want cut off with ErrBadBlock", pp.Active, pp.Err)
		}
	}
	t.Logf("attacker sent %d wrong blocks", lies.Load())
}

// TestHostileUnrequestedBlocks: the attacker pushes 256 MiB of blocks
// nobody asked for. None is stored, the attacker is banned, and memory
// does not follow what it sent.
func TestHostileUnrequestedBlocks(t *testing.T) {
	sc := newHostileScene(t)
	total := int64(256 << 20)
	if raceEnabled {
		total = 64 << 20
	}
	var sent atomic.Int64
	runUnderAttack(t, sc, func(ctx context.Context) {
		s, err := openBitswap(ctx, sc.bad, sc.leech.h.ID())
		if err != nil {
			t.Errorf("opening a stream to the leecher: %v", err)
			return
		}
		defer s.Close()
		for sent.Load() < total {
			m := &Message{Blocks: []Block{randomRawBlock(1 << 20), randomRawBlock(1 << 20)}}
			if WriteMessage(s, m) != nil {
				return // the leecher may cut us off; that is fine
			}
			sent.Add(2 << 20)
		}
	})
	if !sc.leech.cl.Scores().Banned(sc.bad.ID(), time.Now()) {
		t.Fatalf("attacker pushed %d MiB of unrequested blocks and is not banned", sent.Load()>>20)
	}
	t.Logf("attacker pushed %d MiB of unrequested blocks", sent.Load()>>20)
}

// TestHostileOversizedAndMalformed: streams that announce more than
// MaxMessageSize (a 4-byte and a 5-byte length prefix), carry a block over
// MaxBlockSize, or carry bytes that are not protobuf are each reset by the
// receiver, to the leecher and to the seeder, over and over.
func TestHostileOversizedAndMalformed(t *testing.T) {
	sc := newHostileScene(t)
	big := make([]byte, 3<<20) // one block over MaxBlockSize, inside a legal frame
	bigMsg := protowireBlockMessage(big)
	attacks := map[string][]byte{
		"length over the limit":      append(binary.AppendUvarint(nil, MaxMessageSize+1), make([]byte, 1<<20)...),
		"five-byte length prefix":    {0xff, 0xff, 0xff, 0xff, 0x0f},
		"block over MaxBlockSize":    append(binary.AppendUvarint(nil, uint64(len(bigMsg))), bigMsg...),
		"not protobuf":               append(binary.AppendUvarint(nil, 64<<10), randomBytes(64<<10)...),
		"truncated field":            append(binary.AppendUvarint(nil, 3), 0x1a, 0xff, 0x7f),
		"wantlist with a broken cid": append(binary.AppendUvarint(nil, 7), 0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0x99),
	}
	var resets, tries atomic.Int64
	// Every round runs, even after the honest fetch has ended.
	runUnderAttack(t, sc, func(context.Context) {
		ctx := context.Background()
		for range 5 {
			for name, frame := range attacks {
				for _, victim := range []peer.ID{sc.leech.h.ID(), sc.seeder.h.ID()} {
					s, err := openBitswap(ctx, sc.bad, victim)
					if err != nil {
						continue
					}
					tries.Add(1)
					_, _ = s.Write(frame)
					if wasReset(s) {
						resets.Add(1)
					} else {
						t.Errorf("%s: the stream was not reset", name)
					}
				}
			}
		}
	})
	if resets.Load() == 0 || resets.Load() != tries.Load() {
		t.Fatalf("%d of %d hostile streams were reset, want all", resets.Load(), tries.Load())
	}
	t.Logf("%d hostile streams, all reset", tries.Load())
}

// protowireBlockMessage encodes a message whose one payload block carries
// data (field 3: Block{prefix=1, data=2}), without the encoder's checks.
func protowireBlockMessage(data []byte) []byte {
	prefix := cid.NewPrefixV1(cid.Raw, mh.SHA2_256).Bytes()
	var blk []byte
	blk = append(blk, 0x0a)
	blk = binary.AppendUvarint(blk, uint64(len(prefix)))
	blk = append(blk, prefix...)
	blk = append(blk, 0x12)
	blk = binary.AppendUvarint(blk, uint64(len(data)))
	blk = append(blk, data...)
	out := []byte{0x1a}
	out = binary.AppendUvarint(out, uint64(len(blk)))
	return append(out, blk...)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// TestHostileMillionWants: the attacker asks the honest seeder for a
// million blocks it does not have, in 20 messages, while the leecher
// fetches from it. The seeder holds at most MaxWantsPerPeer of them and
// refuses the rest; the leecher's fetch is unaffected.
func TestHostileMillionWants(t *testing.T) {
	sc := newHostileScene(t)
	const total, perMsg = 1_000_000, 50_000
	// The attacker reads the DONT_HAVEs, so the seeder's sends succeed and
	// it keeps the attacker's ledger (and its counters) throughout.
	var answers atomic.Int64
	sc.bad.SetStreamHandler(ProtocolBitswap, func(s network.Stream) {
		defer s.Reset()
		r := bufio.NewReader(s)
		for {
			m, err := ReadMessage(r)
			if err != nil {
				return
			}
			answers.Add(int64(len(m.Presences)))
		}
	})
	runUnderAttack(t, sc, func(ctx context.Context) {
		s, err := openBitswap(ctx, sc.bad, sc.seeder.h.ID())
		if err != nil {
			t.Errorf("opening a stream to the seeder: %v", err)
			return
		}
		defer s.Close()
		for start := 0; start < total; start += perMsg {
			m := &Message{Wants: make([]Entry, 0, perMsg)}
			for i := start; i < start+perMsg; i++ {
				m.Wants = append(m.Wants, Entry{CID: fakeCID(i), WantType: WantBlock, SendDontHave: true})
			}
			if err := WriteMessage(s, m); err != nil {
				t.Errorf("sending wants %d..: %v", start, err)
				return
			}
		}
	})
	var st PeerStats
	deadline := time.Now().Add(20 * time.Second)
	for {
		st = sc.seeder.srv.PeerStats()[sc.bad.ID()]
		if st.WantsReceived == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("seeder saw %+v of the attacker, want %d wants received", st, total)
		}
		time.Sleep(10 * time.Millisecond)
	}
	limit := DefaultServerConfig().MaxWantsPerPeer
	if st.WantsRefused < total-uint64(2*limit) {
		t.Fatalf("seeder refused %d of %d wants, want all but at most %d", st.WantsRefused, total, 2*limit)
	}
	sc.seeder.srv.mu.Lock()
	held := 0
	if l := sc.seeder.srv.ledgers[sc.bad.ID()]; l != nil {
		held = len(l.wants)
	}
	sc.seeder.srv.mu.Unlock()
	if held > limit {
		t.Fatalf("seeder holds %d wants of the attacker, limit %d", held, limit)
	}
	t.Logf("seeder: %+v; attacker read %d DONT_HAVEs", st, answers.Load())
}

// TestHostileEndlessStreams: the attacker opens more inbound streams than
// MaxInboundStreamsPerPeer that announce a 4 MiB message and trickle it
// (never finishing), plus one stream that sends valid but useless
// messages as fast as it can. The streams beyond the limit are reset at
// once; the rest cost memory in proportion to what was sent, not to what
// was announced; the honest fetch completes.
func TestHostileEndlessStreams(t *testing.T) {
	sc := newHostileScene(t)
	limit := DefaultNetworkConfig().MaxInboundStreamsPerPeer
	var refused, held atomic.Int64
	var flood atomic.Int64
	runUnderAttack(t, sc, func(ctx context.Context) {
		var wg sync.WaitGroup
		defer wg.Wait()
		for range 2 * limit {
			s, err := openBitswap(ctx, sc.bad, sc.leech.h.ID())
			if err != nil {
				continue
			}
			_, _ = s.Write(binary.AppendUvarint(nil, MaxMessageSize))
			wg.Go(func() {
				defer s.Reset()
				// A reset comes within a moment; a held stream stays open.
				_ = s.SetReadDeadline(time.Now().Add(time.Second))
				_, err := s.Read(make([]byte, 1))
				if err != nil && !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
					refused.Add(1)
					return
				}
				held.Add(1)
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
						if _, err := s.Write([]byte{0}); err != nil {
							return
						}
					}
				}
			})
		}
		wg.Go(func() {
			s, err := openBitswap(ctx, sc.bad, sc.leech.h.ID())
			if err != nil {
				return
			}
			defer s.Reset()
			m := &Message{Presences: []Presence{{CID: fakeCID(1), Type: DontHave}}}
			for ctx.Err() == nil {
				if WriteMessage(s, m) != nil {
					return
				}
				flood.Add(1)
			}
		})
	})
	// The flood stream took one slot before or after the trickling ones.
	if held.Load() > int64(limit) || refused.Load() < int64(limit-1) {
		t.Fatalf("%d trickling streams held, %d reset; want at most %d held and the rest reset", held.Load(), refused.Load(), limit)
	}
	t.Logf("%d trickling streams held, %d reset at once; %d useless messages flooded", held.Load(), refused.Load(), flood.Load())
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// TestHostileConnectDisconnectLoop: 200 times, a fresh attacker connects
// to the seeder, asks for a block and hangs up at once. The seeder keeps
// no ledger for any of them and the honest fetch completes.
func TestHostileConnectDisconnectLoop(t *testing.T) {
	sc := newHostileScene(t)
	rounds := 200
	if raceEnabled {
		rounds = 50
	}
	var ids []peer.ID
	// Every round runs, even after the honest fetch has ended.
	runUnderAttack(t, sc, func(context.Context) {
		ctx := context.Background()
		for i := range rounds {
			h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.DisableRelay(), libp2p.ResourceManager(nil), libp2p.NoSecurity)
			if err != nil {
				t.Error(err)
				return
			}
			ids = append(ids, h.ID())
			if err := h.Connect(ctx, sc.seeder.info()); err == nil {
				if s, err := openBitswap(ctx, h, sc.seeder.h.ID()); err == nil {
					_ = WriteMessage(s, &Message{Wants: []Entry{{CID: sc.d.leaves[i%len(sc.d.leaves)], WantType: WantBlock}}})
					_ = s.Close()
				}
			}
			_ = h.Close()
		}
	})
	waitFor(t, func() bool {
		sc.seeder.srv.mu.Lock()
		defer sc.seeder.srv.mu.Unlock()
		for _, id := range ids {
			if sc.seeder.srv.ledgers[id] != nil {
				return false
			}
		}
		return true
	})
	if n := len(sc.seeder.h.Network().Peers()); n > 3 {
		t.Fatalf("seeder still connected to %d peers after the loop, want the leecher and the attacker host only", n)
	}
	t.Logf("%d connect-want-disconnect rounds; the seeder kept no ledger", len(ids))
}
