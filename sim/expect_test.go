package sim

import "testing"

// TestEvaluateCompletionAndDHT: all_complete and partition_heals name the
// fetchers that did not complete (churners that left do not count), and
// the DHT checks take the median (nearest rank) over the group's nodes that reported.
func TestEvaluateCompletionAndDHT(t *testing.T) {
	yes, no := true, false
	f := func(v float64) *float64 { return &v }
	i := func(v int) *int { return &v }
	res := &Results{Nodes: []NodeResult{
		{ID: "s0", Group: "seed", Role: RoleSeeder},
		{ID: "l0", Group: "a", Role: RoleLeecher, Completed: true, DHTHops: i(2), DHTLookupS: f(0.1)},
		{ID: "l1", Group: "a", Role: RoleLeecher, Completed: true, DHTHops: i(3), DHTLookupS: f(0.3)},
		{ID: "l2", Group: "b", Role: RoleLeecher, DHTHops: i(9), DHTLookupS: f(4)},
		{ID: "c0", Group: "b", Role: RoleChurner, LeftS: 3},
		{ID: "q0", Group: "a", Role: RoleLookup, Completed: true, DHTHops: i(4), DHTLookupS: f(0.2)},
	}}
	for _, tc := range []struct {
		e    Expectation
		want ExpectResult
	}{
		{Expectation{Group: "a", AllComplete: &yes}, ExpectResult{Check: "all_complete", Group: "a", Want: "true", Got: "all complete", Pass: true}},
		{Expectation{AllComplete: &yes}, ExpectResult{Check: "all_complete", Want: "true", Got: "1 incomplete: l2"}},
		{Expectation{Group: "b", AllComplete: &no}, ExpectResult{Check: "all_complete", Group: "b", Want: "false", Got: "1 incomplete: l2", Pass: true}},
		{Expectation{Group: "a", PartitionHeals: &yes}, ExpectResult{Check: "partition_heals", Group: "a", Want: "true", Got: "every fetcher completed after the split", Pass: true}},
		{Expectation{PartitionHeals: &yes}, ExpectResult{Check: "partition_heals", Want: "true", Got: "1 never completed: l2"}},
		{Expectation{Group: "a", DHTMedianHopsMax: f(3)}, ExpectResult{Check: "dht_median_hops_max", Group: "a", Want: "≤ 3", Got: "3 (3 lookups)", Pass: true}},
		{Expectation{DHTMedianHopsMax: f(2.5)}, ExpectResult{Check: "dht_median_hops_max", Want: "≤ 2.5", Got: "3 (4 lookups)"}},
		{Expectation{Group: "seed", DHTMedianHopsMax: f(3)}, ExpectResult{Check: "dht_median_hops_max", Group: "seed", Want: "≤ 3", Got: "n/a (not every fetcher completed) (0 lookups)"}},
		{Expectation{Group: "a", DHTLookupP50MaxS: f(0.2)}, ExpectResult{Check: "dht_lookup_p50_max_s", Group: "a", Want: "≤ 0.20 s", Got: "0.200 s", Pass: true}},
		{Expectation{DHTLookupP50MaxS: f(0.15)}, ExpectResult{Check: "dht_lookup_p50_max_s", Want: "≤ 0.15 s", Got: "0.200 s"}},
	} {
		if got := evaluate(&Plan{}, res, tc.e); got != tc.want {
			t.Errorf("evaluate(%s)\n got %+v\nwant %+v", tc.want.Check, got, tc.want)
		}
	}
}
