package kuborpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/internal/httpguard"
	"github.com/shoalnet/shoal/node"
)

// Node is what the RPC needs from a running node; *node.Node implements it.
type Node interface {
	Info() node.Info
	PublicKey() ([]byte, error)
	Protocols() []string
	Peers() []node.PeerInfo
	Connect(ctx context.Context, multiaddr string) error
	AddFile(ctx context.Context, r io.Reader, opts ...node.AddOption) (node.AddResult, error)
	Open(ctx context.Context, c cid.Cid) (node.File, error)
	Resolve(ctx context.Context, root cid.Cid, path string) (cid.Cid, error)
	Block(ctx context.Context, c cid.Cid) ([]byte, error)
	PutBlock(ctx context.Context, c cid.Cid, data []byte) error
	HasBlock(ctx context.Context, c cid.Cid) (bool, error)
	Pin(ctx context.Context, c cid.Cid) error
	Unpin(ctx context.Context, c cid.Cid) error
	PinRoots(ctx context.Context) ([]cid.Cid, error)
	WalkLocal(ctx context.Context, root cid.Cid, fn func(c cid.Cid) error) (node.DAGStat, error)
	Transfers() []node.TransferInfo
	GCKeys(ctx context.Context) ([]cid.Cid, node.GCResult, error)
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("kuborpc: bad configuration")

// Config is the RPC listener's settings.
type Config struct {
	// Addr is the HOST:PORT the RPC listens on; requests must name it (or,
	// on loopback, a loopback name with its port) in Host.
	Addr string
	// Token, when set, must come as "Authorization: Bearer TOKEN" (Kubo's
	// CLI sends it with --api-auth bearer:TOKEN).
	Token string
	// Version is shoal's version, shown by `version` and in AgentVersion.
	Version string
	// RepoPath is the node's home, shown by `repo stat`.
	RepoPath string
	// SwarmAddrs and GatewayAddr are shown by `config show`.
	SwarmAddrs  []string
	GatewayAddr string
	// Logger hears refused requests and failures; nil discards.
	Logger *slog.Logger
}

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("%w: rpc address %q is not HOST:PORT: %v", ErrConfig, c.Addr, err)
	}
	if !httpguard.IsLoopbackAddr(c.Addr) && c.Token == "" {
		return fmt.Errorf("%w: rpc address %q is not a loopback address: set an API token so strangers cannot drive this node", ErrConfig, c.Addr)
	}
	return nil
}

type server struct {
	cfg    Config
	n      Node
	log    *slog.Logger
	check  httpguard.Guard
	routes map[string]http.HandlerFunc
}

// New returns the handler of Kubo's /api/v0 for n.
func New(cfg Config, n Node) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	s := &server{cfg: cfg, n: n, log: cfg.Logger, check: httpguard.New(cfg.Addr, cfg.Token)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.routes = map[string]http.HandlerFunc{
		"id": s.id, "version": s.version,
		"swarm/peers": s.swarmPeers, "swarm/connect": s.swarmConnect,
		"repo/stat": s.repoStat, "repo/gc": s.repoGC, "config/show": s.configShow,
		"pin/add": s.pinAdd, "pin/rm": s.pinRm, "pin/ls": s.pinLs, "pin/update": s.pinUpdate,
		"block/put": s.blockPut, "block/get": s.blockGet, "block/stat": s.blockStat,
		"add": s.add, "cat": s.cat, "resolve": s.resolve, "name/resolve": s.nameResolve,
	}
	return s, nil
}

// Kubo's plain-text answers (go-ipfs-cmds' http package, written by
// http.Error so they end in a newline).
const (
	textNotFound  = "404 page not found"
	textNotPOST   = "405 - Method Not Allowed"
	textForbidden = "403 - Forbidden"
)

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.guard(w, r) {
		return
	}
	switch r.Method {
	case http.MethodOptions:
		w.Header().Set("Allow", "OPTIONS, POST")
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "OPTIONS, POST")
		http.Error(w, textNotPOST, http.StatusMethodNotAllowed)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/api/v0/")
	h := s.routes[strings.TrimSuffix(name, "/")]
	if !ok || h == nil {
		http.Error(w, textNotFound, http.StatusNotFound)
		return
	}
	h(w, r)
}

// guard holds shoal's API rules (package httpguard) on this listener:
// the Host must be the listener's (DNS rebinding), a browser's Origin must
// be the listener's own (cross-site requests), and a configured token
// must come with the request. Refusals use Kubo's plain-text 403 (401 for
// the token, as shoal's API answers, with what to do).
func (s *server) guard(w http.ResponseWriter, r *http.Request) bool {
	switch s.check.Check(r) {
	case httpguard.WrongHost:
		s.log.Warn("rpc: refused a request for another host", "host", r.Host)
		http.Error(w, fmt.Sprintf("%s: host %q is not this RPC's address %s", textForbidden, r.Host, s.cfg.Addr), http.StatusForbidden)
		return false
	case httpguard.ForeignOrigin:
		origin := r.Header.Get("Origin")
		s.log.Warn("rpc: refused a cross-origin request", "origin", origin)
		http.Error(w, fmt.Sprintf("%s: cross-origin request from %s refused", textForbidden, origin), http.StatusForbidden)
		return false
	case httpguard.BadToken:
		w.Header().Set("WWW-Authenticate", `Bearer realm="shoal"`)
		http.Error(w, "401 - Unauthorized: this shoal RPC needs the API token: ipfs --api-auth bearer:TOKEN, or the header Authorization: Bearer TOKEN", http.StatusUnauthorized)
		return false
	}
	return true
}

// Kubo's error codes (cmds.ErrorType): ErrNormal answers 500, ErrClient 400.
const (
	codeNormal = 0
	codeClient = 1
)

// rpcError is Kubo's error object.
type rpcError struct {
	Message string
	Code    int
	Type    string
}

// clientError marks a request the caller must fix (Kubo's ErrClient).
type clientError struct{ msg string }

func (e clientError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return clientError{fmt.Sprintf(format, args...)}
}

// commonHeaders are what go-ipfs-cmds sets on every answer it begins.
func commonHeaders(h http.Header) {
	const exposed = "X-Stream-Output, X-Chunked-Output, X-Content-Length"
	h.Set("Access-Control-Allow-Headers", exposed)
	h.Set("Access-Control-Expose-Headers", exposed)
	h.Set("Trailer", "X-Stream-Error")
}

// fail answers err as Kubo's error object, before anything else was sent.
func (s *server) fail(w http.ResponseWriter, err error) {
	var ae argError
	if errors.As(err, &ae) {
		http.Error(w, ae.msg, http.StatusBadRequest)
		return
	}
	e := rpcError{Message: err.Error(), Code: codeNormal, Type: "error"}
	status := http.StatusInternalServerError
	var ce clientError
	if errors.As(err, &ce) {
		e.Code, status = codeClient, http.StatusBadRequest
	}
	h := w.Header()
	commonHeaders(h)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}

// single answers one value, as cmds.EmitOnce does.
func (s *server) single(w http.ResponseWriter, v any) {
	commonHeaders(w.Header())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

// stream writes values one per line with X-Chunked-Output, flushing each,
// as a command that calls Emit repeatedly does. An error after the first
// value goes in the X-Stream-Error trailer.
type stream struct {
	w       http.ResponseWriter
	s       *server
	started bool
}

func (s *server) newStream(w http.ResponseWriter) *stream { return &stream{w: w, s: s} }

func (st *stream) begin() {
	if st.started {
		return
	}
	st.started = true
	commonHeaders(st.w.Header())
	st.w.Header().Set("X-Chunked-Output", "1")
	st.w.Header().Set("Content-Type", "application/json")
	st.w.WriteHeader(http.StatusOK)
}

func (st *stream) emit(v any) error {
	st.begin()
	if err := json.NewEncoder(st.w).Encode(v); err != nil {
		return err
	}
	if f, ok := st.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// end closes the stream with err (nil for success).
func (st *stream) end(err error) {
	if err == nil {
		st.begin()
		return
	}
	if !st.started {
		st.s.fail(st.w, err)
		return
	}
	st.w.Header().Set("X-Stream-Error", err.Error())
}

// bytesOut answers a byte stream (cat, block get) with X-Stream-Output and
// the command's Content-Type (text/plain for cat, so a browser never
// renders it; Kubo's block get says application/vnd.ipld.raw); length is
// sent as X-Content-Length when known (>= 0).
func (s *server) bytesOut(w http.ResponseWriter, r io.Reader, length int64, ctype string) {
	h := w.Header()
	commonHeaders(h)
	if length >= 0 {
		h.Set("X-Content-Length", fmt.Sprint(length))
	}
	h.Set("X-Stream-Output", "1")
	h.Set("Content-Type", ctype)
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, r); err != nil {
		h.Set("X-Stream-Error", err.Error())
		s.log.Warn("rpc: streaming bytes", "err", err)
	}
}
