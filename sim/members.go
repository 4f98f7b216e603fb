package sim

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// This file is what both runners (Run in process, RunDocker as
// containers) share about a plan's nodes: how they are described
// (nodeSpec, built once from the plan by layoutNodes), how a node's
// record is filled as the run goes (member's methods) and how the
// records become Results (newResults, finishResults). A new role or a
// new NodeResult field is added here, once.

// nodeSpec describes one node of a plan, the same for every runner.
type nodeSpec struct {
	name    string // in the plan: group-i
	group   *Group
	index   int           // position among all the plan's nodes, from 0
	joinAt  time.Duration // after the plan's start
	leaveAt time.Duration // 0: stays
	link    hostSpec      // its access link
}

// layoutNodes names every node of the plan, in the plan's order, and
// gives it a join time, a leave time and a link: a group's nodes join
// evenly over join_span_s from join_s.
func layoutNodes(p *Plan) []nodeSpec {
	var out []nodeSpec
	for gi := range p.Groups {
		g := &p.Groups[gi]
		for i := range g.Count {
			idx := len(out)
			s := nodeSpec{
				name:   fmt.Sprintf("%s-%d", g.Name, i),
				group:  g,
				index:  idx,
				joinAt: seconds(g.joinS(i)),
				link: hostSpec{index: idx + 1, region: g.Region, upMbit: g.UpMbit, downMbit: g.DownMbit,
					latency: seconds(g.LatencyMS / 1000), seed: p.Seed},
			}
			if g.LeaveS > 0 {
				s.leaveAt = seconds(g.LeaveS)
			}
			out = append(out, s)
		}
	}
	return out
}

// joinS is when node i of g starts: the group's nodes join evenly over
// JoinSpanS from JoinS.
func (g *Group) joinS(i int) float64 {
	if g.Count > 1 {
		return g.JoinS + g.JoinSpanS*float64(i)/float64(g.Count-1)
	}
	return g.JoinS
}

// fetches reports whether the node fetches the content.
func (s *nodeSpec) fetches() bool { return IsFetcherRole(s.group.Role) }

// shares reports whether the node shares the content at the start
// (seeders, and byzantine nodes, which announce it and serve it corrupt).
func (s *nodeSpec) shares() bool {
	return s.group.Role == RoleSeeder || s.group.Role == RoleByzantine
}

// awaited reports whether the run waits for the node to finish: a
// fetcher fetching or a lookup node looking up.
func (s *nodeSpec) awaited() bool { return s.fetches() || s.group.Role == RoleLookup }

// member is one node of a run as both runners keep it: its description
// and its record. mu guards res and whatever the runner keeps beside it.
type member struct {
	nodeSpec
	mu  sync.Mutex
	res NodeResult
}

func (m *member) init(s nodeSpec) {
	m.nodeSpec = s
	m.res = NodeResult{ID: s.name, Group: s.group.Name, Role: s.group.Role}
}

// started records the node's peer ID once it runs.
func (m *member) started(peerID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.res.PeerID = peerID
}

// failed records the node's latest error.
func (m *member) failed(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.res.Error = err.Error()
}

// retried records a failed fetch that will be tried again.
func (m *member) retried(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.res.Error = err.Error()
	m.res.Retries++
}

// shared records that the node holds the content from the start, and
// bytesOK what the runner claims of its bytes: the docker runner records
// true for a seeder it handed the content's file, the in-process runner
// leaves it unset (as its results.json always had it).
func (m *member) shared(bytesOK bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.res.Completed, m.res.BytesOK = true, bytesOK
}

// fetched records a fetch that ended after took, its bytes not yet
// checked (see checkedLocked).
func (m *member) fetched(took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fetchedLocked(took)
}

func (m *member) fetchedLocked(took time.Duration) {
	m.res.Completed = true
	m.res.CompleteS = took.Seconds()
	m.res.Error = ""
}

// errContentDiffers is a fetcher's check failing on bytes that are not
// the content's.
var errContentDiffers = errors.New("the bytes read back differ from the content")

// checkedLocked checks a completed fetcher's bytes with check (nothing
// else is checked): a fetch that completed with the wrong bytes, or
// whose bytes could not be read back, does not count as complete.
func (m *member) checkedLocked(check func() (bool, error)) {
	if !m.fetches() || !m.res.Completed {
		return
	}
	ok, err := check()
	m.res.BytesOK = ok
	if !ok {
		m.res.Completed = false
		m.res.Error = fmt.Sprintf("content check failed: %v", err)
	}
}

// lookedUp records a DHT lookup that found a provider after took, over
// hops hops.
func (m *member) lookedUp(took time.Duration, hops int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := took.Seconds()
	m.res.Completed = true
	m.res.DHTLookupS, m.res.DHTHops = &s, &hops
}

// leftAtLocked records when the node left, in seconds from the start.
func (m *member) leftAtLocked(s float64) { m.res.LeftS = s }

// progress counts the awaited nodes and those done, with bytesDown the
// traffic of node i, into a Progress at simS.
func progress(simS float64, members []*member, bytesDown func(i int) int64) Progress {
	pr := Progress{SimS: simS}
	for i, m := range members {
		m.mu.Lock()
		if m.awaited() {
			pr.Fetchers++
			if m.res.Completed {
				pr.Completed++
			}
		}
		m.mu.Unlock()
		pr.BytesDown += bytesDown(i)
	}
	return pr
}

// newResults is the head of a run's Results, the same for both runners.
func newResults(p *Plan, mode, commit, root string, nodes int) *Results {
	return &Results{
		Plan: p.Name, PlanFile: p.File, Description: p.Description, Seed: p.Seed,
		Commit: commit, Mode: mode, GoVersion: runtime.Version(),
		FinishedAt: wallNow().UTC().Format(time.RFC3339),
		NodeCount:  nodes, ContentBytes: p.ContentBytes(), Root: root,
	}
}

// finishResults puts the members' records into res and evaluates the
// plan: peers in BytesPerPeer and a byzantine node's servedTo are named
// by node, the corrupt blocks each node was sent become its
// BlocksRejected, and, with creditUploads (a runner without wire
// counters), a node's BytesUp is what the others received from it.
func finishResults(p *Plan, res *Results, members []*member, creditUploads bool) {
	names := map[string]string{}
	for _, m := range members {
		if m.res.PeerID != "" {
			names[m.res.PeerID] = m.name
		}
	}
	nodes := make([]NodeResult, len(members))
	up := map[string]int64{}
	rejected := map[string]int64{}
	for i, m := range members {
		m.mu.Lock()
		nr := m.res
		m.mu.Unlock()
		nr.BytesPerPeer = byName(nr.BytesPerPeer, names)
		if nr.Slots != nil {
			su := *nr.Slots
			su.Holders = append([]SlotHolder(nil), su.Holders...)
			for j := range su.Holders {
				su.Holders[j].Peer = nameOr(names, su.Holders[j].Peer)
			}
			nr.Slots = &su
		}
		for name, b := range nr.BytesPerPeer {
			up[name] += b
		}
		for to, b := range byName(nr.servedTo, names) {
			if nr.CorruptTo == nil {
				nr.CorruptTo = map[string]int64{}
			}
			blocks := (b + blockSize - 1) / blockSize
			nr.CorruptTo[to] = blocks
			rejected[to] += blocks
		}
		nodes[i] = nr
	}
	for i := range nodes {
		nodes[i].BlocksRejected = rejected[nodes[i].ID]
		if creditUploads {
			nodes[i].BytesUp = up[nodes[i].ID]
		}
	}
	res.Nodes = append(res.Nodes, nodes...)
	summarize(p, res)
}

// byName is m with peer IDs replaced by node names (IDs of no node, and
// keys that are names already, stay); nil for an empty m.
func byName(m map[string]int64, names map[string]string) map[string]int64 {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]int64, len(m))
	for id, b := range m {
		out[nameOr(names, id)] += b
	}
	return out
}

func nameOr(m map[string]string, id string) string {
	if n, ok := m[id]; ok {
		return n
	}
	return id
}
