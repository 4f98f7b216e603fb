package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// Results is what a run wrote to results.json.
type Results struct {
	Plan        string  `json:"plan"`
	PlanFile    string  `json:"plan_file"`
	Description string  `json:"description,omitempty"`
	Seed        uint64  `json:"seed"`
	Commit      string  `json:"commit,omitempty"`
	Mode        string  `json:"mode"` // "virtual" or "real"
	GoVersion   string  `json:"go_version"`
	FinishedAt  string  `json:"finished_at"`
	WallS       float64 `json:"wall_s"`
	SimulatedS  float64 `json:"simulated_s"`
	// Transport is what the nodes ran on: "quic" (full nodes) or "light"
	// (Plan.Transport); empty for containers.
	Transport string `json:"transport,omitempty"`
	// HostLoad is, for a docker run (real time, so the machine's load
	// shows in the results), the host's 1-minute load average when the
	// plan's clock started and when the last fetch ended.
	HostLoad     []float64 `json:"host_load,omitempty"`
	PeakMemBytes uint64    `json:"peak_mem_bytes"` // heap + stacks in use, peak of the samples
	MemPerNode   uint64    `json:"mem_per_node_bytes"`
	NodeCount    int       `json:"node_count"`
	ContentBytes int64     `json:"content_bytes"`
	Root         string    `json:"root"`

	// TMinS is the Kumar–Ross minimum distribution time for the plan's
	// seeders and fetchers; nil when the plan has no fetchers.
	TMinS       *float64 `json:"t_min_s"`
	P50S        *float64 `json:"p50_s"`
	P99S        *float64 `json:"p99_s"`
	P50OverTmin *float64 `json:"p50_over_t_min"`
	P99OverTmin *float64 `json:"p99_over_t_min"`
	// BlockBoundP50S and BlockBoundP99S are lower bounds on the p50 and
	// p99 completion times once blocks are whole (BlockBound); nil where
	// the plan's fetchers do not all start at t = 0.
	BlockBoundP50S *float64 `json:"block_bound_p50_s,omitempty"`
	BlockBoundP99S *float64 `json:"block_bound_p99_s,omitempty"`

	// Swarm is how the content got around (seeders' copies, wire cost,
	// top flows).
	Swarm *Swarm `json:"swarm"`

	Pass         bool           `json:"pass"`
	Expectations []ExpectResult `json:"expectations"`
	Nodes        []NodeResult   `json:"nodes"`
	Samples      []Sample       `json:"samples"`
}

// NodeResult is one node's record.
type NodeResult struct {
	ID        string  `json:"id"`
	PeerID    string  `json:"peer_id"`
	Group     string  `json:"group"`
	Role      string  `json:"role"`
	Completed bool    `json:"completed"`
	BytesOK   bool    `json:"bytes_ok,omitempty"`
	CompleteS float64 `json:"complete_s,omitempty"` // from the start of its fetch
	// FetchStartS is when its fetch started, from the plan's start: set
	// by the docker runner, whose containers take real seconds to start.
	FetchStartS float64 `json:"fetch_start_s,omitempty"`
	LeftS       float64 `json:"left_s,omitempty"`
	Retries     int     `json:"retries,omitempty"`
	Error       string  `json:"error,omitempty"`
	// BytesUp and BytesDown are wire bytes (QUIC packets) of the node's link.
	BytesUp   int64 `json:"bytes_up"`
	BytesDown int64 `json:"bytes_down"`
	// BytesPerPeer is block bytes received from each remote node.
	BytesPerPeer   map[string]int64 `json:"bytes_per_peer,omitempty"`
	BlocksRejected int64            `json:"blocks_rejected"`
	CorruptServed  int64            `json:"corrupt_blocks_served,omitempty"`
	// CorruptTo is, for a byzantine node, the blocks it sent to each node
	// (block bytes sent ÷ 1 MiB, rounded up: every leaf but the last is
	// 1 MiB).
	CorruptTo  map[string]int64 `json:"corrupt_blocks_to,omitempty"`
	DHTLookupS *float64         `json:"dht_lookup_s"`
	DHTHops    *int             `json:"dht_hops"`
	// PeakMemBytes is, for a container, the peak RSS of its daemon
	// (the in-process runner has one process: see Results.PeakMemBytes).
	PeakMemBytes uint64 `json:"peak_mem_bytes,omitempty"`
	// DelayLate is, for a container, how much longer than its link's
	// latency the runner held its packets (docker runner: the NFQUEUE
	// delayer runs on the host, whose busy CPU adds to the plan's
	// latency).
	DelayLate *DelayLate `json:"delay_late,omitempty"`
	// Upload splits BytesUp by protocol; Slots is how the node used its
	// upload slots (both in-process runner only).
	Upload *UploadSplit `json:"upload,omitempty"`
	Slots  *SlotUse     `json:"slots,omitempty"`
	// Protocols is the node's stream bytes up and down by libp2p
	// protocol ID ("(negotiation)": multistream-select on inbound streams
	// before their protocol is known); BytesUp and BytesDown less their
	// sums are the transport's own bytes (in-process runner only).
	Protocols map[string]ProtoBytes `json:"protocols,omitempty"`

	servedTo map[string]int64 // byzantine: block bytes sent to each node
}

// ProtoBytes is stream bytes one way and the other.
type ProtoBytes struct {
	Up   int64 `json:"up"`
	Down int64 `json:"down"`
}

// negotiationProtocol names the stream bytes read and written before a
// stream's protocol was set.
const negotiationProtocol = "(negotiation)"

// DelayLate is how many packets a container's delayer let go, and by
// how many milliseconds later than their latency, on average and at most.
type DelayLate struct {
	Packets int64   `json:"packets"`
	MeanMS  float64 `json:"mean_ms"`
	MaxMS   float64 `json:"max_ms"`
}

// Sample is everyone's cumulative wire bytes at one moment.
type Sample struct {
	T    float64 `json:"t_s"`
	Up   []int64 `json:"up"`   // per node, in the order of nodes
	Down []int64 `json:"down"` // per node
}

// ExpectResult is one checked expectation.
type ExpectResult struct {
	Check string `json:"check"`
	Group string `json:"group,omitempty"`
	Want  string `json:"want"`
	Got   string `json:"got"`
	Pass  bool   `json:"pass"`
}

// blockSize is the chunk size of the content (UnixFS 1 MiB chunks).
const blockSize = 1 << 20

func (r *run) results() *Results {
	res := newResults(r.plan, r.opts.Mode, r.opts.Commit, r.root.String(), len(r.nodes))
	res.PeakMemBytes, res.Samples = r.peakMem, r.samples
	res.Transport = TransportQUIC
	if r.light() {
		res.Transport = TransportLight
	}
	if len(r.nodes) > 0 {
		res.MemPerNode = r.peakMem / uint64(len(r.nodes))
	}
	finishResults(r.plan, res, r.members, false)
	return res
}

// summarize fills in the bound, the percentiles and the expectations from
// res.Nodes.
func summarize(p *Plan, res *Results) {
	res.TMinS = TMin(p)
	res.BlockBoundP50S, res.BlockBoundP99S = BlockBound(p, 0.5), BlockBound(p, 0.99)
	times := completionTimes(res.Nodes, "")
	res.P50S, res.P99S = percentile(times, 0.5), percentile(times, 0.99)
	if res.TMinS != nil {
		res.P50OverTmin, res.P99OverTmin = ratio(res.P50S, *res.TMinS), ratio(res.P99S, *res.TMinS)
	}
	res.Swarm = res.swarm()
	res.Pass = true
	for _, e := range p.Expect {
		er := evaluate(p, res, e)
		res.Expectations = append(res.Expectations, er)
		res.Pass = res.Pass && er.Pass
	}
}

// IsFetcherRole reports whether nodes of the role fetch the content.
func IsFetcherRole(role string) bool {
	return role == RoleLeecher || role == RoleLateJoiner || role == RoleChurner
}

// TMin is the Kumar–Ross minimum distribution time of the plan's content
// from its seeders to its fetchers, in seconds:
//
//	T_min = max(F/u_s, F/d_min, N·F/(u_s + Σu_i))
//
// F the content size, u_s the seeders' summed uplink, d_min the slowest
// fetcher's downlink, N the number of fetchers and u_i their uplinks.
// Byzantine and lookup nodes are left out. Nil without fetchers.
func TMin(p *Plan) *float64 {
	f := float64(p.ContentBytes()) * 8 // bits, as the links are in bit/s
	var us, sumUI, dmin float64
	n := 0
	dmin = math.Inf(1)
	for _, g := range p.Groups {
		switch {
		case g.Role == RoleSeeder:
			us += float64(g.Count) * g.UpMbit * 1e6
		case IsFetcherRole(g.Role):
			n += g.Count
			sumUI += float64(g.Count) * g.UpMbit * 1e6
			dmin = min(dmin, g.DownMbit*1e6)
		}
	}
	if n == 0 || us == 0 {
		return nil
	}
	t := max(f/us, f/dmin, float64(n)*f/(us+sumUI))
	return &t
}

// BlockBound is a lower bound, in seconds, on the time by which the
// fraction q of the plan's fetchers (nearest rank, as percentile) can have
// the whole content, for any schedule, once a node may pass a block on
// only after it holds all of it (blockSize bytes; a block is checked
// against its CID before anyone serves it). T_min ignores that: it lets
// every uplink work from t = 0, while here a fetcher's uplink joins only
// after its first whole block.
//
// Upload capacity C(t) starts at the seeders' summed uplink u_s; a
// fetcher adds at most u_max (the largest fetcher uplink) when it
// completes a block, which takes blockSize bits of what C delivered, so
// dC/dt ≤ C·u_max/blockSize and C(t) ≤ min(u_s·e^(t·u_max/blockSize),
// u_s + Σu_i). The first m = ⌈qN⌉ finishers need m·F bits through at
// most the m largest downlinks D_m, at rate ≤ min(C(t), D_m); and the
// m-th of them needs at least F over the m-th largest downlink. Nil when
// some fetcher does not start at t = 0 (late joiners, churners, a join_s)
// or there is no seeder or fetcher.
func BlockBound(p *Plan, q float64) *float64 {
	f := float64(p.ContentBytes()) * 8
	var us, sumUI, umax float64
	var downs []float64
	for _, g := range p.Groups {
		switch {
		case g.Role == RoleSeeder:
			us += float64(g.Count) * g.UpMbit * 1e6
		case g.Role == RoleLeecher && g.JoinS == 0 && g.JoinSpanS == 0:
			sumUI += float64(g.Count) * g.UpMbit * 1e6
			umax = max(umax, g.UpMbit*1e6)
			for range g.Count {
				downs = append(downs, g.DownMbit*1e6)
			}
		case IsFetcherRole(g.Role):
			return nil
		}
	}
	n := len(downs)
	if n == 0 || us == 0 || f == 0 {
		return nil
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(downs)))
	m := min(n, max(1, int(math.Ceil(q*float64(n)))))
	var dm float64
	for _, d := range downs[:m] {
		dm += d
	}
	need := float64(m) * f
	capacity := min(us+sumUI, dm)
	var t float64
	switch a := umax / (blockSize * 8); {
	case capacity <= us || a == 0:
		t = need / capacity
	case (capacity-us)/a >= need:
		t = math.Log1p(a*need/us) / a
	default:
		grow := math.Log(capacity/us) / a
		t = grow + (need-(capacity-us)/a)/capacity
	}
	t = max(t, f/downs[m-1])
	return &t
}

// completionTimes lists the fetchers' completion times (of one group, or
// all when group is ""); a fetcher that did not complete counts as +Inf.
func completionTimes(nodes []NodeResult, group string) []float64 {
	var out []float64
	for _, n := range nodes {
		if !IsFetcherRole(n.Role) || (group != "" && n.Group != group) {
			continue
		}
		if n.Role == RoleChurner && n.LeftS > 0 && !n.Completed {
			continue // left before it could finish: not a failure
		}
		if n.Completed {
			out = append(out, n.CompleteS)
		} else {
			out = append(out, math.Inf(1))
		}
	}
	sort.Float64s(out)
	return out
}

// percentile is the nearest-rank percentile; nil for no values or when it
// falls on a fetcher that never completed.
func percentile(sorted []float64, q float64) *float64 {
	if len(sorted) == 0 {
		return nil
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	v := sorted[i]
	if math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func ratio(v *float64, d float64) *float64 {
	if v == nil || d <= 0 {
		return nil
	}
	r := *v / d
	return &r
}

// WriteJSON writes results.json into dir.
func (res *Results) WriteJSON(dir string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "results.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("sim: writing %s: %w", path, err)
	}
	return nil
}
