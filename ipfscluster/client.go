// Package ipfscluster reads an IPFS Cluster peer's REST API (ipfs-cluster
// v1.1.6): the pinset with each pin's replication factors (GET
// /allocations) and each peer's status for each pin (GET /pins), joined
// into what the dashboard shows beside shoal's content table — the
// replication the cluster wants and the copies it holds.
//
// It declares the few fields it reads of the cluster's JSON itself rather
// than importing ipfs-cluster (a large dependency for two streams); its
// tests read answers recorded with the cluster's own types
// (internal/clustertest). It imports no other shoal package but api.
package ipfscluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/shoalnet/shoal/api"
)

// Limits on what is read from a cluster peer.
const (
	// MaxPins bounds the pins read from one stream.
	MaxPins = 1 << 17
	// maxBody bounds the bytes read from one stream.
	maxBody = 256 << 20
)

// Sentinel errors.
var (
	// ErrConfig marks an unusable REST address.
	ErrConfig = errors.New("ipfscluster: bad configuration")
	// ErrUnreachable wraps every failure to read the cluster: no answer,
	// an error status, or a body that is not the cluster's JSON.
	ErrUnreachable = errors.New("ipfscluster: cluster REST API unreachable")
)

// Client reads one cluster peer's REST API.
type Client struct {
	addr string
	hc   *http.Client
}

// CheckAddr reports whether addr is a HOST:PORT a client can use.
func CheckAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: cluster REST address %q is not HOST:PORT (such as 127.0.0.1:9094): %v", ErrConfig, addr, err)
	}
	if host == "" || port == "" || port == "0" {
		return fmt.Errorf("%w: cluster REST address %q needs a host and a port (such as 127.0.0.1:9094)", ErrConfig, addr)
	}
	return nil
}

// New returns a client of the REST API at addr (HOST:PORT, plain HTTP);
// hc carries the timeouts (nil: http.DefaultClient, so give ctx a
// deadline).
func New(addr string, hc *http.Client) (*Client, error) {
	if err := CheckAddr(addr); err != nil {
		return nil, err
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{addr: addr, hc: hc}, nil
}

// Addr is the REST address the client reads.
func (c *Client) Addr() string { return c.addr }

// pin is the part of the cluster's api.Pin (a line of GET /allocations)
// read here.
type pin struct {
	CID         string   `json:"cid"`
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Min         int      `json:"replication_factor_min"`
	Max         int      `json:"replication_factor_max"`
	Allocations []string `json:"allocations"`
}

// status is the part of the cluster's api.GlobalPinInfo (a line of GET
// /pins) read here.
type status struct {
	CID     string                `json:"cid"`
	Name    string                `json:"name"`
	PeerMap map[string]peerStatus `json:"peer_map"`
}

// peerStatus is the cluster's api.PinInfoShort.
type peerStatus struct {
	PeerName string `json:"peername"`
	Status   string `json:"status"`
	Error    string `json:"error"`
}

// Pins returns the cluster's data pins (not shards) with their
// replication factors and each peer's status, sorted by CID.
func (c *Client) Pins(ctx context.Context) ([]api.ClusterPin, error) {
	var pins []pin
	if err := c.stream(ctx, "/allocations?filter=pin", func(d *json.Decoder) error {
		var p pin
		if err := d.Decode(&p); err != nil {
			return err
		}
		pins = append(pins, p)
		return nil
	}); err != nil {
		return nil, err
	}
	statuses := map[string]status{}
	if err := c.stream(ctx, "/pins", func(d *json.Decoder) error {
		var s status
		if err := d.Decode(&s); err != nil {
			return err
		}
		statuses[s.CID] = s
		return nil
	}); err != nil {
		return nil, err
	}
	return join(pins, statuses), nil
}

// join puts each pin's statuses beside its factors.
func join(pins []pin, statuses map[string]status) []api.ClusterPin {
	out := make([]api.ClusterPin, 0, len(pins))
	for _, p := range pins {
		if p.CID == "" || (p.Type != "" && p.Type != "pin") {
			continue
		}
		cp := api.ClusterPin{CID: p.CID, Name: p.Name, ReplicationMin: p.Min, ReplicationMax: p.Max,
			Allocations: len(p.Allocations), Peers: []api.ClusterPeerStatus{}}
		st := statuses[p.CID]
		if cp.Name == "" {
			cp.Name = st.Name
		}
		for id, ps := range st.PeerMap {
			cp.Peers = append(cp.Peers, api.ClusterPeerStatus{Peer: id, Name: ps.PeerName, Status: ps.Status, Error: ps.Error})
			if ps.Status == "pinned" {
				cp.Pinned++
			}
		}
		sort.Slice(cp.Peers, func(i, j int) bool { return cp.Peers[i].Peer < cp.Peers[j].Peer })
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CID < out[j].CID })
	return out
}

// stream GETs path and hands each JSON value of the answer to item: the
// cluster streams one object per line, answers 204 for none, and reports
// a failure part way in the X-Stream-Error trailer.
func (c *Client) stream(ctx context.Context, path string, item func(*json.Decoder) error) error {
	url := "http://" + c.addr + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: GET %s: %v (is ipfs-cluster-service running with its REST API on %s?)", ErrUnreachable, url, err, c.addr)
	}
	defer func() { _ = resp.Body.Close() }()
	body := io.LimitReader(resp.Body, maxBody)
	switch resp.StatusCode {
	case http.StatusNoContent:
		return nil
	case http.StatusOK:
	default:
		return fmt.Errorf("%w: GET %s: %s%s", ErrUnreachable, url, resp.Status, errorMessage(body))
	}
	if err := decodeStream(body, item); err != nil {
		return fmt.Errorf("%w: GET %s: %v", ErrUnreachable, url, err)
	}
	if e := strings.TrimSpace(resp.Trailer.Get("X-Stream-Error")); e != "" {
		return fmt.Errorf("%w: GET %s: the cluster's stream failed: %s", ErrUnreachable, url, e)
	}
	return nil
}

// decodeStream reads JSON values until the end, at most MaxPins.
func decodeStream(r io.Reader, item func(*json.Decoder) error) error {
	d := json.NewDecoder(r)
	for n := 0; ; n++ {
		err := item(d)
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return fmt.Errorf("answer is not the cluster's JSON: %v", err)
		case n == MaxPins:
			return fmt.Errorf("more than %d pins in one answer", MaxPins)
		}
	}
}

// errorMessage is ": message" of the cluster's error body ({"code": ...,
// "message": ...}), or "" when it is not one.
func errorMessage(r io.Reader) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.NewDecoder(io.LimitReader(r, 1<<16)).Decode(&e) != nil || e.Message == "" {
		return ""
	}
	return ": " + e.Message
}
