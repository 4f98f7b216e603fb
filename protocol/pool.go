package protocol

import "sync"

// bufPool recycles byte buffers of one capacity. It keeps up to keep free
// buffers on a stack of its own, which outlives garbage collections and is
// shared by all goroutines alike, and hands any beyond that to a sync.Pool.
//
// Why not only a sync.Pool: a sync.Pool empties itself over two garbage
// collections, and its per-P private slot is not visible to a goroutine
// running on another P. A frame is read on one goroutine and released on
// another (the stream's dispatcher), so with a sync.Pool alone the reader
// missed buffers the dispatcher had just put back and allocated new ones,
// and a fetch that began after two collections paid for all its buffers
// again: 4.75 MiB of fresh 256 KiB–1.25 MiB buffers per 256 MiB fetched
// from one QUIC seeder, 7.25 MiB from three (bench/exchange.md, branch
// quicalloc). The kept stack bounds what stays allocated while idle to
// keep buffers of size bytes per pool (rxPools, txPool).
//
// Ownership rule: a buffer from get belongs to the caller alone until it
// passes it to put; after put, neither the caller nor anything holding a
// slice of the buffer may touch its bytes, because the next get (from any
// goroutine) hands the same memory out again. put takes only buffers that
// came from get on the same pool (their capacity is size).
//
// The pools and who owns their buffers: rxPools, a received frame
// (rxFrame, message_io.go); txPool, one writeFrame call; sendBufs, the
// server's batch whose block was read into the buffer, from that read
// until sendBatch returns, after the message's Send (server_buf.go).
type bufPool struct {
	size int
	keep int

	mu    sync.Mutex
	free  []*[]byte // LIFO: the buffer used last is the likeliest in cache
	spill sync.Pool
}

func newBufPool(size, keep int) *bufPool {
	return &bufPool{size: size, keep: keep, free: make([]*[]byte, 0, keep)}
}

// get returns an empty buffer of capacity size.
func (p *bufPool) get() *[]byte {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return b
	}
	p.mu.Unlock()
	if b, ok := p.spill.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, p.size)
	return &b
}

// put gives b back; see the ownership rule.
func (p *bufPool) put(b *[]byte) {
	if cap(*b) != p.size {
		panic("protocol: buffer put into a pool of another size")
	}
	*b = (*b)[:0]
	p.mu.Lock()
	if len(p.free) < p.keep {
		p.free = append(p.free, b)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.spill.Put(b)
}
