//go:build !unix

package web

import (
	"errors"
	"net"
	"os"
)

var errNoFDPassing = errors.New("this system cannot pass file descriptors over unix sockets: the daemon makes no file socket")

func listenFileSocket(string) (net.Listener, error) { return nil, errNoFDPassing }

// fdConn never exists here.
type fdConn struct{ net.Conn }

func (*fdConn) take() *os.File { return nil }

func checkWritable(*os.File) error { return errNoFDPassing }
