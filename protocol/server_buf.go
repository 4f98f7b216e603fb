package protocol

import (
	"context"

	"github.com/ipfs/go-cid"
)

// BlockstoreInto is what a Blockstore may offer beside Get for the
// blocks the server sends (blockstore.Disk and Memory do): GetInto reads
// c into dst's array when it fits its capacity, or returns a slice of
// the store's own (a buffer it made, or bytes it holds and nobody
// writes). Either way the server only reads the result, and the store
// keeps no reference to dst or the result once GetInto has returned.
// It checks what it reads as Get does.
//
// Why: a seeder reading each 1 MiB block into a fresh buffer paid for
// zeroing it, for the first-touch page faults and for collecting it:
// a third of its block reads and most of its GC (bench/e2e.md,
// "seedbuf"). With GetInto the server reads blocks into buffers it
// reuses (sendBufs).
type BlockstoreInto interface {
	GetInto(ctx context.Context, c cid.Cid, dst []byte) ([]byte, error)
}

// Blocks the server sends are read into pooled buffers of sendBufSize
// bytes when they are at least half that size: the unixfs-v1-2025 leaf
// (1 MiB) and the last, shorter leaf of most files. Smaller blocks
// (DAG nodes, small files) are read by Get: a batch holds up to
// MaxBatchBytes of them, and a whole buffer each would hold up to 16
// times that.
const sendBufSize = 1 << 20

// sendBufs holds the server's block buffers. Kept free while idle: 8 ×
// 1 MiB, what three peers fetching at once use (each has up to
// peerPipeline batches being written and one being read, a 1 MiB leaf
// per batch); more come from, and go back to, its sync.Pool.
//
// Ownership (bufPool's rule, for these buffers): the server's batch
// being built takes a buffer (readBlock) and holds it in batch.bufs
// while a Block of the batch's message points into it; sendBatch gives
// every buffer of the batch back as it returns — after Send has
// returned, when the message has been written (MessageSender: Send does
// not read the message after it returns; Network's writeFrame copies a
// block's bytes into the stream's Writes and reads none after), or Send
// failed, or the send never started (closing). Nothing else gives them
// back, and nothing reads a batch's blocks after sendBatch. That a
// stream's Write has copied its bytes when it returns, even when it
// fails or the stream is reset, holds for go-yamux v5.1.0 (sendMsg
// copies the body before queuing it), quic-go v0.64.1 (STREAM frames are
// copied from the caller's slice under the stream's lock, and a reset or
// closed stream takes nothing more from it) and the simulator's light
// streams (newSeg copies): re-check it when they change.
var sendBufs = newBufPool(sendBufSize, 8)

// blockBufPool is where a Server takes its block buffers (sendBufs; a
// checking pool in tests).
type blockBufPool interface {
	get() *[]byte
	put(*[]byte)
}

// readBlock reads c, whose size is n, for a batch: into a pooled buffer
// when the store has GetInto and the block is pool-sized, else with Get.
// buf is the pooled buffer data lies in, for the batch to hold until the
// block is sent; nil when data lies elsewhere (the buffer, if one was
// taken, is back in the pool).
func (s *Server) readBlock(c cid.Cid, n int) (data []byte, buf *[]byte, err error) {
	if s.into == nil || n < sendBufSize/2 || n > sendBufSize {
		data, err = s.bs.Get(s.ctx, c)
		return data, nil, err
	}
	buf = s.bufs.get()
	data, err = s.into.GetInto(s.ctx, c, *buf)
	if err != nil || len(data) == 0 || &data[0] != &(*buf)[:1][0] {
		s.bufs.put(buf) // nothing of the block is in it
		return data, nil, err
	}
	return data, buf, nil
}

// release gives back the pooled buffers the batch's blocks lie in (see
// sendBufs); neither the batch's message nor its blocks may be read
// afterwards. Safe to call twice.
func (b *batch) release(p blockBufPool) {
	for i, buf := range b.bufs {
		p.put(buf)
		b.bufs[i] = nil
	}
	b.bufs = b.bufs[:0]
}
