package kuborpc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/node"
)

// Kubo's pinner texts that clients match: IPFS Cluster compares pin/rm's
// message with errNotPinned and looks for the suffix "not pinned" in
// pin/ls's.
const (
	errNotPinned       = "not pinned or pinned indirectly"
	errFromNotPinned   = "'from' cid was not recursively pinned already"
	errRecursiveOnly   = "shoal pins recursively only: drop recursive=false (a direct pin of one block is not supported)"
	progressInterval   = 500 * time.Millisecond
	pinTypeAll         = "all"
	pinTypeRecursive   = "recursive"
	pinTypeIndirect    = "indirect"
	pinTypeDirect      = "direct"
	errInvalidPinTypeF = "invalid type '%s', must be one of {direct, indirect, recursive, all}"
)

// addPinOutput is Kubo's AddPinOutput.
type addPinOutput struct {
	Pins     []string `json:",omitempty"`
	Progress int      `json:",omitempty"`
	Bytes    uint64   `json:",omitempty"`
}

// resolveArg turns an /ipfs/ path or CID into the CID it names.
func (s *server) resolveArg(ctx context.Context, p string) (cid.Cid, error) {
	root, rest, err := ipfsPath(p)
	if err != nil || rest == "" {
		return root, err
	}
	return s.n.Resolve(ctx, root, rest)
}

func (s *server) pinAdd(w http.ResponseWriter, r *http.Request) {
	a := argsOf(r)
	paths, err := a.need("ipfs-path")
	var recursive, progress bool
	if err == nil {
		recursive, err = a.boolOpt("recursive", true)
	}
	if err == nil {
		progress, err = a.boolOpt("progress", false)
	}
	if err == nil && !recursive {
		err = errors.New(errRecursiveOnly)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	ctx := r.Context()
	if !progress {
		pins, err := s.pinMany(ctx, paths)
		if err != nil {
			s.fail(w, err)
			return
		}
		s.single(w, addPinOutput{Pins: pins})
		return
	}
	type result struct {
		pins []string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		pins, err := s.pinMany(ctx, paths)
		done <- result{pins, err}
	}()
	st := s.newStream(w)
	tick := time.NewTicker(progressInterval)
	defer tick.Stop()
	for {
		select {
		case res := <-done:
			if res.err != nil {
				st.end(res.err)
				return
			}
			// Kubo's last progress counts every node of the pinned DAGs.
			var total node.DAGStat
			for _, p := range res.pins {
				c, _ := cid.Decode(p)
				ds, _ := s.n.WalkLocal(ctx, c, nil)
				total.Blocks += ds.Blocks
				total.Bytes += ds.Bytes
			}
			if total.Blocks > 0 {
				_ = st.emit(addPinOutput{Progress: total.Blocks, Bytes: total.Bytes})
			}
			_ = st.emit(addPinOutput{Pins: res.pins})
			st.end(nil)
			return
		case <-tick.C:
			blocks, bytes := s.fetchProgress(paths)
			if err := st.emit(addPinOutput{Progress: blocks, Bytes: bytes}); err != nil {
				<-done
				return
			}
		}
	}
}

// fetchProgress sums the running fetches of the roots being pinned.
func (s *server) fetchProgress(paths []string) (int, uint64) {
	want := map[string]bool{}
	for _, p := range paths {
		if c, rest, err := ipfsPath(p); err == nil && rest == "" {
			want[c.String()] = true
		}
	}
	var blocks int
	var bytes uint64
	for _, t := range s.n.Transfers() {
		if t.State == node.TransferRunning && want[t.CID] {
			blocks += t.Blocks
			bytes += t.BytesDone
		}
	}
	return blocks, bytes
}

// pinMany pins each path, fetching what is missing. A pin whose fetch
// fails or is cancelled (IPFS Cluster cancels one that stops progressing)
// is taken back unless it was there before, as Kubo has no pin until the
// whole DAG is held: pin/ls must not tell the cluster a DAG is pinned
// here while blocks of it are missing.
func (s *server) pinMany(ctx context.Context, paths []string) ([]string, error) {
	pins := make([]string, 0, len(paths))
	for _, p := range paths {
		c, err := s.resolveArg(ctx, p)
		if err != nil {
			return nil, err
		}
		had, err := s.isRoot(ctx, c)
		if err != nil {
			return nil, err
		}
		if err := s.n.Pin(ctx, c); err != nil {
			if !had {
				if uerr := s.n.Unpin(context.WithoutCancel(ctx), c); uerr != nil && !errors.Is(uerr, node.ErrNotPinned) {
					s.log.Warn("rpc: taking back a failed pin", "cid", c, "err", uerr)
				}
			}
			return nil, fmt.Errorf("pin: %w", err)
		}
		pins = append(pins, c.String())
	}
	return pins, nil
}

func (s *server) pinRm(w http.ResponseWriter, r *http.Request) {
	a := argsOf(r)
	paths, err := a.need("ipfs-path")
	if err == nil {
		_, err = a.boolOpt("recursive", true)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	pins := make([]string, 0, len(paths))
	for _, p := range paths {
		c, err := s.resolveArg(r.Context(), p)
		if err != nil {
			s.fail(w, err)
			return
		}
		if err := s.n.Unpin(r.Context(), c); err != nil {
			if errors.Is(err, node.ErrNotPinned) {
				err = errors.New(errNotPinned)
			}
			s.fail(w, err)
			return
		}
		pins = append(pins, c.String())
	}
	s.single(w, struct{ Pins []string }{pins})
}

func (s *server) pinUpdate(w http.ResponseWriter, r *http.Request) {
	a := argsOf(r)
	paths, err := a.need("from-path", "to-path")
	var unpin bool
	if err == nil {
		unpin, err = a.boolOpt("unpin", true)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	ctx := r.Context()
	from, err := s.resolveArg(ctx, paths[0])
	if err != nil {
		s.fail(w, err)
		return
	}
	to, err := s.resolveArg(ctx, paths[1])
	if err != nil {
		s.fail(w, err)
		return
	}
	if ok, err := s.isRoot(ctx, from); err != nil || !ok {
		if err == nil {
			err = errors.New(errFromNotPinned)
		}
		s.fail(w, err)
		return
	}
	if err := s.n.Pin(ctx, to); err != nil {
		s.fail(w, fmt.Errorf("pin: %w", err))
		return
	}
	if unpin && !from.Equals(to) {
		if err := s.n.Unpin(ctx, from); err != nil {
			s.fail(w, err)
			return
		}
	}
	s.single(w, struct{ Pins []string }{[]string{from.String(), to.String()}})
}

func (s *server) isRoot(ctx context.Context, c cid.Cid) (bool, error) {
	roots, err := s.n.PinRoots(ctx)
	if err != nil {
		return false, err
	}
	for _, r := range roots {
		if r.Equals(c) {
			return true, nil
		}
	}
	return false, nil
}

// pinLsObject is Kubo's PinLsObject (one line of a streamed pin ls).
type pinLsObject struct {
	Cid  string `json:",omitempty"`
	Name string `json:",omitempty"`
	Type string `json:",omitempty"`
}

// pinLsType is a value of Kubo's non-streamed {"Keys": {...}}.
type pinLsType struct {
	Type string
	Name string
}

func (s *server) pinLs(w http.ResponseWriter, r *http.Request) {
	a := argsOf(r)
	typ := a.str("type")
	if typ == "" {
		typ = pinTypeAll
	}
	streamed, err := a.boolOpt("stream", false)
	if err == nil {
		switch typ {
		case pinTypeAll, pinTypeRecursive, pinTypeIndirect, pinTypeDirect:
		default:
			err = fmt.Errorf(errInvalidPinTypeF, typ)
		}
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	var found []pinLsObject
	if paths := a.q["arg"]; len(paths) > 0 {
		found, err = s.pinLsKeys(r.Context(), paths, typ)
	} else {
		found, err = s.pinLsAll(r.Context(), typ)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	if !streamed {
		keys := map[string]pinLsType{}
		for _, o := range found {
			keys[o.Cid] = pinLsType{Type: o.Type}
		}
		out := struct {
			Keys map[string]pinLsType `json:",omitempty"`
		}{keys}
		s.single(w, out)
		return
	}
	st := s.newStream(w)
	for _, o := range found {
		if err := st.emit(o); err != nil {
			return
		}
	}
	st.end(nil)
}

// pinIndex is the pin set: the recursive roots, and every block held
// under them with the root it was reached from.
type pinIndex struct {
	roots    []cid.Cid
	isRoot   map[cid.Cid]bool
	indirect map[cid.Cid]cid.Cid
	order    []cid.Cid
}

// index walks the DAG of every pin over the blocks held here; a pin still
// being fetched lists what is held of it.
func (s *server) index(ctx context.Context, withIndirect bool) (*pinIndex, error) {
	roots, err := s.n.PinRoots(ctx)
	if err != nil {
		return nil, err
	}
	ix := &pinIndex{roots: roots, isRoot: map[cid.Cid]bool{}, indirect: map[cid.Cid]cid.Cid{}}
	for _, c := range roots {
		ix.isRoot[c] = true
	}
	if !withIndirect {
		return ix, nil
	}
	for _, root := range roots {
		_, err := s.n.WalkLocal(ctx, root, func(c cid.Cid) error {
			if _, seen := ix.indirect[c]; !seen && !ix.isRoot[c] {
				ix.indirect[c] = root
				ix.order = append(ix.order, c)
			}
			return nil
		})
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil && !errors.Is(err, node.ErrNotFound) {
			return nil, err
		}
	}
	return ix, nil
}

func (s *server) pinLsAll(ctx context.Context, typ string) ([]pinLsObject, error) {
	ix, err := s.index(ctx, typ == pinTypeAll || typ == pinTypeIndirect)
	if err != nil {
		return nil, err
	}
	var out []pinLsObject
	if typ == pinTypeAll || typ == pinTypeRecursive {
		for _, c := range ix.roots {
			out = append(out, pinLsObject{Cid: c.String(), Type: pinTypeRecursive})
		}
	}
	if typ == pinTypeAll || typ == pinTypeIndirect {
		for _, c := range ix.order {
			out = append(out, pinLsObject{Cid: c.String(), Type: pinTypeIndirect})
		}
	}
	return out, nil
}

func (s *server) pinLsKeys(ctx context.Context, paths []string, typ string) ([]pinLsObject, error) {
	ix, err := s.index(ctx, typ == pinTypeAll || typ == pinTypeIndirect)
	if err != nil {
		return nil, err
	}
	out := make([]pinLsObject, 0, len(paths))
	for _, p := range paths {
		c, err := s.resolveArg(ctx, p)
		if err != nil {
			return nil, err
		}
		o := pinLsObject{Cid: c.String()}
		via, indirect := ix.indirect[c]
		switch {
		case ix.isRoot[c] && (typ == pinTypeAll || typ == pinTypeRecursive):
			o.Type = pinTypeRecursive
		case indirect && (typ == pinTypeAll || typ == pinTypeIndirect):
			o.Type = "indirect through " + via.String()
		default:
			return nil, fmt.Errorf("path '%s' is not pinned", p)
		}
		out = append(out, o)
	}
	return out, nil
}
