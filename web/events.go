package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/shoalnet/shoal/node"
)

// zeroTime is the modification time of content: CIDs have none.
var zeroTime time.Time

// snapshot is one server-sent event of GET /api/v1/events.
type snapshot struct {
	Time      time.Time           `json:"time"`
	Info      node.Info           `json:"info"`
	Peers     []node.PeerInfo     `json:"peers"`
	Transfers []node.TransferInfo `json:"transfers"`
}

// handleEvents sends a "snapshot" event at once and then every
// EventInterval until the client goes away.
func (a *api) handleEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := fmt.Fprintf(w, "retry: %d\n\n", a.cfg.EventInterval.Milliseconds()); err != nil {
		return
	}
	tick := time.NewTicker(a.cfg.EventInterval)
	defer tick.Stop()
	for {
		s := snapshot{
			Time:      time.Now().UTC(),
			Info:      a.n.Info(),
			Peers:     nonNil(a.n.Peers()),
			Transfers: nonNil(a.n.Transfers()),
		}
		b, err := json.Marshal(s)
		if err != nil {
			a.log.Warn("encoding event", "err", err)
			return
		}
		if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", b); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}
