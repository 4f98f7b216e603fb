package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Client talks to one daemon's API. Its methods are safe for concurrent
// use. A non-2xx answer is an *Error, and so is an address where nothing
// listens (CodeNoDaemon); another failure to reach the server wraps the
// transport's error, and a request whose ctx ended returns ctx.Err().
type Client struct {
	base  string // http://host:port, no trailing slash
	token string
	hc    *http.Client
}

// NewClient returns a client of the API at baseURL (http://host:port;
// "host:port" alone means http). token, when not empty, is sent as a
// bearer token; hc nil means a new http.Client without timeout (content
// streams are long).
func NewClient(baseURL, token string, hc *http.Client) (*Client, error) {
	base := strings.TrimSpace(baseURL)
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("API address %q is not a URL like http://127.0.0.1:5080", baseURL)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, hc: hc}, nil
}

// BaseURL is the API's URL without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// do sends one request to /api/v1/route and returns the 2xx response,
// whose body the caller closes.
func (c *Client) do(ctx context.Context, method, route string, body io.Reader, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/api/v1/"+route, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, &Error{Code: CodeNoDaemon, Message: fmt.Sprintf("no shoal daemon at %s: start one with \"shoal daemon\"", c.base)}
		}
		return nil, fmt.Errorf("talking to the shoal daemon at %s: %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

// readError turns an error answer into an *Error in the server's words;
// an answer that is not an API error body (another server on the port)
// says so.
func readError(resp *http.Response) *Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Status: resp.StatusCode, Code: CodeFor(resp.StatusCode)}
	var body ErrorBody
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		e.Message = body.Error
		if body.Code != "" {
			e.Code = body.Code
		}
		return e
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if line == "" {
		line = resp.Status
	}
	e.Message = fmt.Sprintf("the daemon answered %s: %s (is %s a shoal API?)", resp.Status, line, resp.Request.URL.Host)
	return e
}

// call sends a request and decodes its JSON answer into out.
func (c *Client) call(ctx context.Context, method, route string, body io.Reader, contentType string, out any) error {
	var hdr http.Header
	if contentType != "" {
		hdr = http.Header{"Content-Type": {contentType}}
	}
	resp, err := c.do(ctx, method, route, body, hdr)
	if err != nil {
		return err
	}
	defer func() {
		io.Copy(io.Discard, resp.Body) // to its end, so the connection is kept
		resp.Body.Close()
	}()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the daemon's answer to %s /api/v1/%s: %w", method, route, err)
	}
	return nil
}

func (c *Client) get(ctx context.Context, route string, out any) error {
	return c.call(ctx, http.MethodGet, route, nil, "", out)
}

func (c *Client) post(ctx context.Context, route string, out any) error {
	return c.call(ctx, http.MethodPost, route, nil, "", out)
}

// ID is GET /api/v1/id.
func (c *Client) ID(ctx context.Context) (ID, error) {
	var id ID
	err := c.get(ctx, "id", &id)
	return id, err
}

// Stat is GET /api/v1/stat.
func (c *Client) Stat(ctx context.Context) (Stat, error) {
	var st Stat
	err := c.get(ctx, "stat", &st)
	return st, err
}

// StatPath is GET /api/v1/stat/{cid}[/path]: what CID (or the entry path
// below it) is.
func (c *Client) StatPath(ctx context.Context, cidPath string) (CIDStat, error) {
	var st CIDStat
	err := c.get(ctx, "stat/"+escapePath(cidPath), &st)
	return st, err
}

// Peers is GET /api/v1/peers.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var peers []Peer
	err := c.get(ctx, "peers", &peers)
	return peers, err
}

// Connect is POST /api/v1/connect: dial the peer at multiaddr.
func (c *Client) Connect(ctx context.Context, multiaddr string) (Connect, error) {
	body, err := json.Marshal(Connect{Addr: multiaddr})
	if err != nil {
		return Connect{}, err
	}
	var res Connect
	err = c.call(ctx, http.MethodPost, "connect", bytes.NewReader(body), "application/json", &res)
	return res, err
}

// AddOptions are the options of POST /api/v1/add.
type AddOptions struct {
	// Name is kept with the root ("" for none).
	Name string
	// Tar says the body is a tar of a directory tree, not a file.
	Tar bool
}

// Add is POST /api/v1/add: store, pin and provide what r holds.
func (c *Client) Add(ctx context.Context, r io.Reader, o AddOptions) (AddResult, error) {
	route, ct := "add", "application/octet-stream"
	if o.Name != "" {
		route += "?name=" + url.QueryEscape(o.Name)
	}
	if o.Tar {
		ct = "application/x-tar"
	}
	var res AddResult
	err := c.call(ctx, http.MethodPost, route, r, ct, &res)
	return res, err
}

// FetchOptions are the options of POST /api/v1/fetch.
type FetchOptions struct {
	// Timeout bounds the search for a provider (0 searches until the
	// transfer is cancelled); nil leaves the daemon's default.
	Timeout *time.Duration
	// Pin pins the root once it is complete.
	Pin bool
	// Path (FetchFile only) is the absolute name the caller renames the
	// file to when it is done: the daemon's references to the file's
	// blocks name it too, so a crash around the rename loses none.
	Path string
	// Name names the transfer (default: the path's last segment).
	Name string
	// Wait answers only once the transfer has finished.
	Wait bool
}

// Fetch is POST /api/v1/fetch: start fetching target (CID, CID/path or
// /ipfs/CID/path) into the daemon's store.
func (c *Client) Fetch(ctx context.Context, target string, o FetchOptions) (Transfer, error) {
	q := url.Values{"cid": {target}}
	if o.Timeout != nil {
		q.Set("timeout", o.Timeout.String())
	}
	if o.Pin {
		q.Set("pin", "true")
	}
	if o.Name != "" {
		q.Set("name", o.Name)
	}
	if o.Wait {
		q.Set("wait", "true")
	}
	var t Transfer
	err := c.post(ctx, "fetch?"+q.Encode(), &t)
	return t, err
}

// Transfers is GET /api/v1/transfers.
func (c *Client) Transfers(ctx context.Context) ([]Transfer, error) {
	var ts []Transfer
	err := c.get(ctx, "transfers", &ts)
	return ts, err
}

// Transfer is GET /api/v1/transfers/{id}.
func (c *Client) Transfer(ctx context.Context, id string) (Transfer, error) {
	var t Transfer
	err := c.get(ctx, "transfers/"+url.PathEscape(id), &t)
	return t, err
}

// CancelTransfer is POST /api/v1/transfers/{id}/cancel; it answers the
// transfer's final state.
func (c *Client) CancelTransfer(ctx context.Context, id string) (Transfer, error) {
	var t Transfer
	err := c.post(ctx, "transfers/"+url.PathEscape(id)+"/cancel", &t)
	return t, err
}

// Ls is GET /api/v1/ls: the roots the node holds.
func (c *Client) Ls(ctx context.Context) ([]Root, error) {
	var roots []Root
	err := c.get(ctx, "ls", &roots)
	return roots, err
}

// Pin is POST /api/v1/pin/{cid}.
func (c *Client) Pin(ctx context.Context, cid string) (PinResult, error) {
	var res PinResult
	err := c.post(ctx, "pin/"+url.PathEscape(cid), &res)
	return res, err
}

// Unpin is POST /api/v1/unpin/{cid}.
func (c *Client) Unpin(ctx context.Context, cid string) (PinResult, error) {
	var res PinResult
	err := c.post(ctx, "unpin/"+url.PathEscape(cid), &res)
	return res, err
}

// GC is POST /api/v1/gc.
func (c *Client) GC(ctx context.Context) (GCResult, error) {
	var res GCResult
	err := c.post(ctx, "gc", &res)
	return res, err
}

// RepoVerify is POST /api/v1/repo/verify.
func (c *Client) RepoVerify(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	err := c.post(ctx, "repo/verify", &rep)
	return rep, err
}

// Content is a content stream: GET /api/v1/cat or /api/v1/get.
type Content struct {
	io.ReadCloser
	// Size is a file's size (X-Content-Size), -1 when not sent.
	Size int64
	// Type is what GET /api/v1/get streams (X-Content-Type: "file",
	// "directory", ...), "" for cat.
	Type string
}

// Cat is GET /api/v1/cat/{cid}[/path]: the file's bytes from byte offset
// on (0 for all of it), streamed as the daemon fetches them. A server
// that does not answer a range from offset is an error.
func (c *Client) Cat(ctx context.Context, cidPath string, offset int64) (*Content, error) {
	return c.CatOf(ctx, cidPath, "", offset)
}

// CatOf is Cat for a read that belongs to the transfer with the given ID
// (GET /api/v1/cat/{cid}[/path]?transfer=ID): the daemon starts no fetch
// of its own for it, and refuses it with the transfer's error once that
// transfer has failed or was cancelled. "" is Cat.
func (c *Client) CatOf(ctx context.Context, cidPath, transfer string, offset int64) (*Content, error) {
	var hdr http.Header
	if offset > 0 {
		hdr = http.Header{"Range": {fmt.Sprintf("bytes=%d-", offset)}}
	}
	resp, err := c.do(ctx, http.MethodGet, "cat/"+escapePath(cidPath)+transferQuery(transfer), nil, hdr)
	if err != nil {
		return nil, err
	}
	if offset > 0 && resp.StatusCode != http.StatusPartialContent {
		resp.Body.Close()
		return nil, fmt.Errorf("the daemon did not resume %s at byte %d (HTTP %s)", cidPath, offset, resp.Status)
	}
	size := int64(-1)
	if s := resp.Header.Get("X-Content-Size"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			size = n
		}
	}
	return &Content{ReadCloser: resp.Body, Size: size}, nil
}

// Get is GET /api/v1/get/{cid}[/path]: a tar of the directory (or file)
// whose top entry is named after the CID.
func (c *Client) Get(ctx context.Context, cidPath string) (*Content, error) {
	return c.GetOf(ctx, cidPath, "")
}

// GetOf is Get for a read that belongs to the transfer with the given ID
// (?transfer=ID, as CatOf). "" is Get.
func (c *Client) GetOf(ctx context.Context, cidPath, transfer string) (*Content, error) {
	resp, err := c.do(ctx, http.MethodGet, "get/"+escapePath(cidPath)+transferQuery(transfer), nil, nil)
	if err != nil {
		return nil, err
	}
	return &Content{ReadCloser: resp.Body, Size: -1, Type: resp.Header.Get("X-Content-Type")}, nil
}

// transferQuery is the query that ties a read to transfer id, or "".
func transferQuery(id string) string {
	if id == "" {
		return ""
	}
	return "?" + url.Values{"transfer": {id}}.Encode()
}

// escapePath escapes each segment of "cid/path" for a URL path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// FileEvent is one line of the answer of POST /api/v1/fetchfile, a
// stream of JSON lines: the bytes of the file written so far, its size
// and the transfer. The last line has Done set (the file is whole and
// synced), or Error and Code when the fetch or the writing failed.
type FileEvent struct {
	Written  uint64    `json:"written"`
	Size     uint64    `json:"size"`
	Transfer *Transfer `json:"transfer,omitempty"`
	Done     bool      `json:"done,omitempty"`
	Error    string    `json:"error,omitempty"`
	Code     string    `json:"code,omitempty"`
}

// ErrNoFileSocket: the daemon's file socket cannot be used from here (it
// does not exist, this user may not connect to it, or this system cannot
// pass descriptors); stream the content instead.
var ErrNoFileSocket = errors.New("api: the daemon's file socket cannot be used")

// overFileSocket is a client for one request over the file socket, with
// f's descriptor sent along; done releases it.
func (c *Client) overFileSocket(ctx context.Context, socket string, f *os.File) (*Client, net.Conn, func(), error) {
	conn, err := dialFileSocket(ctx, socket, f)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %s: %v", ErrNoFileSocket, socket, err)
	}
	dialed := false
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(context.Context, string, string) (net.Conn, error) {
		if dialed {
			return nil, errors.New("the file socket's one connection is used")
		}
		dialed = true
		return conn, nil
	}}
	return &Client{base: c.base, token: c.token, hc: &http.Client{Transport: tr}}, conn, tr.CloseIdleConnections, nil
}

// Placed is the answer of POST /api/v1/fetchfile/placed.
type Placed struct {
	Leaves int `json:"leaves"` // leaves the store now references in the file
}

// FilePlaced is POST /api/v1/fetchfile/placed over the file socket: f
// (opened again, for reading) is the file FetchFile wrote for target,
// now renamed into place, and the daemon's references to its leaves
// follow it there, so the file is the seed.
func (c *Client) FilePlaced(ctx context.Context, socket, target string, f *os.File) (Placed, error) {
	uc, conn, done, err := c.overFileSocket(ctx, socket, f)
	if err != nil {
		return Placed{}, err
	}
	defer done()
	var out Placed
	if err := uc.call(ctx, http.MethodPost, "fetchfile/placed?"+url.Values{"cid": {target}}.Encode(), nil, "", &out); err != nil {
		conn.Close()
		return out, err
	}
	return out, nil
}

// AddNoCopy is POST /api/v1/addfile over the file socket: the daemon
// shares f (a regular file this process opened for reading; its
// descriptor travels with the request) without copying it into its
// store, which keeps references to the file's ranges instead.
func (c *Client) AddNoCopy(ctx context.Context, socket string, f *os.File, o AddOptions) (AddResult, error) {
	uc, conn, done, err := c.overFileSocket(ctx, socket, f)
	if err != nil {
		return AddResult{}, err
	}
	defer done()
	route := "addfile"
	if o.Name != "" {
		route += "?name=" + url.QueryEscape(o.Name)
	}
	var res AddResult
	if err := uc.call(ctx, http.MethodPost, route, nil, "", &res); err != nil {
		conn.Close()
		return res, err
	}
	return res, nil
}

// FetchFile is POST /api/v1/fetchfile over the daemon's unix socket at
// socket: the daemon fetches target (CID or CID/path, a file) and writes
// it into f, which this process opened for writing (empty, not append)
// and whose descriptor travels with the request (SCM_RIGHTS), so the
// daemon writes only a file its caller could. progress hears every
// event; the last one is returned. Renaming f into place is the caller's.
func (c *Client) FetchFile(ctx context.Context, socket, target string, f *os.File, o FetchOptions, progress func(FileEvent)) (FileEvent, error) {
	uc, conn, done, err := c.overFileSocket(ctx, socket, f)
	if err != nil {
		return FileEvent{}, err
	}
	defer done()
	q := url.Values{"cid": {target}}
	if o.Timeout != nil {
		q.Set("timeout", o.Timeout.String())
	}
	if o.Pin {
		q.Set("pin", "true")
	}
	if o.Path != "" {
		q.Set("path", o.Path)
	}
	resp, err := uc.do(ctx, http.MethodPost, "fetchfile?"+q.Encode(), nil, nil)
	if err != nil {
		conn.Close()
		return FileEvent{}, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	var last FileEvent
	for {
		var ev FileEvent
		if err := dec.Decode(&ev); err != nil {
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			return last, fmt.Errorf("the daemon's answer to fetchfile broke off after %d bytes were written: %w (see the daemon's log)", last.Written, err)
		}
		if ev.Error != "" {
			return ev, &Error{Code: ev.Code, Message: ev.Error}
		}
		last = ev
		if progress != nil {
			progress(ev)
		}
		if ev.Done {
			return ev, nil
		}
	}
}
