// Package httpguard holds the checks every shoal HTTP listener puts in
// front of its routes, so that only this machine's user drives the node: a
// Host that does not name the listener is refused (DNS rebinding), so is a
// browser's Origin that is not the listener's own (cross-site requests),
// and, when a token is configured, a request without the right bearer
// token. Requests without Origin (the CLI, curl, Kubo's CLI) pass the
// origin check.
//
// The rules live here once; each listener answers a refusal in its own
// shape: web (shoal's API and dashboard) with its JSON errors, kuborpc
// (Kubo's RPC) with Kubo's plain text. It imports no shoal package.
package httpguard

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Refusal is what Check found wrong with a request; Allowed is nothing.
type Refusal int

const (
	// Allowed: the request passes every check.
	Allowed Refusal = iota
	// WrongHost: the Host header does not name the listener.
	WrongHost
	// ForeignOrigin: the request carries an Origin other than the
	// listener's own.
	ForeignOrigin
	// BadToken: a token is configured and the request lacks it or sends
	// another (answer 401 with WWW-Authenticate).
	BadToken
)

// Guard is the checks of one listener.
type Guard struct {
	listenHost, listenPort string
	valid                  bool
	token                  string
}

// New returns the guard of a listener on addr (HOST:PORT, the address
// after binding, so a real port). token "" means no token is needed. An
// addr that is not HOST:PORT gives a guard that refuses every Host:
// callers validate their address first and say what is wrong with it.
func New(addr, token string) Guard {
	host, port, err := net.SplitHostPort(addr)
	return Guard{listenHost: host, listenPort: port, valid: err == nil, token: token}
}

// Check reports the first rule r breaks, in the order Host, Origin,
// token.
func (g Guard) Check(r *http.Request) Refusal {
	if !g.AllowedHost(r.Host) {
		return WrongHost
	}
	if origin := r.Header.Get("Origin"); origin != "" && !SameOrigin(origin, r.Host) {
		return ForeignOrigin
	}
	if g.token != "" && !g.TokenOK(r) {
		return BadToken
	}
	return Allowed
}

// AllowedHost accepts a Host header naming the listen host itself and,
// when listening on loopback, any loopback name; always with the listen
// port (a Host without a port means 80). A wildcard listen address
// (0.0.0.0, ::) accepts any host: a token guards it.
func (g Guard) AllowedHost(hostHeader string) bool {
	if !g.valid {
		return false
	}
	host, port, err := net.SplitHostPort(hostHeader)
	if err != nil {
		host, port = hostHeader, "80"
	}
	if port != g.listenPort || host == "" {
		return false
	}
	if ip := net.ParseIP(g.listenHost); ip != nil && ip.IsUnspecified() {
		return true
	}
	if strings.EqualFold(host, g.listenHost) {
		return true
	}
	return IsLoopbackHost(g.listenHost) && IsLoopbackHost(host)
}

// TokenOK reports whether r carries "Authorization: Bearer TOKEN" with
// the guard's token (compared in constant time). With no token
// configured nothing matches: callers ask only when one is.
func (g Guard) TokenOK(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || g.token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(g.token)) == 1
}

// SameOrigin reports whether origin is http://<host> for the request's
// (already checked) Host; a missing port is 80 on either side.
func SameOrigin(origin, host string) bool {
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

// IsLoopbackHost reports whether host (a name or an IP, bracketed or not)
// is localhost or a loopback IP.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}

// IsLoopbackAddr reports whether HOST:PORT names a loopback host.
func IsLoopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	return err == nil && IsLoopbackHost(host)
}
