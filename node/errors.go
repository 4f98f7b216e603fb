package node

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/blockstore"
	"github.com/shoalnet/shoal/protocol"
)

// Sentinel errors of the node, for callers that map failures to answers
// (HTTP statuses in web, exit codes in the CLI). Errors about content
// wrap one of them and the part's own error, so errors.Is finds both:
// errors.Is(err, ErrStore) and errors.Is(err, syscall.ENOSPC) hold
// together for a full disk.
var (
	// ErrNotFound: the content is not in the store and the search of the
	// swarm ended without a peer that supplied it.
	ErrNotFound = errors.New("node: not found")
	// ErrNotPinned: Unpin of a CID that is not a pin root.
	ErrNotPinned = errors.New("node: not pinned")
	// ErrNoProvider: no provider of the content was found before the
	// fetch's timeout. Unlike ErrNotFound the search did not end; a
	// later try may find one.
	ErrNoProvider = errors.New("node: no provider found in time")
	// ErrStore: the local block store refused blocks (a full disk, a
	// read-only or broken store). The fault is this node's, not a peer's.
	ErrStore = errors.New("node: cannot store blocks")
)

// classified gives an error from a part the node sentinel it belongs
// to. Its text is the part's own or, when it has one, the node's
// sentence naming the content once.
type classified struct {
	kind error // one of the sentinels above
	msg  string
	err  error
}

func (e *classified) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return e.err.Error()
}

func (e *classified) Unwrap() []error { return []error{e.kind, e.err} }

// contentErr classifies err, which reading c through the store and the
// swarm returned, and says in one sentence naming c once that nobody had
// what was missing. Errors it does not know pass unchanged.
func contentErr(c cid.Cid, err error) error {
	var fe *protocol.FetchError
	var said *classified
	var npe *protocol.NoProvidersError
	if errors.As(err, &npe) && !errors.As(err, &said) {
		// The search's own error names the CID; the reader's wrapping
		// ("opening file CID: ...") would name it again.
		return &classified{kind: ErrNoProvider, msg: withNoProviderHint(npe).Error(), err: err}
	}
	if errors.As(err, &fe) && (!errors.As(err, &said) || said.msg == "") {
		return &classified{kind: ErrNotFound, msg: notFoundText(c, fe.Missing, len(fe.Peers)), err: err}
	}
	return classify(err)
}

// classify wraps err from a part in the node sentinel it belongs to,
// keeping its text. Errors it does not know pass unchanged.
func classify(err error) error {
	switch {
	case err == nil, errors.Is(err, ErrNotFound), errors.Is(err, ErrNoProvider), errors.Is(err, ErrStore):
		return err
	case errors.Is(err, protocol.ErrStore):
		return &classified{kind: ErrStore, err: err}
	case errors.Is(err, protocol.ErrNoProviders):
		return &classified{kind: ErrNoProvider, err: err}
	case errors.Is(err, protocol.ErrNoSource), errors.Is(err, blockstore.ErrNotFound):
		return &classified{kind: ErrNotFound, err: err}
	case errors.Is(err, blockstore.ErrNotPinned):
		return &classified{kind: ErrNotPinned, err: err}
	}
	return err
}

// notFoundText says, naming each CID once, that block missing (of the
// DAG under c) could be found neither here nor on the peers asked.
func notFoundText(c, missing cid.Cid, asked int) string {
	what := c.String()
	if missing.Defined() && !missing.Equals(c) {
		what = fmt.Sprintf("block %s of %s", missing, c)
	}
	who := "no peer that has it was found"
	switch asked {
	case 0:
	case 1:
		who = "the one peer asked does not have it"
	default:
		who = fmt.Sprintf("none of the %d peers asked has it", asked)
	}
	return fmt.Sprintf("%s is not stored here and %s: connect to a peer that has it (shoal connect) or try again later", what, who)
}

// withNoProviderHint adds to a search that timed out what the user can
// try; other errors pass unchanged.
func withNoProviderHint(err error) error {
	var npe *protocol.NoProvidersError
	switch {
	case !errors.As(err, &npe):
		return err
	case npe.Silent():
		return fmt.Errorf("%w: a peer that takes requests and sends nothing is not a source; connect to another (shoal connect) or retry with a longer --timeout", err)
	}
	return fmt.Errorf("%w: check that a node sharing it is reachable (shoal peers) or pass --bootstrap", err)
}
