package web

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/internal/httpguard"
)

// APIConfig configures the JSON API.
type APIConfig struct {
	// Addr is the host:port the API is listening on (after binding, so a
	// requested port 0 is the real port). Requests whose Host header names
	// another port, or a host other than this one or a loopback name, are
	// refused: that stops DNS-rebinding pages from reaching the API.
	Addr string
	// Token, when set, must be sent by every request as
	// "Authorization: Bearer <token>". Required when Addr is not loopback.
	Token string
	// GatewayURL is reported by GET /api/v1/id so clients find the gateway.
	GatewayURL string
	// EventInterval is the period of the snapshots GET /api/v1/events
	// sends.
	EventInterval time.Duration
	// Logger receives request errors; nil discards them.
	Logger *slog.Logger
}

// DefaultAPIConfig returns the configuration of an API on addr.
func DefaultAPIConfig(addr string) APIConfig {
	return APIConfig{Addr: addr, EventInterval: time.Second}
}

// Validate reports the first thing wrong with the configuration.
func (c APIConfig) Validate() error {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("%w: API address %q is not host:port: %v", ErrConfig, c.Addr, err)
	}
	if port == "0" || port == "" {
		return fmt.Errorf("%w: API address %q has no port: pass the address after binding the listener", ErrConfig, c.Addr)
	}
	if !httpguard.IsLoopbackHost(host) && c.Token == "" {
		return fmt.Errorf("%w: the API listens on %s, which is not loopback, so it needs a token: set SHOAL_API_TOKEN or --api-token-file", ErrConfig, c.Addr)
	}
	if c.EventInterval <= 0 {
		return fmt.Errorf("%w: event interval %v must be positive", ErrConfig, c.EventInterval)
	}
	return nil
}

// URL is the API's base URL (http://host:port).
func (c APIConfig) URL() string { return "http://" + c.Addr }

// api serves /api/v1.
type api struct {
	cfg APIConfig
	n   Node
	log *slog.Logger
}

// NewAPI returns the handler of the JSON API under /api/v1. Every route
// answers JSON in package api's types; errors are {"error": "...",
// "code": "..."} (api.ErrorBody) with a status that classifies them. State-changing routes accept only POST.
func NewAPI(cfg APIConfig, n Node) (http.Handler, error) {
	a, err := newAPI(cfg, n)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	get := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, onlyMethod(http.MethodGet, h)) }
	post := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, onlyMethod(http.MethodPost, h)) }
	get("/api/v1/id", a.handleID)
	get("/api/v1/peers", a.handlePeers)
	post("/api/v1/connect", a.handleConnect)
	post("/api/v1/add", a.handleAdd)
	post("/api/v1/fetch", a.handleFetch)
	get("/api/v1/transfers", a.handleTransfers)
	get("/api/v1/transfers/{id}", a.handleTransfer)
	post("/api/v1/transfers/{id}/cancel", a.handleCancelTransfer)
	get("/api/v1/cat/{path...}", a.handleCat)
	get("/api/v1/get/{path...}", a.handleGet)
	get("/api/v1/ls", a.handleLs)
	post("/api/v1/pin/{cid}", a.handlePin)
	post("/api/v1/unpin/{cid}", a.handleUnpin)
	post("/api/v1/gc", a.handleGC)
	post("/api/v1/repo/verify", a.handleRepoVerify)
	get("/api/v1/stat", a.handleStat)
	get("/api/v1/stat/{path...}", a.handleStatCID)
	get("/api/v1/events", a.handleEvents)
	get("/api/v1/swarm", a.handleSwarm)
	get("/api/v1/cluster", a.handleCluster)
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API route %s: see /api/v1/ routes in the shoal documentation", r.URL.Path))
	})
	return a.guard(mux), nil
}

// newAPI checks cfg and returns the API's state (for NewAPI and
// NewFileAPI).
func newAPI(cfg APIConfig, n Node) (*api, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &api{cfg: cfg, n: n, log: cfg.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

// onlyMethod answers 405 with a JSON body to any other method (HEAD is
// accepted where GET is).
func onlyMethod(method string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
			h.ServeHTTP(w, r)
			return
		}
		allow := method
		if method == http.MethodGet {
			allow = "GET, HEAD"
		}
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s needs %s, not %s", r.URL.Path, method, r.Method))
	})
}

// writeJSON sends v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError sends {"error": msg, "code": kind} on one line: msg is one
// sentence, and a client that shows the raw body shows one line; the code
// is the one package api gives the status.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apiv1.ErrorBody{Error: msg, Code: apiv1.CodeFor(status)})
}

// fail reports err with the status statusFor gives it; the message is the
// error's own words without the package prefix of web's sentinels.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusFor(err)
	if status >= 500 {
		a.log.Warn("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, status, errorMessage(err))
}

// errorMessage is the line a client reads for err: without web's own
// sentinel prefixes, which carry the status and mean nothing to a user,
// and without a caller's "verb CID: " when the rest names that CID again
// (the node names the CIDs it was given; each is said once).
func errorMessage(err error) string {
	msg := err.Error()
	for _, s := range []error{ErrBadRequest, ErrNotFound} {
		msg = strings.TrimPrefix(msg, s.Error()+": ")
	}
	for {
		prefix, rest, ok := strings.Cut(msg, ": ")
		if !ok {
			return msg
		}
		last := prefix[strings.LastIndexByte(prefix, ' ')+1:]
		if _, err := cid.Decode(last); err != nil || !strings.Contains(rest, last) {
			return msg
		}
		msg = rest
	}
}
