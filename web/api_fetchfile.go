package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/node"
)

// The file socket is a unix socket in the node's home through which a
// client on this machine hands the daemon a file it opened itself (its
// descriptor, SCM_RIGHTS), and the daemon fetches content straight into
// it: each block lands at its offset as soon as it is verified. The file
// is then the seed (the store references its leaves): after renaming it
// into place the client hands it back (fetchfile/placed). A file shared
// with --no-copy comes the same way (addfile). The
// daemon never opens a path for a client, so it writes only where the
// client's user may, even when it runs as another user. The socket
// serves one route, POST /api/v1/fetchfile, behind the API's guard
// (Host, Origin, token); the socket file is 0600.

// FileNode is what the file socket needs: the node, and writing a
// transfer's file into a descriptor.
type FileNode interface {
	Node
	WriteFile(ctx context.Context, t *node.Transfer, f node.FileTarget, progress func(written uint64), opts ...node.WriteOption) (uint64, error)
	FilePlaced(ctx context.Context, root cid.Cid, f *os.File) (int, error)
	AddFileNoCopy(ctx context.Context, f *os.File, opts ...node.AddOption) (node.AddResult, error)
}

// fileEventInterval is how often the fetchfile answer reports progress.
const fileEventInterval = 250 * time.Millisecond

// NewFileAPI returns the handler of the file socket: POST
// /api/v1/fetchfile, guarded as the API is (cfg is the API's).
func NewFileAPI(cfg APIConfig, n FileNode) (http.Handler, error) {
	a, err := newAPI(cfg, n)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/fetchfile", onlyMethod(http.MethodPost, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.handleFetchFile(w, r, n)
	})))
	mux.Handle("/api/v1/fetchfile/placed", onlyMethod(http.MethodPost, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.handleFilePlaced(w, r, n)
	})))
	mux.Handle("/api/v1/addfile", onlyMethod(http.MethodPost, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.handleAddNoCopy(w, r, n)
	})))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("the file socket answers only POST /api/v1/fetchfile, /api/v1/fetchfile/placed and /api/v1/addfile, not %s: use the API's address for the rest", r.URL.Path))
	})
	return a.guard(mux), nil
}

// requireFile is the descriptor that came with the request to route
// (what names the file); without one it answers the error and returns nil.
func (a *api) requireFile(w http.ResponseWriter, r *http.Request, route, what string) *os.File {
	f := takeFile(r.Context())
	if f == nil {
		a.fail(w, r, fmt.Errorf("%w: POST /api/v1/%s needs the %s descriptor sent with the request (SCM_RIGHTS) over the daemon's file socket", ErrBadRequest, route, what))
	}
	return f
}

// handleFetchFile fetches ?cid= (pin=, timeout= as for /api/v1/fetch)
// into the file whose descriptor came with the request (path= is the
// absolute name the client renames it to: node.WithFinalName), answering JSON
// lines (api.FileEvent) until the file is whole and synced.
func (a *api) handleFetchFile(w http.ResponseWriter, r *http.Request, n FileNode) {
	f := a.requireFile(w, r, "fetchfile", "target file's")
	if f == nil {
		return
	}
	defer f.Close()
	if err := checkTarget(f); err != nil {
		a.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	o, err := fetchQuery(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var opts []node.WriteOption
	if p := q.Get("path"); p != "" {
		if !filepath.IsAbs(p) {
			a.fail(w, r, fmt.Errorf("%w: path=%q is not absolute: give the absolute path the file is renamed to", ErrBadRequest, p))
			return
		}
		opts = append(opts, node.WithFinalName(filepath.Clean(p)))
	}
	c, err := a.resolveFetch(r.Context(), q.Get("cid"), o.SearchTimeout)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// The transfer outlives this request, as POST /api/v1/fetch's does:
	// a client that goes away stops the writing, not the fetch.
	t, err := n.FetchWith(context.WithoutCancel(r.Context()), c.c, o)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.streamFileWrite(w, r, n, t, f, opts)
}

// handleFilePlaced: the client renamed the file fetchfile wrote for
// ?cid= into place and sends it again (its descriptor, open for
// reading); the store's references to its leaves follow it (node.FilePlaced).
func (a *api) handleFilePlaced(w http.ResponseWriter, r *http.Request, n FileNode) {
	f := a.requireFile(w, r, "fetchfile/placed", "placed file's")
	if f == nil {
		return
	}
	defer f.Close()
	c, err := a.resolveFetch(r.Context(), r.URL.Query().Get("cid"), nil)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	k, err := n.FilePlaced(r.Context(), c.c, f)
	if errors.Is(err, node.ErrNotWritten) {
		err = fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.Placed{Leaves: k})
}

// handleAddNoCopy shares the file whose descriptor (open for reading)
// came with the request without copying it into the store
// (node.AddFileNoCopy); ?name= as for /api/v1/add.
func (a *api) handleAddNoCopy(w http.ResponseWriter, r *http.Request, n FileNode) {
	f := a.requireFile(w, r, "addfile", "shared file's")
	if f == nil {
		return
	}
	defer f.Close()
	name := r.URL.Query().Get("name")
	if err := node.CheckName(name); err != nil {
		writeError(w, http.StatusBadRequest, "name= "+err.Error())
		return
	}
	res, err := n.AddFileNoCopy(r.Context(), f, node.WithName(name))
	if err != nil {
		a.fail(w, r, fmt.Errorf("sharing without a copy: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, apiv1.AddResult{CID: res.CID.String(), Name: res.Name, Size: res.Size, Blocks: res.Blocks})
}

// fetchQuery reads the options of a fetch route: timeout= (a duration or
// seconds) and pin= (a bool).
func fetchQuery(q url.Values) (node.FetchOptions, error) {
	o := node.FetchOptions{Source: "api"}
	if s := q.Get("timeout"); s != "" {
		d, err := parseTimeout(s)
		if err != nil {
			return o, err
		}
		o.SearchTimeout = &d
	}
	if s := q.Get("pin"); s != "" {
		pin, err := strconv.ParseBool(s)
		if err != nil {
			return o, fmt.Errorf("%w: pin=%q is not true or false", ErrBadRequest, s)
		}
		o.Pin = pin
	}
	return o, nil
}

// streamFileWrite runs the write and reports it: an error before the
// first event is an ordinary error answer; after it, the last line.
func (a *api) streamFileWrite(w http.ResponseWriter, r *http.Request, n FileNode, t *node.Transfer, f *os.File, opts []node.WriteOption) {
	var written atomic.Uint64
	type result struct {
		n   uint64
		err error
	}
	done := make(chan result, 1)
	go func() {
		k, err := n.WriteFile(r.Context(), t, f, func(w uint64) { written.Store(w) }, opts...)
		done <- result{k, err}
	}()
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	started := false
	event := func(ev apiv1.FileEvent) bool {
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		info := t.Info()
		ev.Transfer = &info
		if !ev.Done {
			ev.Size = info.Size // the file's size once the transfer knows it
		}
		return enc.Encode(ev) == nil && rc.Flush() == nil
	}
	// The first event goes at once: it names the transfer, which a
	// client that started it here (not with POST /api/v1/fetch) needs to
	// cancel it, and says whether it is still searching.
	if !event(apiv1.FileEvent{}) {
		<-done
		return
	}
	tick := time.NewTicker(fileEventInterval)
	defer tick.Stop()
	for {
		select {
		case res := <-done:
			switch {
			case res.err == nil:
				event(apiv1.FileEvent{Written: res.n, Size: res.n, Done: true})
			case !started:
				a.fail(w, r, res.err)
			default:
				status := statusFor(res.err)
				if status >= 500 {
					a.log.Warn("fetchfile failed", "err", res.err)
				}
				event(apiv1.FileEvent{Written: written.Load(), Error: errorMessage(res.err), Code: apiv1.CodeFor(status)})
			}
			return
		case <-tick.C:
			if !event(apiv1.FileEvent{Written: written.Load()}) {
				<-done // the client is gone: r's context ends the write
				return
			}
		}
	}
}

// checkTarget refuses a descriptor the daemon must not write through: not
// a regular file, not open for writing, open for appending (writes would
// not land at their offsets), or not empty (the client makes a new file).
func checkTarget(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: the descriptor sent cannot be examined: %v", ErrBadRequest, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: the descriptor sent is a %s, not a regular file", ErrBadRequest, fi.Mode().Type())
	}
	if fi.Size() != 0 {
		return fmt.Errorf("%w: the file sent holds %d bytes: send a new, empty file", ErrBadRequest, fi.Size())
	}
	return checkWritable(f)
}

// ListenFileSocket makes the file socket at path (replacing a stale
// socket there, never another kind of file), readable and writable by
// this user only.
func ListenFileSocket(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket: remove it so the daemon can make its file socket there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing the stale file socket %s: %w", path, err)
		}
	}
	return listenFileSocket(path)
}

// NewFileServer is NewServer for the file socket's listener (from
// ListenFileSocket): its handlers find the descriptors each connection
// received (takeFile).
func NewFileServer(ln net.Listener, h http.Handler, cfg ServerConfig) (*http.Server, net.Listener, error) {
	srv, l, err := NewServer(ln, h, cfg)
	if err != nil {
		return nil, nil, err
	}
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if lc, ok := c.(*limitedConn); ok {
			c = lc.Conn
		}
		if fc, ok := c.(*fdConn); ok {
			return context.WithValue(ctx, fdConnKey{}, fc)
		}
		return ctx
	}
	return srv, l, nil
}

type fdConnKey struct{}

// takeFile is the descriptor the request's connection received, as a
// file the handler closes; nil when none came.
func takeFile(ctx context.Context) *os.File {
	fc, ok := ctx.Value(fdConnKey{}).(*fdConn)
	if !ok {
		return nil
	}
	return fc.take()
}
