package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"syscall"

	"github.com/ipfs/go-cid"

	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/node"
)

// Node is everything the API, the gateway, the dashboard and the metrics
// need from a running node; *node.Node implements all of it, so web needs
// no other package of the node's parts. Errors are classified by statusFor through the node's
// sentinels: node.ErrNotFound and node.ErrNotPinned are 404,
// node.ErrNoProvider and context.DeadlineExceeded are 504.
type Node interface {
	Info() apiv1.Info
	Peers() []apiv1.Peer
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
	// FetchWith is Fetch with a search timeout and pinning.
	FetchWith(ctx context.Context, c cid.Cid, o node.FetchOptions) (*node.Transfer, error)
	// Transfer is the state of one transfer (an unknown ID wraps
	// node.ErrNotFound).
	Transfer(id string) (apiv1.Transfer, error)
	// CancelTransfer ends a running transfer (an unknown ID wraps
	// node.ErrNotFound) and returns its final state.
	CancelTransfer(id string) (apiv1.Transfer, error)
	// Open reads a file, fetching blocks from the swarm as needed, in order.
	Open(ctx context.Context, c cid.Cid) (node.File, error)
	// CheckReadTransfer is the error Open would refuse ctx's reads with
	// because of the transfer they belong to (node.WithTransfer), or nil.
	CheckReadTransfer(ctx context.Context) error
	// Resolve follows a slash-separated path of names below root.
	Resolve(ctx context.Context, root cid.Cid, path string) (cid.Cid, error)
	// Kind reports whether c is a file, a directory or a symlink.
	Kind(ctx context.Context, c cid.Cid) (content.FSType, error)
	// List reads the entries of a directory.
	List(ctx context.Context, dir cid.Cid) ([]content.DirEntry, error)
	// Block returns one block, local or fetched.
	Block(ctx context.Context, c cid.Cid) ([]byte, error)
	Roots(ctx context.Context) ([]apiv1.Root, error)
	Pin(ctx context.Context, c cid.Cid) error
	Unpin(ctx context.Context, c cid.Cid) error
	GC(ctx context.Context) (apiv1.GCResult, error)
	// Verify rehashes every stored block, removes corrupt ones and
	// reports pins with missing blocks.
	Verify(ctx context.Context) (apiv1.VerifyReport, error)
	Transfers() []apiv1.Transfer
	// RoutingTable is the DHT routing table by bucket.
	RoutingTable() []apiv1.RoutingBucket
	// WantList is the blocks this node is asking peers for now.
	WantList() []node.WantEntry
	// Stats are the node's counters since start: fetches and Bitswap
	// traffic.
	Stats() node.Stats
	// Swarm is the swarm state: availability maps, peers' choke and
	// interest flags, upload slots (read-only).
	Swarm(ctx context.Context) apiv1.Swarm
	// Cluster is the IPFS Cluster peer's view of the pins: an error
	// wrapping node.ErrNoCluster without one configured,
	// node.ErrClusterUnreachable when it cannot be read.
	Cluster(ctx context.Context) (apiv1.Cluster, error)
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
// kind of failure it was. It is tested against the real node
// (errorCases in errors_suite_test.go), not only against a fake.
func statusFor(err error) int {
	switch {
	case errors.Is(err, ErrBadRequest), errors.Is(err, content.ErrNotFile), errors.Is(err, content.ErrNotDirectory),
		errors.Is(err, content.ErrInvalidPath), errors.Is(err, node.ErrBadName):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound), errors.Is(err, node.ErrNotFound), errors.Is(err, node.ErrNotPinned),
		errors.Is(err, content.ErrNoSuchPath), errors.Is(err, node.ErrNoCluster):
		return http.StatusNotFound
	case errors.Is(err, node.ErrNoProvider), errors.Is(err, node.ErrNoProgress), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, node.ErrTransferCancelled):
		return http.StatusConflict
	case errors.Is(err, content.ErrMalformed), errors.Is(err, content.ErrUnsupportedCodec), errors.Is(err, node.ErrClusterUnreachable):
		return http.StatusBadGateway
	case errors.Is(err, syscall.ENOSPC):
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}
