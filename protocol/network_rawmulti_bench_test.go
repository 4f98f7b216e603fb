package protocol

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
)

// BenchmarkRawStreams is the raw reference of BenchmarkExchange with as
// many sources as shoal has seeders: each of n source hosts streams its
// share of the bytes to one sink over its own connection, the sink reading
// all n streams at once. What the transport alone costs with n
// connections (heap-B/B above all: quic-go's pools warm up per connection)
// is what a shoal fetch from n seeders is to be compared with. Run:
//
//	go test -run '^$' -bench BenchmarkRawStreams -benchtime 1x -count 3 ./protocol/
func BenchmarkRawStreams(b *testing.B) {
	size := 256 << 20
	if v := benchEnvInt("SHOAL_BENCH_MIB"); v > 0 {
		size = v << 20
	}
	for _, tr := range []string{"tcp", "quic"} {
		for _, n := range []int{1, 3} {
			b.Run(fmt.Sprintf("%s/sources=%d", tr, n), func(b *testing.B) { benchRawStreams(b, tr, n, size) })
		}
	}
}

func benchRawStreams(b *testing.B, transport string, sources, size int) {
	m := runRawStreams(b, transport, sources, size)
	b.ReportMetric(m.cpuMsPerMiB(), "cpu-ms/MiB")
	b.ReportMetric(m.heapPerByte(), "heap-B/B")
}

// runRawStreams is the raw reference's loop (benchRaw, benchRawStreams):
// sources hosts each stream their share of size bytes to one sink, over
// their own connections, read all at once; it returns the meter.
func runRawStreams(b *testing.B, transport string, sources, size int) *exchangeMeter {
	dst := benchHost(b, transport)
	share := size / sources / (1 << 20) * (1 << 20)
	var srcs []host.Host
	for range sources {
		src := benchHost(b, transport)
		buf := make([]byte, 1<<20)
		src.SetStreamHandler("/shoal-bench/raw", func(s network.Stream) {
			defer s.Close()
			for sent := 0; sent < share; sent += len(buf) {
				if _, err := s.Write(buf); err != nil {
					return
				}
			}
		})
		benchConnect(b, dst, src)
		srcs = append(srcs, src)
	}
	b.SetBytes(int64(share * sources))
	rbufs := make([][]byte, sources)
	for i := range rbufs {
		rbufs[i] = make([]byte, 1<<20)
	}
	var m exchangeMeter
	for b.Loop() {
		m.start()
		var wg sync.WaitGroup
		errs := make([]error, sources)
		for i, src := range srcs {
			wg.Go(func() {
				s, err := dst.NewStream(context.Background(), src.ID(), "/shoal-bench/raw")
				if err != nil {
					errs[i] = err
					return
				}
				defer s.Close()
				n, err := io.CopyBuffer(io.Discard, s, rbufs[i])
				if err == nil && n != int64(share) {
					err = fmt.Errorf("%d of %d bytes", n, share)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatalf("raw stream: %v", err)
			}
		}
		m.stop(int64(share * sources))
	}
	return &m
}
