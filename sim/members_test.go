package sim

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const layoutPlan = `
name = "layout"
seed = 7
content_mib = 1
[[group]]
name = "s"
role = "seeder"
count = 1
up_mbit = 20
down_mbit = 30
latency_ms = 10
region = "eu"
[[group]]
name = "l"
role = "late-joiner"
count = 3
up_mbit = 5
down_mbit = 50
join_s = 2
join_span_s = 4
[[group]]
name = "c"
role = "churner"
count = 2
up_mbit = 5
down_mbit = 50
join_s = 1
leave_s = 9
[[group]]
name = "dht"
role = "lookup"
count = 1
up_mbit = 5
down_mbit = 5
[[expect]]
all_complete = true
`

// TestLayoutNodes: one description of a plan's nodes — names, order,
// roles, join and leave times, links — and both runners lay their nodes
// out through it.
func TestLayoutNodes(t *testing.T) {
	p, err := ParsePlan("layout.toml", []byte(layoutPlan))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, group, role string
		join, leave       time.Duration
		fetches, shares   bool
		awaited           bool
	}{
		{"s-0", "s", RoleSeeder, 0, 0, false, true, false},
		{"l-0", "l", RoleLateJoiner, 2 * time.Second, 0, true, false, true},
		{"l-1", "l", RoleLateJoiner, 4 * time.Second, 0, true, false, true},
		{"l-2", "l", RoleLateJoiner, 6 * time.Second, 0, true, false, true},
		{"c-0", "c", RoleChurner, time.Second, 9 * time.Second, true, false, true},
		{"c-1", "c", RoleChurner, time.Second, 9 * time.Second, true, false, true},
		{"dht-0", "dht", RoleLookup, 0, 0, false, false, true},
	}
	specs := layoutNodes(p)
	if len(specs) != len(want) {
		t.Fatalf("%d nodes, want %d", len(specs), len(want))
	}
	for i, w := range want {
		s := specs[i]
		if s.name != w.name || s.group.Name != w.group || s.group.Role != w.role || s.index != i {
			t.Errorf("node %d: %s of %s (%s) at %d, want %s of %s (%s)", i, s.name, s.group.Name, s.group.Role, s.index, w.name, w.group, w.role)
		}
		if s.joinAt != w.join || s.leaveAt != w.leave {
			t.Errorf("%s: joins %v, leaves %v; want %v, %v", s.name, s.joinAt, s.leaveAt, w.join, w.leave)
		}
		if s.fetches() != w.fetches || s.shares() != w.shares || s.awaited() != w.awaited {
			t.Errorf("%s: fetches %v shares %v awaited %v; want %v %v %v", s.name, s.fetches(), s.shares(), s.awaited(), w.fetches, w.shares, w.awaited)
		}
		if s.link.index != i+1 || s.link.upMbit != s.group.UpMbit || s.link.downMbit != s.group.DownMbit || s.link.seed != 7 {
			t.Errorf("%s: link %+v", s.name, s.link)
		}
	}
	if l := specs[0].link; l.region != "eu" || l.latency != 10*time.Millisecond {
		t.Errorf("s-0: link region %q latency %v, want eu, 10ms", l.region, l.latency)
	}

	// Both runners' nodes are these, each with a fresh record.
	r := &run{plan: p}
	r.layout()
	d := &dockerRun{plan: p, prefix: "shoalsim-x"}
	d.layout()
	for name, ms := range map[string][]*member{"in-process": r.members, "docker": d.members} {
		if len(ms) != len(specs) {
			t.Fatalf("%s runner: %d nodes, want %d", name, len(ms), len(specs))
		}
		for i, m := range ms {
			if m.nodeSpec != specs[i] {
				t.Errorf("%s runner: node %d is %+v, want %+v", name, i, m.nodeSpec, specs[i])
			}
			if m.res.ID != specs[i].name || m.res.Group != specs[i].group.Name || m.res.Role != specs[i].group.Role {
				t.Errorf("%s runner: %s's record starts as %+v", name, specs[i].name, m.res)
			}
		}
	}
	if r.nodes[2].name != "l-1" || &r.nodes[2].member != r.members[2] {
		t.Errorf("in-process runner: nodes and members out of step")
	}
	if d.nodes[4].container != "shoalsim-x-c-0" || &d.nodes[4].member != d.members[4] {
		t.Errorf("docker runner: node 4 is container %q", d.nodes[4].container)
	}
}

// TestFinishResults: records filled through member's methods become
// Results one way: a fetch whose bytes fail their check is not complete,
// peers are named by node, corrupt blocks are charged to their
// recipients, and uploads are credited only for a runner without wire
// counters.
func TestFinishResults(t *testing.T) {
	p, err := ParsePlan("t.toml", []byte(strings.Replace(goodPlan, "count = 4", "count = 3", 1)+`
[[group]]
name = "b"
role = "byzantine"
count = 1
up_mbit = 10
down_mbit = 10
`))
	if err != nil {
		t.Fatal(err)
	}
	build := func() []*member {
		var ms []*member
		for _, s := range layoutNodes(p) {
			m := &member{}
			m.init(s)
			m.started("id-" + s.name)
			ms = append(ms, m)
		}
		seed, good, bad, gave, byz := ms[0], ms[1], ms[2], ms[3], ms[4]
		seed.shared(false)
		byz.shared(false)

		good.retried(errors.New("no providers"))
		good.fetched(2500 * time.Millisecond)
		good.mu.Lock()
		good.checkedLocked(func() (bool, error) { return true, nil })
		good.res.BytesPerPeer = map[string]int64{"id-seeder-0": 3 << 20, "id-l-2": 1 << 20}
		good.mu.Unlock()

		bad.fetched(3 * time.Second)
		bad.mu.Lock()
		bad.checkedLocked(func() (bool, error) { return false, errContentDiffers })
		bad.res.BytesPerPeer = map[string]int64{"id-seeder-0": 4 << 20, "elsewhere": 7}
		bad.mu.Unlock()

		gave.failed(errors.New("first"))
		gave.failed(errors.New("dial refused"))

		byz.mu.Lock()
		byz.res.servedTo = map[string]int64{"id-l-0": 2<<20 + 1, "id-l-1": 1 << 20}
		byz.mu.Unlock()
		return ms
	}

	res := newResults(p, "virtual", "abc", "bafyroot", 5)
	finishResults(p, res, build(), false)
	got := map[string]NodeResult{}
	for _, n := range res.Nodes {
		got[n.ID] = n
	}
	if len(res.Nodes) != 5 || res.Nodes[0].ID != "seeder-0" || res.Nodes[4].ID != "b-0" {
		t.Fatalf("nodes %+v", res.Nodes)
	}
	if s := got["seeder-0"]; !s.Completed || s.BytesOK || s.PeerID != "id-seeder-0" {
		t.Errorf("seeder: %+v", s)
	}
	if g := got["l-0"]; !g.Completed || !g.BytesOK || g.CompleteS != 2.5 || g.Error != "" || g.Retries != 1 ||
		g.BytesPerPeer["seeder-0"] != 3<<20 || g.BytesPerPeer["l-2"] != 1<<20 || g.BlocksRejected != 3 {
		t.Errorf("good fetcher: %+v", g)
	}
	if b := got["l-1"]; b.Completed || b.BytesOK || b.Error != "content check failed: the bytes read back differ from the content" ||
		b.BytesPerPeer["elsewhere"] != 7 || b.BlocksRejected != 1 {
		t.Errorf("fetcher with wrong bytes: %+v", b)
	}
	if g := got["l-2"]; g.Completed || g.Error != "dial refused" || g.Retries != 0 {
		t.Errorf("failed fetcher: %+v", g)
	}
	if b := got["b-0"]; b.CorruptTo["l-0"] != 3 || b.CorruptTo["l-1"] != 1 || len(b.CorruptTo) != 2 {
		t.Errorf("byzantine: corrupt blocks to %v", b.CorruptTo)
	}
	if got["seeder-0"].BytesUp != 0 {
		t.Errorf("in-process results credited uploads: %d", got["seeder-0"].BytesUp)
	}
	if res.Pass || len(res.Expectations) != 1 || !strings.Contains(res.Expectations[0].Got, "l-1, l-2") {
		t.Errorf("expectations: pass %v, %+v", res.Pass, res.Expectations)
	}
	if res.Plan != "t" || res.Mode != "virtual" || res.Commit != "abc" || res.Root != "bafyroot" || res.NodeCount != 5 || res.ContentBytes != 4<<20 {
		t.Errorf("head: %+v", res)
	}

	credited := newResults(p, "docker", "", "bafyroot", 5)
	finishResults(p, credited, build(), true)
	if up := credited.Nodes[0].BytesUp; up != 7<<20 {
		t.Errorf("docker results: seeder-0 credited %d bytes up, want %d", up, 7<<20)
	}
	if up := credited.Nodes[3].BytesUp; up != 1<<20 {
		t.Errorf("docker results: l-2 credited %d bytes up, want %d", up, 1<<20)
	}
}
