package api

import "context"

// Swarm is GET /api/v1/swarm: the swarm view.
func (c *Client) Swarm(ctx context.Context) (Swarm, error) {
	var sw Swarm
	err := c.get(ctx, "swarm", &sw)
	return sw, err
}

// Cluster is GET /api/v1/cluster: the IPFS Cluster peer's view of the
// pins. Without a cluster configured the error is a not-found *Error;
// when the cluster does not answer, an *Error of Status 502.
func (c *Client) Cluster(ctx context.Context) (Cluster, error) {
	var cl Cluster
	err := c.get(ctx, "cluster", &cl)
	return cl, err
}
