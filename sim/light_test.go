package sim

import (
	"context"
	"crypto/sha256"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

const sinkProto = "/shoal-test/sink/1"

// sinkResult is what a sink read from one stream: its bytes' hash and
// when the last of them (and the end of the stream) arrived.
type sinkResult struct {
	from peer.ID
	n    int64
	sum  [32]byte
	at   time.Time
}

// lightHosts builds light hosts on a fresh light network; every host
// sinks what streams of sinkProto bring to results.
func lightHosts(t *testing.T, results chan<- sinkResult, specs ...hostSpec) (*simNet, []*simHost) {
	t.Helper()
	n := newLightNet(nil)
	var hosts []*simHost
	for _, spec := range specs {
		spec.seed = 7
		sh, err := n.newHost(spec)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sh.host.Close() })
		sh.host.SetStreamHandler(sinkProto, func(s network.Stream) {
			h := sha256.New()
			nr, err := io.Copy(h, s)
			if err != nil {
				t.Errorf("sink reading from %s: %v", s.Conn().RemotePeer(), err)
			}
			r := sinkResult{from: s.Conn().RemotePeer(), n: nr, at: time.Now()}
			copy(r.sum[:], h.Sum(nil))
			_ = s.Close()
			results <- r
		})
		hosts = append(hosts, sh)
	}
	return n, hosts
}

func connect(t *testing.T, a, b *simHost) {
	t.Helper()
	if err := a.host.Connect(context.Background(), peer.AddrInfo{ID: b.host.ID(), Addrs: b.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// send writes data to b on a new sinkProto stream and closes it.
func send(t *testing.T, a, b *simHost, data []byte) {
	s, err := a.host.NewStream(context.Background(), b.host.ID(), sinkProto)
	if err != nil {
		t.Errorf("stream to %s: %v", b.host.ID(), err)
		return
	}
	if _, err := s.Write(data); err != nil {
		t.Errorf("writing to %s: %v", b.host.ID(), err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Errorf("closing the stream to %s: %v", b.host.ID(), err)
	}
	_, _ = io.Copy(io.Discard, s) // the sink's Close
	_ = s.Close()
}

// TestLightShaping: light streams take the plan's links as full ones do
// (in virtual time): a transfer of F bytes takes at least F/u and less
// than 1.2·F/u plus the latency; two transfers out of one uplink share it
// (each ends near 2·F/u), two into one downlink share that; a round trip
// costs twice the one-way latency; and every byte arrives intact. The
// wire counters count what crossed each link.
func TestLightShaping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		results := make(chan sinkResult, 4)
		const mbit = 20
		const lat = 10 * time.Millisecond // one-way, each access link
		spec := func(i int) hostSpec {
			return hostSpec{index: i, upMbit: mbit, downMbit: mbit, latency: lat}
		}
		_, h := lightHosts(t, results, spec(1), spec(2), spec(3), spec(4))
		for _, o := range h[1:] {
			connect(t, h[0], o)
		}
		connect(t, h[2], h[3])
		f := int64(4 << 20)
		data := makeContent(5, f)
		want := sha256.Sum256(data)
		fu := time.Duration(float64(f) * 8 / (mbit * 1e6) * float64(time.Second))
		oneWay := 2 * lat

		check := func(what string, got sinkResult, start time.Time, lo, hi time.Duration) {
			t.Helper()
			if got.n != f || got.sum != want {
				t.Errorf("%s: %d bytes arrived, hash equal %v; want %d, equal", what, got.n, got.sum == want, f)
			}
			if d := got.at.Sub(start); d < lo || d >= hi {
				t.Errorf("%s took %v, want in [%v, %v) (F/u = %v)", what, d, lo, hi, fu)
			} else {
				t.Logf("%s took %v (F/u %v)", what, d, fu)
			}
		}

		// One transfer alone.
		start := time.Now()
		go send(t, h[0], h[1], data)
		check("one transfer", <-results, start, fu, fu*12/10+oneWay)

		// Two out of h[0]'s uplink at once: they share it.
		start = time.Now()
		go send(t, h[0], h[1], data)
		go send(t, h[0], h[2], data)
		for range 2 {
			check("two transfers sharing an uplink", <-results, start, 2*fu*9/10, 2*fu*12/10+oneWay)
		}

		// Two into h[3]'s downlink at once, from two uplinks.
		start = time.Now()
		go send(t, h[0], h[3], data)
		go send(t, h[2], h[3], data)
		for range 2 {
			check("two transfers sharing a downlink", <-results, start, 2*fu*9/10, 2*fu*12/10+oneWay)
		}

		// A round trip of a small message: latency only.
		h[1].host.SetStreamHandler("/shoal-test/echo/1", func(s network.Stream) {
			b := make([]byte, 1)
			if _, err := io.ReadFull(s, b); err == nil {
				_, _ = s.Write(b)
			}
			_ = s.Close()
		})
		s, err := h[0].host.NewStream(context.Background(), h[1].host.ID(), "/shoal-test/echo/1")
		if err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		if _, err := s.Write([]byte{42}); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(s, b); err != nil || b[0] != 42 {
			t.Fatalf("echo: %v %v", b, err)
		}
		if rtt := time.Since(start); rtt < 2*oneWay || rtt > 2*oneWay+time.Millisecond {
			t.Errorf("round trip %v, want 2 × %v", rtt, oneWay)
		}
		_ = s.Close()

		// h[0] sent 4 × F of content (and the protocol negotiation);
		// h[3] received 2 × F.
		up, _ := h[0].traffic()
		_, down := h[3].traffic()
		if up < 4*f || up > 4*f+4096 || down < 2*f || down > 2*f+4096 {
			t.Errorf("wire counters: h0 up %d (want 4·F = %d and a little), h3 down %d (want 2·F = %d)", up, 4*f, down, 2*f)
		}
	})
}

// TestLightDialUnreachable: a dial to a light host that has left takes
// the handshake timeout and fails, as a full host's dial waits for its
// lost packets; connections across a partition are refused.
func TestLightDialUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		results := make(chan sinkResult, 1)
		ln, h := lightHosts(t, results,
			hostSpec{index: 1, upMbit: 10, downMbit: 10},
			hostSpec{index: 2, upMbit: 10, downMbit: 10},
			hostSpec{index: 3, upMbit: 10, downMbit: 10})
		connect(t, h[0], h[1])
		net := h[0].host.Network()
		// h[1] leaves: its connections close, a new dial times out.
		h1 := h[1]
		ln.isolate(h1)
		synctest.Wait()
		if got := net.Connectedness(h1.host.ID()); got == network.Connected {
			t.Fatalf("after isolate: %v", got)
		}
		start := time.Now()
		err := h[0].host.Connect(context.Background(), peer.AddrInfo{ID: h1.host.ID(), Addrs: h1.host.Addrs()})
		if err == nil {
			t.Fatal("dialled a host that left")
		}
		if d := time.Since(start); d < handshakeTimeout {
			t.Errorf("a dial to a host that left failed after %v, want the handshake timeout %v (%v)", d, handshakeTimeout, err)
		}
		// A partition between h[0] and h[2].
		ln.partition(map[*simHost]int{h[0]: 0, h[2]: 1})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := h[0].host.Connect(ctx, peer.AddrInfo{ID: h[2].host.ID(), Addrs: h[2].host.Addrs()}); err == nil {
			t.Fatal("connected across a partition")
		}
		ln.heal()
		net.(*swarm.Swarm).Backoff().Clear(h[2].host.ID())
		connect(t, h[0], h[2])
		go send(t, h[0], h[2], []byte("after the heal"))
		if r := <-results; r.n != int64(len("after the heal")) {
			t.Errorf("after the heal: %d bytes arrived", r.n)
		}
	})
}

// pairPlan is one seeder and one leecher on 20 Mbit/s links: T_min is
// F/u.
const pairPlan = `
name = "pair"
seed = 3
content_mib = 4
settle_s = 2
timeout_s = 120

[[group]]
name = "seeder"
role = "seeder"
count = 1
up_mbit = 20
down_mbit = 20
latency_ms = 10

[[group]]
name = "leecher"
role = "leecher"
count = 1
up_mbit = 20
down_mbit = 20
latency_ms = 10
`

// TestLightAndFullSamePlan runs two small plans with full nodes and with
// light ones: both complete with verified bytes either way, and a light
// 1-seeder 1-leecher fetch (the real node: DHT lookup, Bitswap, swarm
// extension) takes at least F/u and less than 1.2·F/u plus the latency,
// so the links shape light nodes as the plan says.
func TestLightAndFullSamePlan(t *testing.T) {
	pair, err := ParsePlan("pair.toml", []byte(pairPlan))
	if err != nil {
		t.Fatal(err)
	}
	crowd := loadTestPlan(t, "flash-crowd.toml").Scale(5, 4)
	for _, p := range []*Plan{pair, crowd} {
		for _, light := range []bool{false, true} {
			name := p.Name + "/full"
			if light {
				name = p.Name + "/light"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				res := runPlanWith(t, p, Options{Light: light})
				assertOutcomes(t, res)
				if want := map[bool]string{false: TransportQUIC, true: TransportLight}[light]; res.Transport != want {
					t.Errorf("results say transport %q, want %q", res.Transport, want)
				}
				for _, n := range res.Nodes {
					if IsFetcherRole(n.Role) && (!n.Completed || !n.BytesOK) {
						t.Errorf("%s: completed %v, bytes verified %v (%s)", n.ID, n.Completed, n.BytesOK, n.Error)
					}
				}
				if res.TMinS == nil || res.P50S == nil || res.P99S == nil {
					t.Fatal("no T_min or percentiles")
				}
				tmin := *res.TMinS
				t.Logf("%s: T_min %.3f s, p50 %.3f s (%.2f ×), p99 %.3f s (%.2f ×), wall %.1f s", name, tmin, *res.P50S, *res.P50S/tmin, *res.P99S, *res.P99S/tmin, res.WallS)
				if *res.P50S < tmin {
					t.Errorf("p50 %.3f s beats T_min %.3f s: the links are not shaped", *res.P50S, tmin)
				}
				if p == pair && light {
					if hi := 1.2*tmin + 0.02; *res.P50S >= hi {
						t.Errorf("light 1 + 1: the fetch took %.3f s, want < 1.2·F/u + latency = %.3f s", *res.P50S, hi)
					}
				}
			})
		}
	}
}

// TestLightShippedPlansSmall runs the shipped partition plan (whose
// dials across the split time out, and whose connections across it
// close) with light nodes at the small size of TestShippedPlansSmall:
// the outcomes hold as with full nodes. (churn and byzantine pass too,
// at 86-98 s each on a loaded machine: `shoal sim --light` runs them;
// TestLightDialUnreachable covers a dial to a node that left.)
func TestLightShippedPlansSmall(t *testing.T) {
	per, mib := smallSizes()
	for _, name := range []string{"partition.toml"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := runPlanWith(t, loadTestPlan(t, name).Scale(per, mib), Options{Light: true})
			assertOutcomes(t, res)
			if res.Transport != TransportLight {
				t.Errorf("transport %q, want light", res.Transport)
			}
		})
	}
}
