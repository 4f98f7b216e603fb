package web

import (
	"fmt"
	"net/http"
)

// handleRepoVerify is POST /api/v1/repo/verify: rehash every stored block,
// remove the corrupt ones, report pins with missing blocks. It answers 200
// with the report whatever it found; the report says what was damaged.
func (a *api) handleRepoVerify(w http.ResponseWriter, r *http.Request) {
	rep, err := a.n.Verify(r.Context())
	if err != nil {
		a.fail(w, r, fmt.Errorf("repo verify: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
