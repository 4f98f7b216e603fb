//go:build !unix

package api

import (
	"context"
	"errors"
	"net"
	"os"
)

// dialFileSocket: descriptors cannot be passed here.
func dialFileSocket(context.Context, string, *os.File) (net.Conn, error) {
	return nil, errors.New("this system cannot pass a file descriptor over a unix socket")
}
