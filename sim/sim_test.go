package sim

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
)

func loadTestPlan(t *testing.T, name string) *Plan {
	t.Helper()
	p, err := LoadPlan(filepath.Join("plans", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// virtual reports whether plans run in virtual time (testing/synctest):
// the default, deterministic and fast enough to run every shipped plan
// under -race in CI. SHOAL_SIM_REAL=1 runs them in real time instead
// (calibration; slow, and only the first two plans unless SHOAL_SIM_ALL=1).
func virtual() bool { return os.Getenv("SHOAL_SIM_REAL") != "1" }

func runPlan(t *testing.T, p *Plan) *Results {
	t.Helper()
	return runPlanWith(t, p, Options{})
}

// runPlanWith is runPlan with opts (Mode, Logger and Progress are set
// here).
func runPlanWith(t *testing.T, p *Plan, opts Options) *Results {
	t.Helper()
	var res *Results
	run := func(t *testing.T, mode string) {
		var err error
		last := -10.0
		opts.Mode, opts.Logger = mode, testLogger(t)
		opts.Progress = func(pr Progress) {
			if pr.SimS-last >= 10 {
				last = pr.SimS
				t.Logf("t=%.0fs %d/%d complete, %.1f MiB received", pr.SimS, pr.Completed, pr.Fetchers, float64(pr.BytesDown)/(1<<20))
			}
		}
		res, err = Run(context.Background(), p, opts)
		if err != nil {
			t.Fatal(err)
		}
	}
	if virtual() {
		synctest.Test(t, func(t *testing.T) { run(t, "virtual") })
	} else {
		run(t, "real")
	}
	for _, n := range res.Nodes {
		t.Logf("%-18s completed=%-5v %6.2fs up=%9d down=%9d rejected=%d err=%s", n.ID, n.Completed, n.CompleteS, n.BytesUp, n.BytesDown, n.BlocksRejected, n.Error)
	}
	for _, e := range res.Expectations {
		t.Logf("expect %s [%s]: want %s, got %s, pass %v", e.Check, e.Group, e.Want, e.Got, e.Pass)
	}
	return res
}

// outcomeChecks are the expectations a small run must meet: outcomes,
// not speed (small N says little about ratios to T_min, and real-time
// runs on a loaded machine say nothing).
var outcomeChecks = map[string]bool{"all_complete": true, "byzantine_cut_off": true, "partition_heals": true}

// assertOutcomes fails the test on a failed outcome expectation and on
// any completed fetcher whose bytes were not verified.
func assertOutcomes(t *testing.T, res *Results) {
	t.Helper()
	for _, e := range res.Expectations {
		if outcomeChecks[e.Check] && !e.Pass {
			t.Errorf("expectation %s [%s] failed: want %s, got %s", e.Check, e.Group, e.Want, e.Got)
		}
	}
	fetchers := 0
	for _, n := range res.Nodes {
		if IsFetcherRole(n.Role) {
			fetchers++
			if n.Completed && !n.BytesOK {
				t.Errorf("%s completed without the right bytes", n.ID)
			}
		}
	}
	if res.TMinS != nil && fetchers == 0 {
		t.Errorf("T_min %v without fetchers", *res.TMinS)
	}
}

// smallSizes is how far the shipped plans shrink in the default test run.
func smallSizes() (perGroup int, mib float64) {
	if virtual() {
		return 6, 4
	}
	return 3, 2
}

func TestShippedPlansSmall(t *testing.T) {
	plans := []string{"flash-crowd.toml", "byzantine.toml", "multi-source.toml", "churn.toml", "partition.toml", "dht-lookup.toml", "flash-crowd-1000.toml"}
	// In real time the plans take as long as their timelines and, under
	// -race on two cores, far longer: by default only the first two run.
	// SHOAL_SIM_ALL=1 runs all of them in real time.
	if !virtual() && os.Getenv("SHOAL_SIM_ALL") != "1" {
		plans = plans[:2]
	}
	if !virtual() && testing.Short() {
		plans = plans[:1]
	}
	per, mib := smallSizes()
	for _, name := range plans {
		t.Run(name, func(t *testing.T) {
			// Each plan runs in its own synctest bubble, limited by CPU
			// alone: side by side they use every core (under -race on
			// two cores: 7.5 min one after the other). In real time they
			// would slow each other's links, so they stay sequential.
			if virtual() {
				t.Parallel()
			}
			p := loadTestPlan(t, name).Scale(per, mib)
			res := runPlan(t, p)
			assertOutcomes(t, res)
			if name == "byzantine.toml" {
				var served int64
				for _, n := range res.Nodes {
					served += n.CorruptServed
				}
				if served == 0 {
					t.Errorf("the byzantine nodes served no corrupt block: the plan tested nothing")
				}
			}
			if name == "dht-lookup.toml" {
				for _, n := range res.Nodes {
					if n.Role == RoleLookup && (n.DHTLookupS == nil || n.DHTHops == nil) {
						t.Errorf("%s: no lookup time or hops recorded (%s)", n.ID, n.Error)
					}
				}
			}
		})
	}
}

// TestPlanFromEnv runs one plan at full size, for measurements:
//
//	SHOAL_SIM_PLAN=plans/flash-crowd.toml SHOAL_SIM_OUT=/tmp/out \
//	  go test ./sim -run TestPlanFromEnv -timeout 0 -v
func TestPlanFromEnv(t *testing.T) {
	path := os.Getenv("SHOAL_SIM_PLAN")
	if path == "" {
		t.Skip("set SHOAL_SIM_PLAN (and SHOAL_SIM_OUT) to run a plan at full size in virtual time")
	}
	p, err := LoadPlan(path)
	if err != nil {
		t.Fatal(err)
	}
	res := runPlan(t, p)
	if out := os.Getenv("SHOAL_SIM_OUT"); out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := res.WriteJSON(out); err != nil {
			t.Fatal(err)
		}
		if err := res.WriteReport(out); err != nil {
			t.Fatal(err)
		}
	}
	var sb stringsBuilder
	res.WriteSummary(&sb)
	t.Log("\n" + sb.String())
}
