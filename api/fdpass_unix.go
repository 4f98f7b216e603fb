//go:build unix

package api

import (
	"context"
	"net"
	"os"
	"syscall"
)

// dialFileSocket connects to the unix socket at path; the first bytes
// written on the connection carry f's descriptor (SCM_RIGHTS).
func dialFileSocket(ctx context.Context, path string, f *os.File) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	return &rightsConn{UnixConn: c.(*net.UnixConn), f: f}, nil
}

// rightsConn sends f's descriptor with its first write.
type rightsConn struct {
	*net.UnixConn
	f    *os.File
	sent bool
}

func (c *rightsConn) Write(p []byte) (int, error) {
	if c.sent || len(p) == 0 {
		return c.UnixConn.Write(p)
	}
	c.sent = true
	n, _, err := c.WriteMsgUnix(p, syscall.UnixRights(int(c.f.Fd())), nil)
	if err != nil || n == len(p) {
		return n, err
	}
	m, err := c.UnixConn.Write(p[n:])
	return n + m, err
}
