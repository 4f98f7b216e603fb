package node

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/ipfscluster"
)

// The IPFS Cluster peer's view of the pins (GET /api/v1/cluster and the
// dashboard's content table), read from its REST API (package
// ipfscluster) when cluster.rest_addr is set.

// ErrNoCluster: no IPFS Cluster peer is configured (cluster.rest_addr).
var ErrNoCluster = errors.New("node: no IPFS Cluster peer configured: set cluster.rest_addr (such as 127.0.0.1:9094) in config.toml")

// ErrClusterUnreachable is ipfscluster.ErrUnreachable: the cluster's REST
// API did not answer as a cluster does.
var ErrClusterUnreachable = ipfscluster.ErrUnreachable

const (
	// clusterTTL is how long one read of the cluster serves: every open
	// dashboard asks each second, the pinset changes on a human scale.
	clusterTTL = 5 * time.Second
	// clusterTimeout bounds one read of the cluster.
	clusterTimeout = 3 * time.Second
)

// clusterCache keeps the last read of the cluster. One read runs at a
// time (readMu); while one runs, callers get the last read's answer
// rather than wait for a cluster that may take its whole timeout, except
// before the first read has ended. Its zero value is ready to use.
type clusterCache struct {
	readMu sync.Mutex // held by the one read in flight

	mu     sync.Mutex // guards what follows; never held across I/O
	client *ipfscluster.Client
	read   time.Time // when the last read ended; zero before the first
	pins   []api.ClusterPin
	err    error
}

// last returns the last read's answer, and whether it is fresh (younger
// than clusterTTL) and whether there was one.
func (cc *clusterCache) last(addr string, now time.Time) (out api.Cluster, fresh, ok bool, err error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	out = api.Cluster{RESTAddr: addr, Pins: cc.pins}
	if out.Pins == nil {
		out.Pins = []api.ClusterPin{}
	}
	if cc.err != nil {
		out.Error = cc.err.Error()
	}
	return out, !cc.read.IsZero() && now.Sub(cc.read) < clusterTTL, !cc.read.IsZero(), cc.err
}

// Cluster returns the cluster's pins with their wanted and held
// replication. Without cluster.rest_addr it returns ErrNoCluster; when
// the cluster cannot be read, the error wraps ErrClusterUnreachable and
// the answer still carries the pins of the last good read.
func (n *Node) Cluster(ctx context.Context) (api.Cluster, error) {
	addr := n.cfg.Cluster.RESTAddr
	if addr == "" {
		return api.Cluster{}, ErrNoCluster
	}
	cc := &n.views.cluster
	if out, fresh, _, err := cc.last(addr, time.Now()); fresh {
		return out, err
	}
	if !cc.readMu.TryLock() {
		if out, _, ok, err := cc.last(addr, time.Now()); ok {
			return out, err // a read is on its way; this one is the latest there is
		}
		cc.readMu.Lock() // the first read: wait for it
	}
	defer cc.readMu.Unlock()
	if out, fresh, _, err := cc.last(addr, time.Now()); fresh {
		return out, err // read while this caller waited
	}
	cc.mu.Lock()
	if cc.client == nil {
		c, err := ipfscluster.New(addr, &http.Client{Timeout: clusterTimeout})
		if err != nil {
			cc.mu.Unlock()
			return api.Cluster{RESTAddr: addr, Error: err.Error(), Pins: []api.ClusterPin{}}, err
		}
		cc.client = c
	}
	client := cc.client
	cc.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	pins, err := client.Pins(rctx)
	cancel()
	if ctx.Err() != nil && err != nil {
		// The caller went away: that says nothing of the cluster.
		out, _, _, _ := cc.last(addr, time.Now())
		return out, err
	}
	cc.mu.Lock()
	cc.read, cc.err = time.Now(), err
	if err == nil {
		cc.pins = pins
	}
	cc.mu.Unlock()
	out, _, _, err := cc.last(addr, time.Now())
	return out, err
}
