package sim

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestShippedPlansParse(t *testing.T) {
	files, err := filepath.Glob("plans/*.toml")
	if err != nil || len(files) < 6 {
		t.Fatalf("plans: %v, %v", files, err)
	}
	for _, f := range files {
		p, err := LoadPlan(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(p.Expect) == 0 {
			t.Errorf("%s has no expectations", f)
		}
	}
}

const goodPlan = `
name = "t"
seed = 1
content_mib = 4
[[group]]
role = "seeder"
count = 1
up_mbit = 10
down_mbit = 10
[[group]]
name = "l"
role = "leecher"
count = 4
up_mbit = 10
down_mbit = 20
[[expect]]
all_complete = true
`

func TestPlanErrorsNameFileAndKey(t *testing.T) {
	for _, tc := range []struct {
		name, edit, want string
	}{
		{"unknown key", "bogus = 1\n" + goodPlan, "unknown key bogus"},
		{"bad role", strings.Replace(goodPlan, `role = "leecher"`, `role = "lurker"`, 1), `group[1].role: is "lurker"`},
		{"no seeder", strings.Replace(goodPlan, `role = "seeder"`, `role = "leecher"`, 1), "no group has role"},
		{"zero count", strings.Replace(goodPlan, "count = 4", "count = 0", 1), "group[1].count"},
		{"no bandwidth", strings.Replace(goodPlan, "down_mbit = 20", "down_mbit = 0", 1), "group[1].up_mbit/down_mbit"},
		{"two checks", goodPlan + "p50_over_tmin_max = 1.2\n", "expect[0]: has 2 checks"},
		{"content", strings.Replace(goodPlan, "content_mib = 4", "content_mib = 0", 1), "content_mib: is 0"},
		{"syntax", "name = \n", "plan.toml line 1"},
		{"churner stays", strings.Replace(goodPlan, `role = "leecher"`, `role = "churner"`, 1), "a churner group must leave"},
		{"partition group", goodPlan + "[partition]\nat_s = 1\nheal_s = 2\nside_a = [\"x\"]\n", `partition.side_a: "x" is not a group`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePlan("plan.toml", []byte(tc.edit))
			if err == nil || !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "plan.toml") {
				t.Fatalf("err = %v; want ErrPlan naming plan.toml and %q", err, tc.want)
			}
		})
	}
	if _, err := ParsePlan("plan.toml", []byte(goodPlan)); err != nil {
		t.Fatal(err)
	}
}

func TestTMin(t *testing.T) {
	mk := func(groups ...Group) *Plan {
		return &Plan{ContentMiB: 8, Groups: groups}
	}
	f := float64(8<<20) * 8
	for _, tc := range []struct {
		name string
		p    *Plan
		want float64
	}{
		// One seeder, N equal peers: N·F/(u_s+N·u) dominates F/u_s? No:
		// with u_s = u, N·F/((N+1)u) < F/u, so F/u_s wins.
		{"flash crowd", mk(Group{Role: RoleSeeder, Count: 1, UpMbit: 20, DownMbit: 20}, Group{Role: RoleLeecher, Count: 100, UpMbit: 20, DownMbit: 20}), f / 20e6},
		// Slow seeders, fast leecher: F/u_s with u_s summed.
		{"multi source", mk(Group{Role: RoleSeeder, Count: 8, UpMbit: 10, DownMbit: 10}, Group{Role: RoleLeecher, Count: 1, UpMbit: 10, DownMbit: 200}), f / 80e6},
		// A slow downlink bounds everyone.
		{"slow leecher", mk(Group{Role: RoleSeeder, Count: 1, UpMbit: 100, DownMbit: 100}, Group{Role: RoleLeecher, Count: 1, UpMbit: 1, DownMbit: 5}), f / 5e6},
		// Leechers that upload nothing useful: N·F/(u_s+Σu_i).
		{"weak uploaders", mk(Group{Role: RoleSeeder, Count: 1, UpMbit: 10, DownMbit: 10}, Group{Role: RoleLeecher, Count: 10, UpMbit: 1, DownMbit: 100}), 10 * f / 20e6},
		// Byzantine nodes do not count as seeders.
		{"byzantine ignored", mk(Group{Role: RoleSeeder, Count: 1, UpMbit: 10, DownMbit: 10}, Group{Role: RoleByzantine, Count: 5, UpMbit: 100, DownMbit: 100}, Group{Role: RoleLeecher, Count: 1, UpMbit: 10, DownMbit: 100}), f / 10e6},
	} {
		got := TMin(tc.p)
		if got == nil || math.Abs(*got-tc.want) > 1e-9 {
			t.Errorf("%s: T_min = %v, want %v", tc.name, got, tc.want)
		}
	}
	if TMin(mk(Group{Role: RoleSeeder, Count: 1, UpMbit: 1, DownMbit: 1})) != nil {
		t.Error("T_min without fetchers should be nil")
	}
}

func TestBlockBound(t *testing.T) {
	mk := func(mib float64, groups ...Group) *Plan {
		return &Plan{ContentMiB: mib, Groups: groups}
	}
	// An independent oracle: step the capacity model forward in small
	// steps (a new holder per blockSize bits delivered, adding the largest
	// fetcher uplink) until the first m finishers have m·F bits.
	oracle := func(p *Plan, q float64) float64 {
		f := float64(p.ContentBytes()) * 8
		var us, all, umax float64
		var downs []float64
		for _, g := range p.Groups {
			if g.Role == RoleSeeder {
				us += float64(g.Count) * g.UpMbit * 1e6
				continue
			}
			all += float64(g.Count) * g.UpMbit * 1e6
			umax = max(umax, g.UpMbit*1e6)
			for range g.Count {
				downs = append(downs, g.DownMbit*1e6)
			}
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(downs)))
		m := int(math.Ceil(q * float64(len(downs))))
		var dm float64
		for _, d := range downs[:m] {
			dm += d
		}
		const dt = 1e-5
		c, got, t := us, 0.0, 0.0
		for got < float64(m)*f {
			rate := min(c, us+all, dm)
			got += rate * dt
			c += rate * dt / (blockSize * 8) * umax
			t += dt
		}
		return max(t, f/downs[m-1])
	}
	seeder := Group{Role: RoleSeeder, Count: 1, UpMbit: 20, DownMbit: 20}
	hop := float64(blockSize*8) / 20e6
	for _, tc := range []struct {
		name string
		p    *Plan
		q    float64
		want float64 // 0: only the oracle
	}{
		// One pair: the leecher's downlink is the limit, as in T_min.
		{"pair", mk(8, seeder, Group{Role: RoleLeecher, Count: 1, UpMbit: 20, DownMbit: 20}), 0.5, 8 * hop},
		// flash-crowd as shipped: ln 50 hops for the 50 finishers' uplinks
		// to join (49 blocks delivered meanwhile), then 50 blocks a hop.
		{"flash crowd p50", mk(16, seeder, Group{Role: RoleLeecher, Count: 100, UpMbit: 20, DownMbit: 20}), 0.5, hop * (math.Log(50) + (800-49)/50.0)},
		{"flash crowd p99", mk(16, seeder, Group{Role: RoleLeecher, Count: 100, UpMbit: 20, DownMbit: 20}), 0.99, hop * (math.Log(99) + (99*16-98)/99.0)},
		// Fast downlinks, fetchers that upload slowly: the content is out
		// before capacity reaches its cap (the exponential branch).
		{"still growing", mk(1, Group{Role: RoleSeeder, Count: 1, UpMbit: 100, DownMbit: 100}, Group{Role: RoleLeecher, Count: 100, UpMbit: 10, DownMbit: 1000}), 0.5, 0},
		// Fetchers that upload little: their summed uplink caps capacity.
		{"weak uploaders", mk(4, Group{Role: RoleSeeder, Count: 1, UpMbit: 10, DownMbit: 10}, Group{Role: RoleLeecher, Count: 10, UpMbit: 1, DownMbit: 100}), 0.99, 0},
		// Mixed downlinks: the m fastest carry the first m finishers.
		{"hetero", mk(16, Group{Role: RoleSeeder, Count: 1, UpMbit: 100, DownMbit: 100},
			Group{Role: RoleLeecher, Count: 10, UpMbit: 100, DownMbit: 100},
			Group{Role: RoleLeecher, Count: 20, UpMbit: 5, DownMbit: 25}), 0.5, 0},
	} {
		got := BlockBound(tc.p, tc.q)
		if got == nil {
			t.Errorf("%s: no bound", tc.name)
			continue
		}
		if o := oracle(tc.p, tc.q); math.Abs(*got-o) > 1e-3*o {
			t.Errorf("%s: bound %.4f s, stepped model %.4f s", tc.name, *got, o)
		}
		if tc.want != 0 && math.Abs(*got-tc.want) > 1e-9*tc.want {
			t.Errorf("%s: bound %.6f s, want %.6f s", tc.name, *got, tc.want)
		}
		if tmin := TMin(tc.p); tc.q == 0.99 && *got < *tmin-1e-9 {
			t.Errorf("%s: p99 bound %.3f s below T_min %.3f s", tc.name, *got, *tmin)
		}
	}
	late := mk(8, seeder, Group{Role: RoleLateJoiner, Count: 1, UpMbit: 20, DownMbit: 20, JoinS: 5})
	if BlockBound(late, 0.5) != nil {
		t.Error("a bound for fetchers that start late: completion times are from each fetch's start, the model is from t = 0")
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{1, 2, 3, 4, math.Inf(1)}
	if p := percentile(v, 0.5); p == nil || *p != 3 {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(v, 0.99); p != nil {
		t.Errorf("p99 over a fetcher that never completed = %v, want nil", *p)
	}
	if percentile(nil, 0.5) != nil {
		t.Error("p50 of nothing")
	}
}

func FuzzParsePlan(f *testing.F) {
	f.Add([]byte(goodPlan))
	for _, name := range []string{"flash-crowd.toml", "partition.toml", "dht-lookup.toml"} {
		if b, err := os.ReadFile(filepath.Join("plans", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("[[group]]\nrole = 1\n"))
	f.Add([]byte("content_mib = 1e400\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePlan("fuzz.toml", b)
		if err != nil {
			if !errors.Is(err, ErrPlan) {
				t.Fatalf("error %v does not wrap ErrPlan", err)
			}
			return
		}
		// A plan that validates must have what the runner relies on.
		if p.ContentBytes() <= 0 || len(p.Groups) == 0 {
			t.Fatalf("valid plan without content or groups: %+v", p)
		}
		for _, g := range p.Groups {
			if g.Count <= 0 || g.UpMbit <= 0 || g.DownMbit <= 0 {
				t.Fatalf("valid plan with a bad group: %+v", g)
			}
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("a parsed plan fails Validate again: %v", err)
		}
		_ = TMin(p)
	})
}

// TestPlanHetero: the shipped hetero plan is what issue 12 asks for —
// datacenter, office and home links with uplinks from 5 to 100 Mbit/s,
// fetchers in two regions with a latency between them — and its T_min
// is the one its comment derives.
func TestPlanHetero(t *testing.T) {
	p, err := LoadPlan("plans/hetero.toml")
	if err != nil {
		t.Fatal(err)
	}
	regions := map[string]bool{}
	ups := map[float64]bool{}
	lo, hi := math.Inf(1), 0.0
	for _, g := range p.Groups {
		if IsFetcherRole(g.Role) {
			regions[g.Region] = true
			ups[g.UpMbit] = true
		}
		lo, hi = min(lo, g.UpMbit), max(hi, g.UpMbit)
	}
	if len(regions) < 2 || len(ups) < 3 || lo != 5 || hi != 100 {
		t.Fatalf("fetchers in regions %v with uplinks %v (range %g–%g): want two regions and three link classes spanning 5–100 Mbit/s", regions, ups, lo, hi)
	}
	if len(p.Latency) == 0 || p.Latency[0].MS <= 0 {
		t.Fatalf("latency between regions %v: want one above 0", p.Latency)
	}
	want := 30 * float64(8<<20) * 8 / 810e6
	if got := TMin(p); got == nil || math.Abs(*got-want) > 1e-9 {
		t.Fatalf("T_min = %v, want %v (N·F/(u_s+Σu_i))", got, want)
	}
	var p50 bool
	for _, e := range p.Expect {
		p50 = p50 || (e.P50OverTminMax != nil && *e.P50OverTminMax == 1.5)
	}
	if !p50 {
		t.Fatal("hetero.toml does not expect p50 ≤ 1.5 × T_min")
	}
}
