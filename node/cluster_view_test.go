package node

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalnet/shoal/internal/clustertest"
)

// TestClusterCache: one read of the cluster serves callers for
// clusterTTL; a stale answer is read again, and while that read waits
// on a slow cluster other callers get the last answer at once instead
// of waiting; a failed read keeps the last good pins beside the error.
func TestClusterCache(t *testing.T) {
	var requests atomic.Int32
	block := make(chan struct{})
	blocking := atomic.Bool{}
	arrived := make(chan struct{}, 4)
	failing := atomic.Bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if blocking.Load() {
			arrived <- struct{}{}
			<-block
		}
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"code":500,"message":"the consensus is not ready"}`))
			return
		}
		_, _ = w.Write([]byte(clustertest.Recorded(t, r.URL.Path, "")))
	}))
	defer srv.Close()
	n := &Node{cfg: Config{Cluster: ClusterConfig{RESTAddr: strings.TrimPrefix(srv.URL, "http://")}}}
	ctx := context.Background()

	c, err := n.Cluster(ctx)
	if err != nil || len(c.Pins) != 2 || requests.Load() != 2 {
		t.Fatalf("first read: %+v, %v after %d requests", c, err, requests.Load())
	}
	if c, err = n.Cluster(ctx); err != nil || len(c.Pins) != 2 || requests.Load() != 2 {
		t.Fatalf("a fresh answer was read again: %d requests, %v", requests.Load(), err)
	}

	stale := func() {
		n.views.cluster.mu.Lock()
		n.views.cluster.read = time.Now().Add(-clusterTTL)
		n.views.cluster.mu.Unlock()
	}
	stale()
	blocking.Store(true)
	done := make(chan error, 1)
	go func() { _, err := n.Cluster(ctx); done <- err }()
	<-arrived // the re-read waits on the cluster
	c, err = n.Cluster(ctx)
	if err != nil || len(c.Pins) != 2 {
		t.Fatalf("while a read is in flight: %+v, %v; want the last answer", c, err)
	}
	blocking.Store(false)
	close(block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	stale()
	failing.Store(true)
	c, err = n.Cluster(ctx)
	if !errors.Is(err, ErrClusterUnreachable) || !strings.Contains(c.Error, "the consensus is not ready") || len(c.Pins) != 2 {
		t.Fatalf("failed read: %+v, %v; want the error and the last good pins", c, err)
	}

	if _, err := (&Node{}).Cluster(ctx); !errors.Is(err, ErrNoCluster) {
		t.Fatalf("no cluster configured: %v", err)
	}
}
