package dht

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
)

// spanCounter is an OpenTelemetry tracer provider that counts kad-dht's
// spans by name and by who started them (the first frame of the calling
// goroutine's stack that names a known origin). kad-dht opens a span for
// every lookup (IpfsDHT.GetClosestPeers), every FIND_NODE it sends
// (ProtocolMessenger.GetClosestPeers) and every dial of a query
// (IpfsDHT.DialPeer), so the counts are what a set of real routers in one
// process did, with no change to kad-dht.
type spanCounter struct {
	embedded.TracerProvider
	noop trace.Tracer

	mu     sync.Mutex
	counts map[string]map[string]int // span name → origin → count
}

func newSpanCounter() *spanCounter {
	return &spanCounter{noop: noop.NewTracerProvider().Tracer(""), counts: map[string]map[string]int{}}
}

func (c *spanCounter) Tracer(string, ...trace.TracerOption) trace.Tracer { return countingTracer{c: c} }

type countingTracer struct {
	embedded.Tracer
	c *spanCounter
}

// origins maps a function-name fragment on the stack to the origin it
// stands for, most specific first.
var origins = []struct{ frag, name string }{
	{"shoal/dht.(*Router).Bootstrap", "join: own-key lookup"},
	{"shoal/dht.(*Router).FindProviders", "fetch: find providers"},
	{"connectivity.(*ConnectivityChecker)", "provider: connectivity check"},
	{"(*SweepingProvider).approxPrefixLen", "provider: prefix-length probes"},
	{"provider.(*SweepingProvider)", "provider: other"},
	{"rtrefresh.(*RtRefreshManager).pingAndEvictPeers", "kad refresh: ping"},
	{"rtrefresh.(*RtRefreshManager).queryForSelf", "kad refresh: own key"},
	{"rtrefresh.(*RtRefreshManager).refreshCpl", "kad refresh: bucket"},
	{"(*IpfsDHT).lookupCheck", "kad: check of a new table peer"},
	{"(*query).queryPeer", "lookup step"},
}

func (t countingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	var pcs [64]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	origin := "other"
	var stack []string
	for {
		f, more := frames.Next()
		stack = append(stack, f.Function)
		if !more {
			break
		}
	}
	for _, o := range origins {
		if slices.ContainsFunc(stack, func(f string) bool { return strings.Contains(f, o.frag) }) {
			origin = o.name
			break
		}
	}
	t.c.mu.Lock()
	m := t.c.counts[name]
	if m == nil {
		m = map[string]int{}
		t.c.counts[name] = m
	}
	m[origin]++
	t.c.mu.Unlock()
	return t.c.noop.Start(ctx, name, opts...)
}

// count is the number of spans named name (without kad-dht's
// "KademliaDHT." prefix) from origin, or from every origin if origin is "".
func (c *spanCounter) count(name, origin string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for o, k := range c.counts["KademliaDHT."+name] {
		if origin == "" || o == origin {
			n += k
		}
	}
	return n
}

// report is the counts as lines "name origin count", sorted.
func (c *spanCounter) report() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lines []string
	for name, m := range c.counts {
		for o, k := range m {
			lines = append(lines, fmt.Sprintf("%-45s %-32s %6d", strings.TrimPrefix(name, "KademliaDHT."), o, k))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// installSpanCounter makes c the global tracer provider for the test.
func installSpanCounter(t *testing.T) *spanCounter {
	c := newSpanCounter()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(c)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	return c
}

// TestJoinLookups starts a crowd of routers at once, all bootstrapping
// from one node (the flash crowd of sim/plans/flash-crowd*.toml), the way
// node.Node does (Start, and a Bootstrap it waits for), and counts what
// their DHTs did until the crowd settled: each joining node walks the DHT
// for its own key once, refreshes no bucket (that waits for
// RefreshDelay), checks each peer that connects at most about once before
// it enters the table, and its provider, with nothing to provide, sends
// nothing. Then one node provides a root, and its provider's probes run and
// the record reaches the DHT.
func TestJoinLookups(t *testing.T) {
	const n = 25
	c := installSpanCounter(t)
	base := testConfig(t)
	base.RefreshDelay = time.Hour
	first := newNode(t, base)
	cfg := base
	cfg.BootstrapPeers = []string{addrString(t, first.h)}
	nodes := []testNode{first}
	for range n - 1 {
		nodes = append(nodes, newUnstartedNode(t, cfg))
	}
	var wg sync.WaitGroup
	for _, nd := range nodes[1:] {
		if err := nd.r.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := nd.r.Bootstrap(ctx); err != nil {
				t.Errorf("bootstrap %s: %v", nd.h.ID(), err)
			}
		})
	}
	wg.Wait()
	start := time.Now()
	for i, nd := range nodes {
		waitFor(t, time.Minute, fmt.Sprintf("node %d online", i), func() bool {
			return nd.r.ProvideStatus().Connectivity == "online"
		})
	}
	// Let the background refreshes and probes that follow a join end.
	ran := func(origin string) int { return c.count("IpfsDHT.Query.Run", origin) }
	for last := -1; ran("") != last; {
		last = ran("")
		time.Sleep(2 * time.Second)
	}
	t.Logf("settled %v after the joins; %d routers joined at once:\n%s", time.Since(start), n, c.report())
	joiners := float64(n - 1)
	t.Logf("per joining node: %.1f lookups that queried peers, %.1f FIND_NODE sent, %.1f query dials",
		float64(ran(""))/joiners,
		float64(c.count("ProtocolMessenger.GetClosestPeers", ""))/joiners,
		float64(c.count("IpfsDHT.DialPeer", ""))/joiners)

	if got := c.count("IpfsDHT.GetClosestPeers", "join: own-key lookup"); got != n-1 {
		t.Errorf("%d own-key lookups by Bootstrap, want one per joining node (%d): overlapping calls share one", got, n-1)
	}
	// Only the first node, which has no bootstrap peer and so no join to
	// reuse, may look up its own key for its provider.
	if got := ran("provider: connectivity check"); got > 1 {
		t.Errorf("providers walked the DHT for their own key %d times; the join's lookup answers them", got)
	}
	if got := ran("provider: prefix-length probes"); got != 0 {
		t.Errorf("providers with nothing to provide sent %d prefix-length probes", got)
	}
	// A join that left a thin table (lowTable peers or fewer) refreshes
	// at once; kad-dht refreshed on every join, two or three times.
	if refreshes := c.count("RefreshManager.queryForSelf", ""); refreshes > (n-1)/4 {
		t.Errorf("%d routing-table refreshes while %d routers joined (%d own-key and %d bucket lookups), want only those of thin tables before RefreshDelay",
			refreshes, n-1, ran("kad refresh: own key"), ran("kad refresh: bucket"))
	}
	// kad-dht checks a connected peer (one FIND_NODE) before it enters
	// the table; unpaced, it checked each one four or five times.
	checks := c.count("ProtocolMessenger.GetClosestPeers", "kad: check of a new table peer")
	if pairs := n * (n - 1); checks > pairs*3/2 {
		t.Errorf("%d admission checks among %d routers (%d ordered pairs): a peer is checked more than once or twice", checks, n, pairs)
	}
	for i, nd := range nodes {
		if got := nd.r.Size(); got <= lowTable {
			t.Errorf("node %d: %d peers in its routing table, want more than %d", i, got, lowTable)
		}
	}

	root := testCID(t, "provided after the join")
	if err := nodes[n-1].r.Provide(context.Background(), root); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "root announced", func() bool {
		_, ok := nodes[n-1].r.LastProvided(root)
		return ok
	})
	if got := ran("provider: prefix-length probes"); got == 0 {
		t.Error("the root was announced without the provider's prefix-length probes")
	}
	if !findProvider(t, nodes[1].r, root, nodes[n-1].h.ID()) {
		t.Error("the announced root has no provider record in the DHT")
	}
}

// TestRefreshAfterDelay: a router refreshes its routing table RefreshDelay
// after Start (kad-dht's refresh: its own key, and the buckets not looked
// into lately), and at once after a join that left a thin table; with
// RefreshDelay negative, kad-dht refreshes by itself as the table gains
// its first peer.
func TestRefreshAfterDelay(t *testing.T) {
	c := installSpanCounter(t)
	refreshed := func() int { return c.count("RefreshManager.queryForSelf", "") }
	cfg := testConfig(t)
	cfg.RefreshDelay = 2 * time.Second
	first := newNode(t, cfg)
	cfg.BootstrapPeers = []string{addrString(t, first.h)}
	var nodes []testNode
	for range 4 {
		nodes = append(nodes, newNode(t, cfg))
	}
	for _, nd := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := nd.r.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	// Five routers: every join leaves lowTable peers or fewer, so each
	// joiner refreshes at once (TestJoinLookups has a crowd whose joins
	// wait for RefreshDelay).
	waitFor(t, time.Minute, "the thin joins' refreshes", func() bool { return refreshed() >= len(nodes) })
	for i, nd := range append(nodes, first) {
		waitFor(t, time.Minute, fmt.Sprintf("node %d's first refresh", i), func() bool { return nd.r.refreshes.Load() >= 1 })
	}
	if got := refreshed(); got < 2*len(nodes)+1 {
		t.Errorf("%d own-key refresh lookups, want one per joiner at once and one per router after the delay (%d)", got, 2*len(nodes)+1)
	}

	before := refreshed()
	cfg.RefreshDelay = -1
	eager := newNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := eager.r.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "kad-dht's own refresh on joining", func() bool { return refreshed() > before })
	if got := eager.r.refreshes.Load(); got != 0 {
		t.Errorf("RefreshDelay < 0: the router ran %d refreshes itself, want kad-dht's alone", got)
	}
}

// TestCheckPacer: a peer outside the routing table may be checked once
// per checkPace (the two questions of one event, within checkGrace, both
// pass); a peer in the table always may; expired grants are dropped once
// there are many.
func TestCheckPacer(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newCheckPacer()
	c.now = func() time.Time { return now }
	a, b := peer.ID("a"), peer.ID("b")
	steps := []struct {
		after   time.Duration
		p       peer.ID
		inTable bool
		want    bool
	}{
		{0, a, false, true},
		{0, a, false, true}, // the same event's second question
		{5 * time.Millisecond, a, false, true},
		{20 * time.Millisecond, a, false, false},
		{0, b, false, true},
		{time.Second, a, false, false},
		{0, a, true, true},
		{checkPace, a, false, true},
		{time.Second, a, false, false},
		{0, b, false, true}, // b's grant is past checkPace too
	}
	for i, s := range steps {
		now = now.Add(s.after)
		if got := c.allow(s.p, s.inTable); got != s.want {
			t.Fatalf("step %d (%v later, %s, in table %v): allow = %v, want %v", i, s.after, s.p, s.inTable, got, s.want)
		}
	}
	for i := range checkSweep {
		c.allow(peer.ID(fmt.Sprint(i)), false)
	}
	now = now.Add(checkPace)
	c.allow("last", false)
	if len(c.granted) != 1 {
		t.Errorf("%d grants kept after a sweep, want the new one alone", len(c.granted))
	}
}

// TestLookupWaitsForJoin: a lookup made right after Start, while the
// node's first join is under way and its routing table still empty, waits
// for the join's first peer and finds the provider. kad-dht alone fails
// such a lookup at once ("failed to find any peer in table"), and the
// fetch that asked searched again only after its backoff.
func TestLookupWaitsForJoin(t *testing.T) {
	nodes := newNetwork(t, 3, 1, nil)
	root := testCID(t, "provided before the late node starts")
	if err := nodes[2].r.Provide(context.Background(), root); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "root announced", func() bool {
		_, ok := nodes[2].r.LastProvided(root)
		return ok
	})
	waitFor(t, time.Minute, "provider record in the DHT", func() bool {
		return findProvider(t, nodes[1].r, root, nodes[2].h.ID())
	})

	cfg := testConfig(t)
	cfg.BootstrapPeers = []string{addrString(t, nodes[0].h)}
	late := newUnstartedNode(t, cfg)
	if err := late.r.Start(); err != nil {
		t.Fatal(err)
	}
	if n := late.r.Size(); n != 0 {
		t.Fatalf("routing table has %d peers right after Start, want 0 (the test needs the lookup to start before the join)", n)
	}
	if !findProvider(t, late.r, root, nodes[2].h.ID()) {
		t.Error("a lookup started with the join found no provider: it ran on the empty routing table instead of waiting for the join's first peer")
	}
}
