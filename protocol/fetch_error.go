package protocol

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Errors of the fetch scheduler and client. Per-peer reasons appear inside a
// *FetchError; match them with errors.Is.
var (
	// ErrFetchConfig is returned for an unusable scheduler or client configuration.
	ErrFetchConfig = errors.New("protocol: invalid fetch configuration")
	// ErrNoSource means no remaining peer can supply a needed block.
	ErrNoSource = errors.New("protocol: no peer can supply block")
	// ErrDontHave means a peer answered DONT_HAVE for the block.
	ErrDontHave = errors.New("protocol: peer does not have block")
	// ErrPeerGone means the peer disconnected or was removed during the fetch.
	ErrPeerGone = errors.New("protocol: peer left the fetch")
	// ErrBadBlock means the peer sent bytes that do not hash to a wanted CID.
	ErrBadBlock = errors.New("protocol: peer sent a corrupt or unwanted block")
	// ErrUnwanted is returned by Scheduler.BlockReceived for a CID that is
	// not part of the fetch.
	ErrUnwanted = errors.New("protocol: block not wanted by this fetch")
	// ErrFetchClosed is returned for operations on a finished or closed fetch.
	ErrFetchClosed = errors.New("protocol: fetch closed")
	// ErrStore means the local block store refused a verified block (a
	// full disk, a read-only or broken store). It is this node's fault,
	// not the sending peer's: the fetch ends at once with it, no peer is
	// scored down for it, and it wraps the store's own error (errors.Is
	// finds syscall.ENOSPC in it, for example).
	ErrStore = errors.New("protocol: cannot store fetched blocks")
)

// PeerError says why one peer could not supply a block.
type PeerError struct {
	Peer peer.ID
	Err  error // ErrDontHave, ErrPeerGone, ErrBadBlock or a wrapped cause
}

func (e *PeerError) Error() string { return fmt.Sprintf("peer %s: %v", e.Peer, e.Err) }
func (e *PeerError) Unwrap() error { return e.Err }

// FetchError reports that a fetch cannot complete: block Missing of the DAG
// under Root has no peer left that could supply it. Peers lists every peer
// the fetch tried and why each one could not help.
type FetchError struct {
	Root    cid.Cid
	Missing cid.Cid
	Peers   []PeerError
}

func (e *FetchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "protocol: fetch %s: no peer can supply block %s", e.Root, e.Missing)
	if len(e.Peers) == 0 {
		b.WriteString(" (no peers found)")
	} else {
		fmt.Fprintf(&b, " (tried %d peers:", len(e.Peers))
		for i, p := range e.Peers {
			if i == 8 {
				fmt.Fprintf(&b, " … %d more", len(e.Peers)-i)
				break
			}
			fmt.Fprintf(&b, " %s: %v;", p.Peer, p.Err)
		}
		b.WriteString(")")
	}
	b.WriteString("; connect to a peer that has the content or retry later")
	return b.String()
}

// Unwrap returns ErrNoSource followed by one *PeerError per peer tried.
func (e *FetchError) Unwrap() []error {
	errs := make([]error, 0, 1+len(e.Peers))
	errs = append(errs, ErrNoSource)
	for i := range e.Peers {
		errs = append(errs, &e.Peers[i])
	}
	return errs
}
