package protocol

import (
	"context"
	"io"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
)

// Throughput of the server over loopback libp2p (TCP, default security and
// muxer), against the reference of one raw libp2p stream carrying the same
// bytes between the same kind of hosts. Run:
//
//	go test -run XXX -bench 'BenchmarkServe|BenchmarkRawStream' ./protocol

const benchBlocks, benchBlockSize = 32, 1 << 20

func BenchmarkServeThroughput(b *testing.B) {
	blks := seqBlocks(b, benchBlocks, benchBlockSize)
	srv := newServerNode(b, DefaultServerConfig(), blks...)
	cl := newRawClient(b)
	bsConnect(b, cl.h, srv.h)
	wants := make([]Entry, len(blks))
	for i, blk := range blks {
		wants[i] = Entry{CID: blk.CID}
	}
	b.SetBytes(benchBlocks * benchBlockSize)
	for b.Loop() {
		cl.send(b, srv.h.ID(), &Message{Wants: wants})
		n := 0
		cl.collect(b, func(m *Message) bool {
			n += len(m.Blocks)
			return n == len(blks)
		})
	}
}

func BenchmarkRawStreamReference(b *testing.B) {
	ha, hb := bsTestHost(b), bsTestHost(b)
	bsConnect(b, ha, hb)
	done := make(chan int64, 1)
	hb.SetStreamHandler("/bench/raw", func(s network.Stream) {
		n, _ := io.Copy(io.Discard, s)
		_ = s.Close()
		done <- n
	})
	chunk := make([]byte, benchBlockSize)
	b.SetBytes(benchBlocks * benchBlockSize)
	for b.Loop() {
		s, err := ha.NewStream(context.Background(), hb.ID(), "/bench/raw")
		if err != nil {
			b.Fatal(err)
		}
		for range benchBlocks {
			if _, err := s.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		_ = s.CloseWrite()
		if n := <-done; n != benchBlocks*benchBlockSize {
			b.Fatalf("reference stream carried %d bytes", n)
		}
		_ = s.Close()
	}
}
