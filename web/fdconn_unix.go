//go:build unix

package web

import (
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
)

// maxPendingFDs is how many received descriptors a connection keeps for
// its requests; more are closed on arrival.
const maxPendingFDs = 1

func listenFileSocket(path string) (net.Listener, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("file socket %s: %w", path, err)
	}
	// The home is 0700, so nobody else could reach the socket before
	// this narrows it further.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("file socket %s: %w", path, err)
	}
	return fdListener{l}, nil
}

// fdListener hands out connections that keep the descriptors they
// receive.
type fdListener struct{ *net.UnixListener }

func (l fdListener) Accept() (net.Conn, error) {
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	return &fdConn{UnixConn: c}, nil
}

// fdConn is a unix connection that collects the descriptors (SCM_RIGHTS)
// arriving with its bytes, for the request they came with (take).
// Descriptors no request took are closed with the connection.
type fdConn struct {
	*net.UnixConn
	oob [64]byte // read by Read only: the server reads a connection from one goroutine at a time

	mu     sync.Mutex
	fds    []int
	closed bool
}

func (c *fdConn) Read(p []byte) (int, error) {
	n, oobn, _, _, err := c.ReadMsgUnix(p, c.oob[:])
	if oobn > 0 {
		c.keep(c.oob[:oobn])
	}
	return n, err
}

// keep parses control messages and keeps the descriptors they carry (Go
// receives them close-on-exec), closing any beyond maxPendingFDs.
func (c *fdConn) keep(oob []byte) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range msgs {
		fds, err := syscall.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if c.closed || len(c.fds) >= maxPendingFDs {
				syscall.Close(fd)
				continue
			}
			c.fds = append(c.fds, fd)
		}
	}
}

// take is the oldest descriptor received and not yet taken, nil if none.
func (c *fdConn) take() *os.File {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.fds) == 0 {
		return nil
	}
	fd := c.fds[0]
	c.fds = c.fds[1:]
	return os.NewFile(uintptr(fd), "the client's file")
}

func (c *fdConn) Close() error {
	c.mu.Lock()
	for _, fd := range c.fds {
		syscall.Close(fd)
	}
	c.fds, c.closed = nil, true
	c.mu.Unlock()
	return c.UnixConn.Close()
}

// checkWritable refuses a descriptor not open for writing, or open for
// appending.
func checkWritable(f *os.File) error {
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_GETFL, 0)
	if errno != 0 {
		return fmt.Errorf("%w: the descriptor sent cannot be examined: %v", ErrBadRequest, errno)
	}
	if acc := int(flags) & syscall.O_ACCMODE; acc != syscall.O_WRONLY && acc != syscall.O_RDWR {
		return fmt.Errorf("%w: the file sent is not open for writing", ErrBadRequest)
	}
	if int(flags)&syscall.O_APPEND != 0 {
		return fmt.Errorf("%w: the file sent is open for appending: open it without O_APPEND", ErrBadRequest)
	}
	return nil
}
