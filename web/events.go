package web

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	apiv1 "github.com/shoalnet/shoal/api"
)

// zeroTime is the modification time of content: CIDs have none.
var zeroTime time.Time

// handleEvents sends a "snapshot" event at once and then every
// EventInterval until the client goes away.
func (a *api) handleEvents(w http.ResponseWriter, r *http.Request) {
	serveEvents(w, r, a.cfg.EventInterval, a.log, func(now time.Time) any { return a.event(now) })
}

// event is the node's state at now, as GET /api/v1/events sends it.
func (a *api) event(now time.Time) apiv1.Event {
	return apiv1.Event{
		Time:      now.UTC(),
		Info:      a.n.Info(),
		Peers:     nonNil(a.n.Peers()),
		Transfers: nonNil(a.n.Transfers()),
	}
}

// serveEvents is the one server-sent event stream of the site: a retry
// hint, then a "snapshot" event with next's value at once and every
// interval, until the client goes away or a write fails. A HEAD request
// gets the headers only.
func serveEvents(w http.ResponseWriter, r *http.Request, interval time.Duration, log *slog.Logger, next func(now time.Time) any) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := fmt.Fprintf(w, "retry: %d\n\n", interval.Milliseconds()); err != nil {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		b, err := json.Marshal(next(time.Now()))
		if err != nil {
			log.Warn("encoding event", "path", r.URL.Path, "err", err)
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
