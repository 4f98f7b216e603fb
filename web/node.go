package web

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/node"
)

// Node is what the API and the gateway need from a running node; *node.Node
// satisfies it. Errors are classified by statusFor: a node reports "not
// found" by wrapping fs.ErrNotExist and a timeout by wrapping
// context.DeadlineExceeded.
type Node interface {
	Info() node.Info
	Peers() []node.PeerInfo
	// Connect dials a peer; multiaddr must end in /p2p/<peer id>.
	Connect(ctx context.Context, multiaddr string) error
	// AddFile stores, pins and provides one file (node.WithName keeps
	// its name with the root).
	AddFile(ctx context.Context, r io.Reader, opts ...node.AddOption) (node.AddResult, error)
	// AddTar stores, pins and provides a directory tree sent as a tar
	// stream; the CID is the one `shoal cid DIR` gives.
	AddTar(ctx context.Context, r io.Reader, opts ...node.AddOption) (node.AddResult, error)
	// RootName is the name a root was shared under, "" when unknown.
	RootName(c cid.Cid) string
	// Fetch starts (or joins) fetching a whole DAG into the store.
	Fetch(ctx context.Context, c cid.Cid, source string) (*node.Transfer, error)
	// Open reads a file, fetching blocks from the swarm as needed, in order.
	Open(ctx context.Context, c cid.Cid) (node.File, error)
	// Resolve follows a slash-separated path of names below root.
	Resolve(ctx context.Context, root cid.Cid, path string) (cid.Cid, error)
	// Kind reports whether c is a file, a directory or a symlink.
	Kind(ctx context.Context, c cid.Cid) (content.FSType, error)
	// List reads the entries of a directory.
	List(ctx context.Context, dir cid.Cid) ([]content.DirEntry, error)
	// Block returns one block, local or fetched.
	Block(ctx context.Context, c cid.Cid) ([]byte, error)
	Roots(ctx context.Context) ([]node.RootInfo, error)
	Pin(ctx context.Context, c cid.Cid) error
	Unpin(ctx context.Context, c cid.Cid) error
	GC(ctx context.Context) (node.GCResult, error)
	// Verify rehashes every stored block, removes corrupt ones and
	// reports pins with missing blocks.
	Verify(ctx context.Context) (node.VerifyReport, error)
	Transfers() []node.TransferInfo
}

// Sentinel errors of the web package.
var (
	// ErrBadRequest marks a request the client must fix (a malformed CID
	// or path, a missing parameter).
	ErrBadRequest = errors.New("web: bad request")
	// ErrNotFound marks a route or object that does not exist.
	ErrNotFound = errors.New("web: not found")
	// ErrConfig wraps every configuration error.
	ErrConfig = errors.New("web: bad configuration")
)

// statusFor maps an error to the HTTP status that tells the client what
// kind of failure it was.
func statusFor(err error) int {
	switch {
	case errors.Is(err, ErrBadRequest), errors.Is(err, content.ErrNotFile), errors.Is(err, content.ErrNotDirectory):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound), errors.Is(err, fs.ErrNotExist), errors.Is(err, content.ErrNoSuchPath):
		return http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, content.ErrMalformed), errors.Is(err, content.ErrUnsupportedCodec):
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}
