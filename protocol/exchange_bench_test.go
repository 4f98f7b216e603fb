package protocol

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockservice"
	bsblockstore "github.com/ipfs/boxo/blockstore"
	chunk "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	uhelpers "github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	ufsio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// BenchmarkExchange measures, in one run on loopback with real libp2p hosts
// (go-libp2p's defaults: TLS 1.3 and yamux on TCP, as the daemons
// negotiate them; QUIC), the throughput of:
//
//   - raw: one libp2p stream carrying the file's bytes — the transport's ceiling;
//   - shoal: shoal's client fetching the file's DAG from shoal servers;
//   - boxo: boxo's Bitswap (what Kubo runs) fetching the same DAG from boxo
//     servers with merkledag.FetchGraph (as `ipfs pin add` does).
//
// The file is a real unixfs-v1-2025 DAG (1 MiB raw leaves under a dag-pb
// root). Stores are in memory on both sides, so the numbers are the
// exchange's, not a disk's. Run (about two minutes):
//
//	go test -run '^$' -bench BenchmarkExchange -benchtime 2x ./protocol/
//
// and compare MB/s between lines; BENCHMARKS.md records the ratios.
// SHOAL_BENCH_MIB sets the file size (default 256); SHOAL_BENCH_TRACE=1
// logs each shoal fetch's pipeline per seeder (traceFetch).
//
// Beside MB/s every row prints, for the transfer alone (exchange_meter_test.go):
// cpu-ms/MiB, the CPU time of the whole process (both ends) per MiB moved,
// from getrusage; heap-B/B, bytes the Go heap allocated per byte moved. A
// raw row adds sha256-cpu-ms/MiB (one core hashing the same bytes) and
// ref-cpu-ms/MiB = raw + sha256, the floor the issue sets; shoal and boxo
// rows add x-raw-MB/s (throughput over the raw stream of the same
// transport, same run) and x-ref-cpu (CPU over that reference).
func BenchmarkExchange(b *testing.B) {
	size := 256 << 20
	if v := benchEnvInt("SHOAL_BENCH_MIB"); v > 0 {
		size = v << 20
	}
	d := makeUnixFSDAG(b, size)
	refs := newExchangeRefs()
	for _, tr := range []string{"tcp", "quic"} {
		b.Run("raw/"+tr, func(b *testing.B) { benchRaw(b, tr, size, refs) })
		for _, seeders := range []int{1, 3} {
			b.Run(fmt.Sprintf("shoal/%s/seeders=%d", tr, seeders), func(b *testing.B) { benchShoal(b, tr, seeders, d, refs) })
			b.Run(fmt.Sprintf("boxo/%s/seeders=%d", tr, seeders), func(b *testing.B) { benchBoxo(b, tr, seeders, d, refs) })
		}
	}
}

type unixfsDAG struct {
	root   cid.Cid
	blocks []blocks.Block
	size   int64
}

// makeUnixFSDAG imports size random bytes with boxo's importer configured
// to the unixfs-v1-2025 profile.
func makeUnixFSDAG(tb testing.TB, size int) *unixfsDAG {
	tb.Helper()
	data := benchData(size, 1)
	bstore := bsblockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	dag := merkledag.NewDAGService(blockservice.New(bstore, nil))
	nd := boxoImportFile(tb, dag, data)
	return collectDAG(tb, bstore, nd.Cid(), int64(size))
}

func benchData(size int, seed uint64) []byte {
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 2))
	for i := 0; i+8 <= len(data); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	return data
}

// boxoImportFile imports data into dag the way Kubo does with the
// unixfs-v1-2025 profile.
func boxoImportFile(tb testing.TB, dag ipld.DAGService, data []byte) ipld.Node {
	tb.Helper()
	ufsio.UnixFS_v1_2025.ApplyGlobals()
	params := uhelpers.DagBuilderParams{
		Maxlinks:   ufsio.UnixFS_v1_2025.FileDAGWidth,
		RawLeaves:  true,
		CidBuilder: ufsio.UnixFS_v1_2025.CidBuilder(),
		Dagserv:    dag,
	}
	db, err := params.New(chunk.NewSizeSplitter(bytes.NewReader(data), ufsio.UnixFS_v1_2025.ChunkSize))
	if err != nil {
		tb.Fatal(err)
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		tb.Fatal(err)
	}
	return nd
}

// collectDAG lists the blocks under root, walking from the root: the
// blockstore's key listing would give raw-codec CIDs, not the ones the DAG
// links by.
func collectDAG(tb testing.TB, bstore bsblockstore.Blockstore, root cid.Cid, size int64) *unixfsDAG {
	tb.Helper()
	out := &unixfsDAG{root: root, size: size}
	queue := []cid.Cid{root}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		blk, err := bstore.Get(context.Background(), c)
		if err != nil {
			tb.Fatal(err)
		}
		out.blocks = append(out.blocks, blk)
		links, err := dagPBLinks(c, blk.RawData())
		if err != nil {
			tb.Fatal(err)
		}
		queue = append(queue, links...)
	}
	return out
}

// dagPBLinks is the Links function of the shoal client, from boxo's
// decoder (the benchmark must not import shoal's content package).
func dagPBLinks(c cid.Cid, data []byte) ([]cid.Cid, error) {
	if c.Type() != cid.DagProtobuf {
		return nil, nil
	}
	nd, err := merkledag.DecodeProtobuf(data)
	if err != nil {
		return nil, err
	}
	out := make([]cid.Cid, 0, len(nd.Links()))
	for _, l := range nd.Links() {
		out = append(out, l.Cid)
	}
	return out, nil
}

func benchHost(tb testing.TB, transport string) host.Host {
	tb.Helper()
	addr := "/ip4/127.0.0.1/tcp/0"
	if transport == "quic" {
		addr = "/ip4/127.0.0.1/udp/0/quic-v1"
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings(addr), libp2p.DisableRelay(),
		libp2p.ResourceManager(&network.NullResourceManager{}))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return h
}

func benchConnect(tb testing.TB, a, b host.Host) {
	tb.Helper()
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		tb.Fatal(err)
	}
}

func benchRaw(b *testing.B, transport string, size int, refs *exchangeRefs) {
	refs.reportRaw(b, transport, runRawStreams(b, transport, 1, size))
}

// benchStore serves the seeders' blocks without copying them (boxo's
// in-memory datastore does not copy either).
type benchStore struct{ *clientStore }

// shoalStore is what a shoal endpoint in the benchmark reads and writes.
type shoalStore interface {
	Blocks
	GetSize(ctx context.Context, c cid.Cid) (int, error)
}

// shoalPeer is one shoal exchange endpoint on its own host.
type shoalPeer struct {
	h     host.Host
	store shoalStore
	net   *Network
	srv   *Server
	cl    *Client
}

func newShoalPeer(tb testing.TB, transport string, store shoalStore) *shoalPeer {
	tb.Helper()
	p := &shoalPeer{h: benchHost(tb, transport), store: store}
	ccfg := DefaultClientConfig()
	ccfg.Links = dagPBLinks
	if benchTrace {
		ccfg.ProgressInterval = 20 * time.Millisecond
	}
	p.net, p.srv, p.cl = startPeer(tb, p.h, store, peerOpts{client: ccfg})
	tb.Cleanup(func() {
		p.cl.Close()
		p.srv.Close()
		p.net.Close()
	})
	return p
}

func benchShoal(b *testing.B, transport string, seeders int, d *unixfsDAG, refs *exchangeRefs) {
	var seeds []*shoalPeer
	var dagBytes int64
	for _, blk := range d.blocks {
		dagBytes += int64(len(blk.RawData()))
	}
	for range seeders {
		s := newClientStore()
		for _, blk := range d.blocks {
			s.Set(blk.Cid(), blk.RawData())
		}
		seeds = append(seeds, newShoalPeer(b, transport, benchStore{s}))
	}
	b.SetBytes(d.size)
	var dup float64
	var m exchangeMeter
	for b.Loop() {
		b.StopTimer()
		leech := newShoalPeer(b, transport, newArenaStore(dagBytes, len(d.blocks)))
		for _, s := range seeds {
			benchConnect(b, leech.h, s.h)
		}
		m.start()
		b.StartTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		f, err := leech.cl.Fetch(ctx, d.root)
		if err != nil {
			b.Fatal(err)
		}
		traced := traceFetch(b, f)
		res, err := f.Wait()
		<-traced
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		if res.Blocks != len(d.blocks) {
			b.Fatalf("fetched %d blocks, DAG has %d", res.Blocks, len(d.blocks))
		}
		dup = res.DuplicateRatio
		b.StopTimer()
		m.stop(d.size)
		leech.cl.Close()
		leech.srv.Close()
		leech.net.Close()
		leech.h.Close()
		b.StartTimer()
	}
	b.ReportMetric(dup, "dup-ratio")
	refs.reportExchange(b, transport, &m)
}

// boxoPeer is one boxo Bitswap endpoint on its own host.
type boxoPeer struct {
	h     host.Host
	bs    *bitswap.Bitswap
	store bsblockstore.Blockstore
}

func newBoxoPeer(tb testing.TB, transport string, blks []blocks.Block) *boxoPeer {
	tb.Helper()
	h := benchHost(tb, transport)
	store := bsblockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	if err := store.PutMany(context.Background(), blks); err != nil {
		tb.Fatal(err)
	}
	bs := bitswap.New(context.Background(), bsnet.NewFromIpfsHost(h), nil, store)
	tb.Cleanup(func() { bs.Close() })
	return &boxoPeer{h: h, bs: bs, store: store}
}

func benchBoxo(b *testing.B, transport string, seeders int, d *unixfsDAG, refs *exchangeRefs) {
	var seeds []*boxoPeer
	for range seeders {
		seeds = append(seeds, newBoxoPeer(b, transport, d.blocks))
	}
	b.SetBytes(d.size)
	var m exchangeMeter
	for b.Loop() {
		b.StopTimer()
		leech := newBoxoPeer(b, transport, nil)
		for _, s := range seeds {
			benchConnect(b, leech.h, s.h)
		}
		dag := merkledag.NewDAGService(blockservice.New(leech.store, leech.bs))
		m.start()
		b.StartTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err := merkledag.FetchGraph(ctx, d.root, dag)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		m.stop(d.size)
		for _, blk := range d.blocks {
			if ok, _ := leech.store.Has(context.Background(), blk.Cid()); !ok {
				b.Fatalf("boxo fetch finished without block %s", blk.Cid())
			}
		}
		leech.bs.Close()
		leech.h.Close()
		b.StartTimer()
	}
	refs.reportExchange(b, transport, &m)
}

// benchTrace (SHOAL_BENCH_TRACE=1) prints, every 20 ms of a shoal fetch,
// each seeder's request window, blocks in flight, measured rate and
// smoothed request latency: the pipeline the throughput depends on.
var benchTrace = os.Getenv("SHOAL_BENCH_TRACE") != ""

// traceFetch prints f's per-peer pipeline while it runs (when benchTrace);
// the channel closes when f has ended and the trace is printed.
func traceFetch(b *testing.B, f *Fetch) <-chan struct{} {
	done := make(chan struct{})
	if !benchTrace {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		for {
			select {
			case ev := <-f.Updates():
				line := fmt.Sprintf("%7.1fms %4d/%4d blocks %3d in flight", float64(ev.Elapsed.Microseconds())/1e3, ev.BlocksDone, ev.BlocksKnown, ev.InFlight)
				for i, p := range ev.Peers {
					line += fmt.Sprintf(" | p%d win %2d fl %2d %6.1f MB/s srtt %6.1fms", i, p.Window, p.InFlight, p.Rate/1e6, float64(p.SRTT.Microseconds())/1e3)
				}
				b.Log(line)
			case <-f.Done():
				return
			}
		}
	}()
	return done
}

func benchEnvInt(name string) int {
	var v int
	if s := os.Getenv(name); s != "" {
		fmt.Sscan(s, &v)
	}
	return v
}
