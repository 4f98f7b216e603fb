package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/node"
)

func (a *api) handleID(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, apiv1.ID{Info: a.n.Info(), API: a.cfg.URL(), Gateway: a.cfg.GatewayURL})
}

func (a *api) handlePeers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, nonNil(a.n.Peers()))
}

func (a *api) handleConnect(w http.ResponseWriter, r *http.Request) {
	addr := r.URL.Query().Get("addr")
	if addr == "" && r.ContentLength != 0 {
		var req apiv1.Connect // ?addr= works too
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf(`body is not {"addr": "<multiaddr>"}: %v`, err))
			return
		}
		addr = req.Addr
	}
	if addr == "" {
		writeError(w, http.StatusBadRequest, `missing multiaddr: send {"addr": "/ip4/…/tcp/…/p2p/<peer id>"}`)
		return
	}
	if !strings.Contains(addr, "/p2p/") {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("multiaddr %s has no /p2p/<peer id>: append the peer ID that `shoal id` prints on that machine", addr))
		return
	}
	if err := a.n.Connect(r.Context(), addr); err != nil {
		a.fail(w, r, fmt.Errorf("connecting to %s: %w", addr, err))
		return
	}
	writeJSON(w, http.StatusOK, apiv1.Connect{Addr: addr})
}

// handleAdd stores the body: a file, or a directory tree when the body is
// a tar (Content-Type application/x-tar). ?name= is the file's or
// directory's name, kept with the root.
func (a *api) handleAdd(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	name := r.URL.Query().Get("name")
	if err := node.CheckName(name); err != nil {
		writeError(w, http.StatusBadRequest, "name= "+err.Error())
		return
	}
	var (
		res node.AddResult
		err error
	)
	if mt == "application/x-tar" {
		res, err = a.n.AddTar(r.Context(), r.Body, node.WithName(name))
	} else {
		res, err = a.n.AddFile(r.Context(), r.Body, node.WithName(name))
	}
	if err != nil {
		a.fail(w, r, fmt.Errorf("adding content: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, apiv1.AddResult{CID: res.CID.String(), Name: res.Name, Size: res.Size, Blocks: res.Blocks})
}

// handleFetch starts fetching ?cid= — a CID, CID/path or /ipfs/CID/path,
// whose path is resolved first — and answers 202 with the transfer at once,
// or with ?wait=true 200 once it has finished. ?timeout= bounds the search
// for a provider (a Go duration such as 2m, or seconds; 0 searches until
// cancelled; default transfer.search_timeout); ?pin=true pins the root once
// it is complete; ?name= names it (default: the path's last segment).
func (a *api) handleFetch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := node.FetchOptions{Source: "api"}
	if s := q.Get("timeout"); s != "" {
		d, err := parseTimeout(s)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		o.SearchTimeout = &d
	}
	if s := q.Get("pin"); s != "" {
		pin, err := strconv.ParseBool(s)
		if err != nil {
			a.fail(w, r, fmt.Errorf("%w: pin=%q is not true or false", ErrBadRequest, s))
			return
		}
		o.Pin = pin
	}
	wait := false
	if s := q.Get("wait"); s != "" {
		var err error
		if wait, err = strconv.ParseBool(s); err != nil {
			a.fail(w, r, fmt.Errorf("%w: wait=%q is not true or false", ErrBadRequest, s))
			return
		}
	}
	tg, err := a.resolveFetch(r.Context(), q.Get("cid"), o.SearchTimeout)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	o.Name = q.Get("name")
	if o.Name == "" && tg.base != "" && node.CheckName(tg.base) == nil {
		o.Name = tg.base // CID/dir/file.txt is called file.txt
	}
	// A transfer started without wait outlives this request.
	ctx := r.Context()
	if !wait {
		ctx = context.WithoutCancel(ctx)
	}
	t, err := a.n.FetchWith(ctx, tg.c, o)
	if err != nil {
		a.fail(w, r, err) // the node names the CID
		return
	}
	if !wait {
		writeJSON(w, http.StatusAccepted, t.Info())
		return
	}
	select {
	case <-t.Done():
	case <-r.Context().Done():
		return
	}
	if err := t.Err(); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t.Info())
}

// parseTimeout reads ?timeout=: a Go duration or a number of seconds.
func parseTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return 0, fmt.Errorf("%w: timeout=%q is not a duration such as 2m or 90s (0 waits forever)", ErrBadRequest, s)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 {
		return 0, fmt.Errorf("%w: timeout=%q is negative (0 waits forever)", ErrBadRequest, s)
	}
	return d, nil
}

// resolveFetch parses the fetch target and follows its path below the
// root, within the search timeout when one is given.
func (a *api) resolveFetch(ctx context.Context, s string, timeout *time.Duration) (target, error) {
	if timeout != nil && *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	return a.resolve(ctx, strings.TrimPrefix(s, "/ipfs/"))
}

func (a *api) handleCancelTransfer(w http.ResponseWriter, r *http.Request) {
	a.answerTransfer(w, r, a.n.CancelTransfer)
}

func (a *api) handleTransfers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, nonNil(a.n.Transfers()))
}

func (a *api) handleTransfer(w http.ResponseWriter, r *http.Request) {
	a.answerTransfer(w, r, a.n.Transfer)
}

// answerTransfer answers with what op (look up, cancel) returns for the
// transfer {id}; the node's error names the ID.
func (a *api) answerTransfer(w http.ResponseWriter, r *http.Request, op func(id string) (apiv1.Transfer, error)) {
	info, err := op(r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// target is a request's "<cid>[/path]", resolved.
type target struct {
	c    cid.Cid // what the path names
	name string  // "<root>[/path]", as messages name it
	base string  // the path's last segment; "" for a bare CID
}

// resolve parses "<cid>[/path]" (parseCIDPath) and follows the path.
func (a *api) resolve(ctx context.Context, s string) (target, error) {
	root, p, err := parseCIDPath(s)
	if err != nil {
		return target{}, err
	}
	if p == "" {
		return target{c: root, name: root.String()}, nil
	}
	c, err := a.n.Resolve(ctx, root, p)
	if err != nil {
		return target{}, fmt.Errorf("resolving %s/%s: %w", root, p, err)
	}
	return target{c: c, name: root.String() + "/" + p, base: path.Base(p)}, nil
}

// readRequest is r with the root its {path...} names as the node's read
// root (node.WithReadRoot): the path walk, the kind check and the read
// of what it names are one read session, with one provider lookup. A
// ?transfer=ID query says the read belongs to that transfer
// (node.WithTransfer): it starts no fetch of its own and fails with the
// transfer's error once the transfer has failed.
func readRequest(r *http.Request) *http.Request {
	ctx := r.Context()
	if id := r.URL.Query().Get("transfer"); id != "" {
		ctx = node.WithTransfer(ctx, id)
	}
	if root, _, err := parseCIDPath(r.PathValue("path")); err == nil {
		ctx = node.WithReadRoot(ctx, root)
	} // else the handler reports it
	return r.WithContext(ctx)
}

// resolveKind resolves the request's {path...} and reads whether it
// names a file, a directory or a symlink.
func (a *api) resolveKind(r *http.Request) (target, content.FSType, error) {
	tg, err := a.resolve(r.Context(), r.PathValue("path"))
	if err != nil {
		return target{}, 0, err
	}
	kind, err := a.n.Kind(r.Context(), tg.c)
	if err != nil {
		return target{}, 0, fmt.Errorf("reading %s: %w", tg.name, err)
	}
	return tg, kind, nil
}

// handleCat streams a file as it is fetched; Range requests are served.
func (a *api) handleCat(w http.ResponseWriter, r *http.Request) {
	r = readRequest(r)
	// A read under a transfer that failed is refused before the path walk,
	// which would otherwise look for the root's providers again.
	if err := a.n.CheckReadTransfer(r.Context()); err != nil {
		a.fail(w, r, err)
		return
	}
	tg, kind, err := a.resolveKind(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c, name := tg.c, tg.name
	if kind != content.TFile && kind != content.TRaw {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s is a %s, not a file: use GET /api/v1/get/%s for a tar of it", name, kind, name))
		return
	}
	f, err := a.n.Open(r.Context(), c)
	if err != nil {
		a.fail(w, r, fmt.Errorf("opening %s: %w", name, err))
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Content-Size", strconv.FormatUint(f.Size(), 10))
	w.Header().Set("ETag", `"`+c.String()+`"`)
	expectRange(r, f, `"`+c.String()+`"`)
	serveFile(w, r, "", f, a.log, name)
}

// handleGet streams a directory (or a file) as a tar whose top entry is
// named after the CID.
func (a *api) handleGet(w http.ResponseWriter, r *http.Request) {
	r = readRequest(r)
	if err := a.n.CheckReadTransfer(r.Context()); err != nil {
		a.fail(w, r, err) // as handleCat: before the path walk and the status
		return
	}
	tg, kind, err := a.resolveKind(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c, name := tg.c, tg.name
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("X-Content-Type", kind.String())
	if r.Method == http.MethodHead {
		return
	}
	tw := newTarStreamer(a.n, w)
	if err := tw.write(r.Context(), c, kind, c.String()); err != nil {
		// The status is sent; cutting the connection makes the client see
		// a broken stream rather than a short but valid-looking tar.
		a.log.Warn("tar stream failed", "cid", name, "err", err)
		panic(http.ErrAbortHandler)
	}
}

func (a *api) handleLs(w http.ResponseWriter, r *http.Request) {
	roots, err := a.n.Roots(r.Context())
	if err != nil {
		a.fail(w, r, fmt.Errorf("listing roots: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, nonNil(roots))
}

func (a *api) handlePin(w http.ResponseWriter, r *http.Request) {
	a.setPin(w, r, true)
}

func (a *api) handleUnpin(w http.ResponseWriter, r *http.Request) {
	a.setPin(w, r, false)
}

func (a *api) setPin(w http.ResponseWriter, r *http.Request, pin bool) {
	c, err := parseCID(r.PathValue("cid"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if pin {
		err = a.n.Pin(r.Context(), c)
	} else {
		err = a.n.Unpin(r.Context(), c)
	}
	if err != nil {
		verb := map[bool]string{true: "pinning", false: "unpinning"}[pin]
		a.fail(w, r, fmt.Errorf("%s %s: %w", verb, c, err))
		return
	}
	writeJSON(w, http.StatusOK, apiv1.PinResult{CID: c.String(), Pinned: pin})
}

func (a *api) handleGC(w http.ResponseWriter, r *http.Request) {
	res, err := a.n.GC(r.Context())
	if err != nil {
		a.fail(w, r, fmt.Errorf("garbage collection: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *api) handleStat(w http.ResponseWriter, r *http.Request) {
	roots, err := a.n.Roots(r.Context())
	if err != nil {
		a.fail(w, r, fmt.Errorf("listing roots: %w", err))
		return
	}
	s := apiv1.Stat{Info: a.n.Info(), Peers: len(a.n.Peers()), Roots: len(roots)}
	// From the node's counters: Transfers lists only the most recent.
	f := a.n.Stats().Fetches
	s.TransfersActive = int(f.Started - f.Done - f.Failed)
	writeJSON(w, http.StatusOK, s)
}

func (a *api) handleStatCID(w http.ResponseWriter, r *http.Request) {
	r = readRequest(r)
	tg, err := a.resolve(r.Context(), r.PathValue("path"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	st, err := a.stat(r.Context(), tg.c)
	if err != nil {
		a.fail(w, r, fmt.Errorf("stat %s: %w", tg.name, err))
		return
	}
	if tg.base != "" {
		st.Name = tg.base // a path's own name, not the root's
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *api) stat(ctx context.Context, c cid.Cid) (apiv1.CIDStat, error) {
	st := apiv1.CIDStat{CID: c.String()}
	kind, err := a.n.Kind(ctx, c)
	if err != nil {
		return st, err
	}
	switch kind {
	case content.TDirectory, content.THAMTShard:
		st.Type = apiv1.TypeDirectory
		entries, err := a.n.List(ctx, c)
		if err != nil {
			return st, err
		}
		st.Entries = len(entries)
		for _, e := range entries {
			st.Size += e.Size
		}
	case content.TSymlink:
		st.Type = apiv1.TypeSymlink
	default:
		st.Type = apiv1.TypeFile
		f, err := a.n.Open(ctx, c)
		if err != nil {
			return st, err
		}
		st.Size = f.Size()
		f.Close()
	}
	roots, err := a.n.Roots(ctx)
	if err != nil {
		return st, err
	}
	for _, rt := range roots {
		if rt.CID == st.CID {
			st.Root, st.Pinned, st.Name = true, rt.Pinned, rt.Name
			if st.Type == apiv1.TypeDirectory {
				st.Size = rt.Size
			}
		}
	}
	return st, nil
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
