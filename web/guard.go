package web

import (
	"fmt"
	"net/http"

	"github.com/shoalnet/shoal/internal/httpguard"
)

// guard refuses requests that did not come from this machine's user
// (package httpguard's rules: Host, Origin, bearer token), with the API's
// JSON errors saying what to do.
func (a *api) guard(next http.Handler) http.Handler {
	g := httpguard.New(a.cfg.Addr, a.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch g.Check(r) {
		case httpguard.WrongHost:
			writeError(w, http.StatusForbidden, fmt.Sprintf("host %q is not this API's address %s: use http://%s", r.Host, a.cfg.Addr, a.cfg.Addr))
		case httpguard.ForeignOrigin:
			writeError(w, http.StatusForbidden, fmt.Sprintf("cross-origin request from %s refused: the shoal API only answers pages it serves itself", r.Header.Get("Origin")))
		case httpguard.BadToken:
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoal"`)
			writeError(w, http.StatusUnauthorized, "this shoal API needs a token: set SHOAL_API_TOKEN or pass --api-token-file PATH")
		default:
			next.ServeHTTP(w, r)
		}
	})
}
