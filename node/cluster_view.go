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

// clusterCache keeps the last read of the cluster; one read at a time.
// Its zero value is ready to use.
type clusterCache struct {
	mu     sync.Mutex
	client *ipfscluster.Client
	read   time.Time
	pins   []api.ClusterPin
	err    error
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
	cc := &n.clusterView
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.client == nil {
		c, err := ipfscluster.New(addr, &http.Client{Timeout: clusterTimeout})
		if err != nil {
			return api.Cluster{RESTAddr: addr, Error: err.Error(), Pins: []api.ClusterPin{}}, err
		}
		cc.client = c
	}
	if now := time.Now(); cc.read.IsZero() || now.Sub(cc.read) >= clusterTTL {
		rctx, cancel := context.WithTimeout(ctx, clusterTimeout)
		pins, err := cc.client.Pins(rctx)
		cancel()
		if ctx.Err() == nil { // a caller that went away says nothing of the cluster
			cc.read, cc.err = now, err
			if err == nil {
				cc.pins = pins
			}
		} else if err != nil {
			return api.Cluster{RESTAddr: addr, Error: err.Error(), Pins: cc.pins}, err
		}
	}
	out := api.Cluster{RESTAddr: addr, Pins: cc.pins}
	if out.Pins == nil {
		out.Pins = []api.ClusterPin{}
	}
	if cc.err != nil {
		out.Error = cc.err.Error()
	}
	return out, cc.err
}
