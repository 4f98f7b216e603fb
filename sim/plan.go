package sim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrPlan wraps every problem with a plan file.
var ErrPlan = errors.New("sim: bad plan")

// Roles a group can play.
const (
	RoleSeeder     = "seeder"      // holds the content from the start
	RoleLeecher    = "leecher"     // fetches the content when it joins
	RoleLateJoiner = "late-joiner" // a leecher that joins after the start
	RoleChurner    = "churner"     // a leecher that leaves before it may be done
	RoleByzantine  = "byzantine"   // announces the content, serves corrupt blocks
	RoleLookup     = "lookup"      // only looks the content's providers up in the DHT
)

// Transports a plan can run its nodes on.
const (
	TransportQUIC  = "quic"
	TransportLight = "light"
)

// Plan is one simulation, as written in a TOML file under sim/plans.
type Plan struct {
	Name        string  `toml:"name"`
	Description string  `toml:"description"`
	Seed        uint64  `toml:"seed"`
	ContentMiB  float64 `toml:"content_mib"`
	// TimeoutS bounds the run in simulated seconds after the start.
	TimeoutS float64 `toml:"timeout_s"`
	// SettleS is simulated time given to DHT bootstrap and the seeders'
	// announcements before the clock of the plan starts.
	SettleS float64 `toml:"settle_s"`
	// SampleS is how often traffic is sampled for the bandwidth plot.
	SampleS float64 `toml:"sample_s"`
	// Transport is what the nodes' streams run on: "quic" (the default:
	// QUIC and TLS over simulated UDP, packet by packet) or "light"
	// (in-process streams through the same shaped links, without
	// encryption: the same node code at a fraction of the CPU and
	// memory; `shoal sim --light` sets it too).
	Transport string `toml:"transport"`

	Groups    []Group        `toml:"group"`
	Latency   []RegionPair   `toml:"latency"`
	Partition *PartitionSpec `toml:"partition"`
	Expect    []Expectation  `toml:"expect"`

	// File is where the plan was read from, for error messages.
	File string `toml:"-"`
}

// Group is a set of nodes with one role and one link class.
type Group struct {
	Name      string  `toml:"name"`
	Role      string  `toml:"role"`
	Count     int     `toml:"count"`
	Region    string  `toml:"region"`
	UpMbit    float64 `toml:"up_mbit"`
	DownMbit  float64 `toml:"down_mbit"`
	LatencyMS float64 `toml:"latency_ms"` // one-way, of the node's own access link
	JoinS     float64 `toml:"join_s"`     // when the nodes start, after the plan's start
	JoinSpanS float64 `toml:"join_span_s"`
	LeaveS    float64 `toml:"leave_s"` // 0: never leaves
}

// RegionPair is the one-way latency added between two regions.
type RegionPair struct {
	A  string  `toml:"a"`
	B  string  `toml:"b"`
	MS float64 `toml:"ms"`
}

// PartitionSpec splits the swarm: the named groups on one side, every
// other group on the other, from AtS until HealS.
type PartitionSpec struct {
	AtS   float64  `toml:"at_s"`
	HealS float64  `toml:"heal_s"`
	SideA []string `toml:"side_a"`
}

// Expectation is one pass/fail check; exactly one field is set. Group,
// when set, limits the check to one group.
type Expectation struct {
	Group                  string   `toml:"group"`
	AllComplete            *bool    `toml:"all_complete"`
	P50OverTminMax         *float64 `toml:"p50_over_tmin_max"`
	P99OverTminMax         *float64 `toml:"p99_over_tmin_max"`
	CompleteSMax           *float64 `toml:"complete_s_max"`
	ThroughputFracUplink   *float64 `toml:"leecher_throughput_min_fraction_of_seeder_uplink"`
	ByzantineCutOff        *bool    `toml:"byzantine_cut_off"`
	ByzantineMaxBlocksEach *int     `toml:"byzantine_max_blocks_per_leecher"`
	DHTMedianHopsMax       *float64 `toml:"dht_median_hops_max"`
	DHTLookupP50MaxS       *float64 `toml:"dht_lookup_p50_max_s"`
	PartitionHeals         *bool    `toml:"partition_heals"`
}

// LoadPlan reads and validates a plan file.
func LoadPlan(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	return ParsePlan(path, b)
}

// ParsePlan decodes and validates a plan; name is used in errors.
func ParsePlan(name string, b []byte) (*Plan, error) {
	p := &Plan{SettleS: 5, SampleS: 1, TimeoutS: 600}
	md, err := toml.Decode(string(b), p)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: %s line %d: %s", ErrPlan, name, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrPlan, name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%w: %s: unknown key %s (see sim/doc.go for the plan format)", ErrPlan, name, strings.Join(keys, ", "))
	}
	p.File = name
	if p.Name == "" {
		p.Name = strings.TrimSuffix(filepath.Base(name), ".toml")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Validate reports the first thing wrong with the plan, naming the file,
// the key and what to do.
func (p *Plan) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s: %s", ErrPlan, p.File, key, fmt.Sprintf(format, args...))
	}
	if p.ContentMiB <= 0 || p.ContentMiB > 4096 {
		return bad("content_mib", "is %g: give the content size in MiB, above 0 and at most 4096", p.ContentMiB)
	}
	if p.TimeoutS <= 0 {
		return bad("timeout_s", "is %g: give the longest simulated run in seconds, above 0", p.TimeoutS)
	}
	if p.SettleS < 0 || p.SampleS <= 0 {
		return bad("settle_s/sample_s", "settle_s must be >= 0 and sample_s > 0")
	}
	switch p.Transport {
	case "", TransportQUIC, TransportLight:
	default:
		return bad("transport", "is %q: use quic (full nodes: QUIC and TLS over simulated UDP) or light (in-process streams on the same shaped links)", p.Transport)
	}
	if len(p.Groups) == 0 {
		return bad("group", "the plan has no [[group]]: add at least a seeder and a leecher group")
	}
	names := map[string]bool{}
	seeders, total := 0, 0
	for i := range p.Groups {
		g := &p.Groups[i]
		key := fmt.Sprintf("group[%d]", i)
		if g.Name == "" {
			g.Name = g.Role
		}
		if names[g.Name] {
			return bad(key+".name", "%q is used by two groups: give each group its own name", g.Name)
		}
		names[g.Name] = true
		if err := p.validateGroup(key, g); err != nil {
			return err
		}
		if g.Role == RoleSeeder {
			seeders += g.Count
		}
		total += g.Count
	}
	if seeders == 0 {
		return bad("group", "no group has role = %q: someone must hold the content", RoleSeeder)
	}
	if total > 5000 {
		return bad("group.count", "the groups add up to %d nodes: at most 5000", total)
	}
	for i, l := range p.Latency {
		if l.A == "" || l.B == "" || l.MS < 0 {
			return bad(fmt.Sprintf("latency[%d]", i), "give a, b (region names) and ms >= 0")
		}
	}
	if pt := p.Partition; pt != nil {
		if pt.AtS < 0 || pt.HealS <= pt.AtS {
			return bad("partition", "at_s (%g) must be >= 0 and heal_s (%g) after it", pt.AtS, pt.HealS)
		}
		if len(pt.SideA) == 0 {
			return bad("partition.side_a", "name the groups on one side of the split")
		}
		for _, n := range pt.SideA {
			if !names[n] {
				return bad("partition.side_a", "%q is not a group name (groups: %s)", n, strings.Join(sortedKeys(names), ", "))
			}
		}
	}
	for i, e := range p.Expect {
		if err := e.validate(); err != nil {
			return bad(fmt.Sprintf("expect[%d]", i), "%v", err)
		}
		if e.Group != "" && !names[e.Group] {
			return bad(fmt.Sprintf("expect[%d].group", i), "%q is not a group name (groups: %s)", e.Group, strings.Join(sortedKeys(names), ", "))
		}
	}
	return nil
}

func (p *Plan) validateGroup(key string, g *Group) error {
	bad := func(k, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s.%s: %s", ErrPlan, p.File, key, k, fmt.Sprintf(format, args...))
	}
	switch g.Role {
	case RoleSeeder, RoleLeecher, RoleLateJoiner, RoleChurner, RoleByzantine, RoleLookup:
	default:
		return bad("role", "is %q: use one of seeder, leecher, late-joiner, churner, byzantine, lookup", g.Role)
	}
	if g.Count <= 0 {
		return bad("count", "is %d: give the number of nodes in the group, at least 1", g.Count)
	}
	if g.UpMbit <= 0 || g.DownMbit <= 0 || g.UpMbit > 100000 || g.DownMbit > 100000 {
		return bad("up_mbit/down_mbit", "are %g/%g: give both link rates in Mbit/s, above 0 and at most 100000", g.UpMbit, g.DownMbit)
	}
	if g.LatencyMS < 0 || g.JoinS < 0 || g.JoinSpanS < 0 || g.LeaveS < 0 {
		return bad("latency_ms/join_s/join_span_s/leave_s", "must not be negative")
	}
	if g.LeaveS > 0 && g.LeaveS <= g.JoinS+g.JoinSpanS {
		return bad("leave_s", "is %g: a group must leave after it has joined (join_s + join_span_s = %g)", g.LeaveS, g.JoinS+g.JoinSpanS)
	}
	if g.Role == RoleChurner && g.LeaveS == 0 {
		return bad("leave_s", "a churner group must leave: set leave_s")
	}
	return nil
}

func (e Expectation) validate() error {
	n := 0
	for _, set := range []bool{e.AllComplete != nil, e.P50OverTminMax != nil, e.P99OverTminMax != nil,
		e.CompleteSMax != nil, e.ThroughputFracUplink != nil, e.ByzantineCutOff != nil,
		e.DHTMedianHopsMax != nil, e.DHTLookupP50MaxS != nil, e.PartitionHeals != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("has %d checks: give exactly one per [[expect]] (e.g. all_complete = true)", n)
	}
	if e.ByzantineMaxBlocksEach != nil && e.ByzantineCutOff == nil {
		return errors.New("byzantine_max_blocks_per_leecher goes with byzantine_cut_off = true")
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ContentBytes is the content size in bytes.
func (p *Plan) ContentBytes() int64 { return int64(p.ContentMiB * (1 << 20)) }

// Scale returns a copy of the plan with every group holding at most
// maxPerGroup nodes, the content at most maxMiB, at most 2 s to settle (a
// few nodes need no more) and at most 180 s to finish; tests use it to
// run the shipped plans small.
func (p *Plan) Scale(maxPerGroup int, maxMiB float64) *Plan {
	q := *p
	q.Groups = append([]Group(nil), p.Groups...)
	for i := range q.Groups {
		if q.Groups[i].Count > maxPerGroup {
			q.Groups[i].Count = maxPerGroup
		}
	}
	if q.ContentMiB > maxMiB {
		q.ContentMiB = maxMiB
	}
	q.SettleS = min(q.SettleS, 2)
	q.TimeoutS = min(q.TimeoutS, 180)
	return &q
}
