package web

import (
	"crypto/subtle"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/shoalnet/shoal/internal/httpguard"
)

// assets is the dashboard: one HTML page, its stylesheet, script and icon.
// It links to no other host, so it works offline.
//
//go:embed assets
var assets embed.FS

// tokenCookieTTL is how long a browser stays signed in to a token-protected
// dashboard.
const tokenCookieTTL = 7 * 24 * time.Hour

// site is the API address's whole surface: API, dashboard and metrics.
type site struct {
	cfg     APIConfig
	n       Node
	log     *slog.Logger
	guarded *api // only its guard is used
	bw      *bandwidthHistory
	metrics *metricsCollector
}

// NewSite returns the handler of everything the API address serves: the
// JSON API (NewAPI), the dashboard page at / with its assets under
// /assets/, the dashboard's own event stream at /api/v1/dashboard/events,
// Prometheus metrics at /metrics, and Go's profiler at /debug/pprof/.
// Every route sits behind the API's
// Host, Origin and token checks.
//
// With a token configured, a browser signs in once by opening
// /?token=<token> (or by the form the page shows without it): the token is
// then kept in an HttpOnly, SameSite=Strict cookie that stands for the
// bearer header, so the page and its event stream need no script access
// to the token. Cross-site pages get neither the cookie (SameSite) nor an
// answer (the Origin check), and a rebinding host name fails the Host
// check before the cookie is looked at.
func NewSite(cfg APIConfig, n Node) (http.Handler, error) {
	apiHandler, err := NewAPI(cfg, n)
	if err != nil {
		return nil, err
	}
	s := &site{cfg: cfg, n: n, log: cfg.Logger, guarded: &api{cfg: cfg, n: n}, bw: newBandwidthHistory(bandwidthHistoryLen)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.metrics = newMetricsCollector(n)
	metrics, err := s.metricsHandler()
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", apiHandler) // guarded by NewAPI
	own := http.NewServeMux()
	own.Handle("GET /{$}", http.HandlerFunc(s.handlePage))
	own.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(static)))
	own.Handle("GET /favicon.ico", http.RedirectHandler("/assets/icon.svg", http.StatusMovedPermanently))
	own.Handle("GET /metrics", metrics)
	own.Handle("GET /api/v1/dashboard/events", http.HandlerFunc(s.handleDashboardEvents))
	// Go's profiler, as Kubo serves it on its API port: CPU, heap,
	// goroutines and traces of a running daemon, behind the same checks.
	own.HandleFunc("GET /debug/pprof/", pprof.Index)
	own.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	own.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	own.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	own.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	own.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("nothing at %s: the dashboard is at /, the API under /api/v1/, metrics at /metrics", r.URL.Path))
	})
	guardedOwn := s.guarded.guard(own)
	mux.Handle("/api/v1/dashboard/", guardedOwn)
	mux.Handle("/", guardedOwn)
	return securityHeaders(s.signIn(mux)), nil
}

// securityHeaders keeps the dashboard from being framed, from loading
// anything not served here and from having responses sniffed.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		next.ServeHTTP(w, r)
	})
}

func (s *site) cookieName() string {
	_, port, _ := net.SplitHostPort(s.cfg.Addr)
	// Cookies ignore ports: one name per API port keeps two daemons on one
	// host (shoal demo) from overwriting each other's sign-in.
	return "shoal_token_" + port
}

// signIn turns the sign-in cookie into the bearer header the guard
// checks, and handles the sign-in itself: GET /?token= and POST /signin.
// Without a configured token it does nothing.
func (s *site) signIn(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	g := httpguard.New(s.cfg.Addr, s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.AllowedHost(r.Host) {
			next.ServeHTTP(w, r) // the guard refuses it with its own message
			return
		}
		if r.Header.Get("Authorization") == "" {
			if c, err := r.Cookie(s.cookieName()); err == nil && c.Value != "" {
				r = r.Clone(r.Context())
				r.Header.Set("Authorization", "Bearer "+c.Value)
			}
		}
		switch {
		case r.URL.Path == "/" && r.Method == http.MethodGet && r.URL.Query().Has("token"):
			s.acceptToken(w, r, r.URL.Query().Get("token"))
		case r.URL.Path == "/signin" && r.Method == http.MethodPost:
			if o := r.Header.Get("Origin"); o != "" && !httpguard.SameOrigin(o, r.Host) {
				next.ServeHTTP(w, r) // refused by the guard's Origin check
				return
			}
			s.acceptToken(w, r, r.PostFormValue("token"))
		case r.URL.Path == "/" && r.Method == http.MethodGet && !g.TokenOK(r):
			s.servePage(w, "signin.html", http.StatusUnauthorized)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// acceptToken sets the sign-in cookie when token is right and sends the
// browser to the dashboard; a wrong token gets the sign-in page again.
func (s *site) acceptToken(w http.ResponseWriter, r *http.Request, token string) {
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.Token)) != 1 {
		s.log.Warn("dashboard sign-in with a wrong token", "remote", r.RemoteAddr)
		s.servePage(w, "signin.html", http.StatusUnauthorized)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookieName(),
		Value:    token,
		Path:     "/",
		MaxAge:   int(tokenCookieTTL.Seconds()),
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *site) handlePage(w http.ResponseWriter, r *http.Request) {
	s.servePage(w, "index.html", http.StatusOK)
}

func (s *site) servePage(w http.ResponseWriter, name string, status int) {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		http.Error(w, "dashboard page missing from this build", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
