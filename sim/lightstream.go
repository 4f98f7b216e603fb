package sim

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// lstream is a light stream: two halves (dir[0] written by the end that
// opened it, dir[1] by the end that accepted it) and what their readers
// and writers wait on.
type lstream struct {
	conn *lconnPair

	mu      sync.Mutex
	changed signal
	dir     [2]half
	ends    [2]lend
	freed   int // ends that called Close or Reset
}

func newLStream(c *lconnPair, out, back *lightPath) *lstream {
	st := &lstream{conn: c}
	for i, p := range []*lightPath{out, back} {
		h := &st.dir[i]
		h.st, h.path = st, p
		h.up.h, h.down.h = h, h
	}
	for i := range st.ends {
		st.ends[i] = lend{st: st, side: i}
	}
	return st
}

func (st *lstream) wakeLocked() { st.changed.broadcast() }

// waitLocked releases the stream's mutex until something changes or the
// deadline passes, and takes it again.
func (st *lstream) waitLocked(deadline time.Time) {
	ch := st.changed.wait()
	st.mu.Unlock()
	if deadline.IsZero() {
		<-ch
	} else {
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
	st.mu.Lock()
}

// reset aborts both halves with err, dropping what they carry.
func (st *lstream) reset(err error) {
	st.mu.Lock()
	for i := range st.dir {
		h := &st.dir[i]
		if h.err == nil {
			h.err = err
		}
		h.dropLocked()
	}
	st.wakeLocked()
	st.mu.Unlock()
	for i := range st.dir {
		h := &st.dir[i]
		h.path.up.drop(&h.up)
		h.path.down.drop(&h.down)
	}
}

// errStreamStopped is what a writer gets once the reader closed its side.
var errStreamStopped = &network.StreamError{ErrorCode: 0, Remote: true, TransportError: errors.New("sim: the reader closed the stream")}

// lend is one end of a light stream: network.MuxedStream.
type lend struct {
	st   *lstream
	side int // 0 opened it, 1 accepted it
	// Deadlines, guarded by st.mu.
	rdl, wdl time.Time
	freed    bool
}

func (e *lend) out() *half { return &e.st.dir[e.side] }
func (e *lend) in() *half  { return &e.st.dir[1-e.side] }

func timedOut(dl time.Time) bool { return !dl.IsZero() && !time.Now().Before(dl) }

func (e *lend) Read(b []byte) (int, error) {
	st := e.st
	st.mu.Lock()
	defer st.mu.Unlock()
	h := e.in()
	for {
		switch {
		case h.err != nil:
			return 0, h.err
		case h.stopped:
			return 0, errReadClosed
		case h.readable():
			n := 0
			for n < len(b) && h.readable() {
				s := h.ready[0]
				c := copy(b[n:], s.b[h.off:])
				n += c
				h.off += c
				if h.off == len(s.b) {
					h.ready[0] = nil
					h.ready = h.ready[1:]
					h.off = 0
					h.next++
					s.release()
				}
			}
			h.pending -= n
			st.wakeLocked()
			return n, nil
		case h.atEOF():
			return 0, io.EOF
		case timedOut(e.rdl):
			return 0, os.ErrDeadlineExceeded
		}
		if len(b) == 0 {
			return 0, nil
		}
		st.waitLocked(e.rdl)
	}
}

var (
	errReadClosed  = errors.New("sim: read on a stream closed for reading")
	errWriteClosed = errors.New("sim: write on a stream closed for writing")
)

func (e *lend) Write(b []byte) (int, error) {
	st := e.st
	h := e.out()
	n := 0
	for len(b) > 0 {
		st.mu.Lock()
		for {
			var err error
			switch {
			case h.err != nil:
				err = h.err
			case h.wclosed:
				err = errWriteClosed
			case h.stopped:
				err = errStreamStopped
			case timedOut(e.wdl):
				err = os.ErrDeadlineExceeded
			}
			if err != nil {
				st.mu.Unlock()
				return n, err
			}
			if h.pending < h.path.window {
				break
			}
			st.waitLocked(e.wdl)
		}
		c := min(len(b), lightSegment, h.path.window-h.pending)
		h.pending += c
		seq := h.written
		h.written++
		st.mu.Unlock()
		h.path.up.push(&h.up, newSeg(b[:c], seq))
		b = b[c:]
		n += c
	}
	return n, nil
}

// CloseWrite sends the end of the stream behind the data written.
func (e *lend) CloseWrite() error {
	st := e.st
	h := e.out()
	st.mu.Lock()
	if h.wclosed || h.err != nil {
		st.mu.Unlock()
		return nil
	}
	h.wclosed = true
	seq := h.written
	h.written++
	st.wakeLocked()
	st.mu.Unlock()
	h.path.up.push(&h.up, &seg{fin: true, seq: seq})
	return nil
}

// CloseRead stops reading: what is buffered and what comes later is
// dropped, and the writer's writes fail.
func (e *lend) CloseRead() error {
	st := e.st
	h := e.in()
	st.mu.Lock()
	if !h.stopped {
		h.stopped = true
		h.dropLocked()
		st.wakeLocked()
	}
	st.mu.Unlock()
	return nil
}

func (e *lend) Close() error {
	_ = e.CloseWrite()
	_ = e.CloseRead()
	e.free()
	return nil
}

func (e *lend) Reset() error { return e.ResetWithError(0) }

func (e *lend) ResetWithError(code network.StreamErrorCode) error {
	e.st.resetBy(e.side, code)
	e.free()
	return nil
}

// resetBy aborts the stream: the end on side sees a local reset, the
// other a remote one.
func (st *lstream) resetBy(side int, code network.StreamErrorCode) {
	st.mu.Lock()
	for i := range st.dir {
		h := &st.dir[i]
		if h.err == nil {
			// dir[i] is read by the end on side 1-i.
			h.err = &network.StreamError{ErrorCode: code, Remote: 1-i != side}
		}
	}
	st.mu.Unlock()
	st.reset(nil)
}

// free: this end is done with the stream; once both are, the connection
// forgets it.
func (e *lend) free() {
	st := e.st
	st.mu.Lock()
	if e.freed {
		st.mu.Unlock()
		return
	}
	e.freed = true
	st.freed++
	both := st.freed == 2
	st.mu.Unlock()
	if both {
		st.conn.forget(st)
	}
}

func (e *lend) SetDeadline(t time.Time) error      { return e.setDeadline(&t, &t) }
func (e *lend) SetReadDeadline(t time.Time) error  { return e.setDeadline(&t, nil) }
func (e *lend) SetWriteDeadline(t time.Time) error { return e.setDeadline(nil, &t) }

// setDeadline sets the read and/or write deadline and wakes the waiters
// to look at it.
func (e *lend) setDeadline(read, write *time.Time) error {
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	if read != nil {
		e.rdl = *read
	}
	if write != nil {
		e.wdl = *write
	}
	e.st.wakeLocked()
	return nil
}

var _ network.MuxedStream = (*lend)(nil)
