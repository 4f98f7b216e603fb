package web

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// guard refuses requests that did not come from this machine's user:
// a Host that is not the API's (DNS rebinding), an Origin that is not the
// API's own (cross-site requests from a browser page), and, when a token
// is configured, a missing or wrong bearer token. Requests without Origin
// (the CLI, curl) pass the origin check.
func (a *api) guard(next http.Handler) http.Handler {
	listenHost, listenPort, _ := net.SplitHostPort(a.cfg.Addr) // validated
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowedHost(r.Host, listenHost, listenPort) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("host %q is not this API's address %s: use http://%s", r.Host, a.cfg.Addr, a.cfg.Addr))
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r.Host) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("cross-origin request from %s refused: the shoal API only answers pages it serves itself", origin))
			return
		}
		if a.cfg.Token != "" && !a.tokenOK(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoal"`)
			writeError(w, http.StatusUnauthorized, "this shoal API needs a token: set SHOAL_API_TOKEN or pass --api-token-file PATH")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *api) tokenOK(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(a.cfg.Token)) == 1
}

// allowedHost accepts the listen host itself and, when listening on
// loopback, the loopback names; always with the listen port. A wildcard
// listen address (0.0.0.0, ::) accepts any host: a token guards it.
func allowedHost(hostHeader, listenHost, listenPort string) bool {
	host, port, err := net.SplitHostPort(hostHeader)
	if err != nil {
		host, port = hostHeader, "80"
	}
	if port != listenPort || host == "" {
		return false
	}
	if ip := net.ParseIP(listenHost); ip != nil && ip.IsUnspecified() {
		return true
	}
	if strings.EqualFold(host, listenHost) {
		return true
	}
	if isLoopbackHost(listenHost) {
		return isLoopbackHost(strings.ToLower(host))
	}
	return false
}

// sameOrigin reports whether origin is http://<host> for the request's
// (already checked) Host.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" || u.Path != "" && u.Path != "/" {
		return false
	}
	uh := u.Host
	if u.Port() == "" {
		uh = net.JoinHostPort(u.Hostname(), "80")
	}
	h := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		h = net.JoinHostPort(host, "80")
	}
	return strings.EqualFold(uh, h)
}
