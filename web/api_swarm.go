package web

import "net/http"

// GET /api/v1/swarm: who serves whom (api.Swarm).
func (a *api) handleSwarm(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.n.Swarm(r.Context()))
}

// GET /api/v1/cluster: the IPFS Cluster peer's view of the pins
// (api.Cluster); 404 without a cluster configured, 502 when it cannot be
// read.
func (a *api) handleCluster(w http.ResponseWriter, r *http.Request) {
	c, err := a.n.Cluster(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
