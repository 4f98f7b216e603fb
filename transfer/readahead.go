package transfer

import (
	"io"
	"sync"
)

// ReadAhead is the read-ahead policy of a streamed file: the first read
// from the start of the file calls fetch (once), which starts a fetch of
// the whole DAG so blocks arrive in parallel ahead of the reader. A read
// that starts elsewhere (a Range request) calls nothing, and the reader
// fetches only the blocks it touches. Like the reader it wraps, it is for
// one goroutine at a time.
type ReadAhead struct {
	r     io.ReadSeeker
	fetch func()
	pos   int64
	once  sync.Once
}

// NewReadAhead wraps r, a reader at offset 0 of a file's DAG.
func NewReadAhead(r io.ReadSeeker, fetch func()) *ReadAhead {
	return &ReadAhead{r: r, fetch: fetch}
}

// Read reads from r, first calling fetch when this read, the first from
// the start of the file, is the one that would read it whole.
func (a *ReadAhead) Read(p []byte) (int, error) {
	if a.pos == 0 {
		a.once.Do(a.fetch)
	}
	k, err := a.r.Read(p)
	a.pos += int64(k)
	return k, err
}

// Seek moves r, and with it where the next read starts.
func (a *ReadAhead) Seek(off int64, whence int) (int64, error) {
	pos, err := a.r.Seek(off, whence)
	if err == nil {
		a.pos = pos
	}
	return pos, err
}
