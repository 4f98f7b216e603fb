// Package sim runs testground-style plans: many real shoal nodes over
// shaped simulated links in one process, and a report that sets what
// they achieved beside the theoretical bound.
//
// Every simulated node is a real node.Node (DHT, Bitswap server and
// fetch client, in-memory blockstore) built with node.NewWithParts on a
// real libp2p QUIC host whose UDP socket is an endpoint of
// github.com/marcopolo/simnet: per-node uplink and downlink bandwidth,
// per-node access latency plus a latency between regions, FQ-CoDel
// queues. A host opens at most 24 connections itself (others may open
// more to it), which keeps a node's memory flat as a swarm grows
// (bench/sim.md). Inside a testing/synctest bubble the whole run is in virtual
// time: deterministic and limited by CPU, not by the simulated links.
// The tests make the bubble with synctest.Test; `shoal sim` makes one in
// the binary (cmd/shoal/simvirtual.go: testing.MainStart with the run as
// its one test), and with --real-time runs outside a bubble, where the
// links are paced by the real clock. A caller inside a bubble passes a
// context made inside it (a bubbled goroutine waiting on an outside
// channel stops the virtual clock) and reads wall time from WallNow.
//
// # Light nodes
//
// With Options.Light (`shoal sim --light`) or transport = "light" in the
// plan, every node is the same node.Node on the same libp2p host, swarm,
// resource manager, connection manager and gater, but the host's one
// transport (light.go) makes connections that are in-process streams:
// no QUIC, no TLS, no packets. A stream's bytes go in 16 KiB segments
// through the writer's uplink, the pair's latency and the reader's
// downlink (lightlink.go: per-node shapers at the plan's rates, shared
// round robin by every stream of the node), with a flow-control window
// of twice the path's bandwidth-delay product per stream; a dial takes
// one round trip, and a dial to a host that left or is across a
// partition fails after the QUIC handshake timeout. T_min and the
// report mean the same; wire bytes are the bytes written to streams.
//
// # Virtual time and locks
//
// A synctest bubble advances its clock only when every goroutine in it
// is durably blocked (channels, select, sync.Cond, timers). A goroutine
// waiting for a sync.Mutex is not, so a mutex held across a blocking
// network write freezes the clock while anyone waits for it. protocol's
// per-peer sender therefore serialises its sends with a one-slot channel
// (peerSender.sendMu), and every shipped plan runs in virtual time: the
// tests run them so by default (SHOAL_SIM_REAL=1 selects real time).
//
// # Plans
//
// A plan is a TOML file (see plans/*.toml):
//
//	name, description, seed      one seed for every random choice
//	content_mib                  the content, pseudo-random from the seed
//	timeout_s, settle_s, sample_s
//	transport                    "quic" (default) or "light" (light nodes)
//	[[group]]  name, role, count, region, up_mbit, down_mbit,
//	           latency_ms (one-way, own link), join_s, join_span_s, leave_s
//	[[latency]] a, b, ms         one-way latency between two regions
//	[partition] at_s, heal_s, side_a = [group names]
//	[[expect]] one check each, optionally group = "...":
//	           all_complete, p50_over_tmin_max, p99_over_tmin_max,
//	           complete_s_max, leecher_throughput_min_fraction_of_seeder_uplink,
//	           byzantine_cut_off (+ byzantine_max_blocks_per_leecher),
//	           dht_median_hops_max, dht_lookup_p50_max_s, partition_heals
//
// Roles: seeder (holds the content from the start), leecher and
// late-joiner (fetch when they join), churner (a leecher that leaves at
// leave_s), byzantine (holds the content, serves every raw leaf with a
// byte flipped), lookup (only looks the content's providers up in the
// DHT, recording time and hops).
//
// # Timeline
//
// The first seeder starts alone and is everyone's bootstrap peer; every
// other non-fetcher starts next; seeders and byzantine nodes share the
// content; settle_s passes; then the plan's clock starts (t0) and each
// fetcher starts its node and its fetch at join_s (spread over
// join_span_s). A failed fetch is started again a second later, as a
// user would. Nodes leave at leave_s; a partition drops packets between
// its sides (a 24 h simnet latency) and refuses connections across it (a
// libp2p ConnectionGater) from at_s to heal_s.
//
// # Files
//
//	plan.go        Plan, groups, expectations; LoadPlan, ParsePlan, Validate, Scale
//	net.go         the simnet network, hosts, latency, partition and gater
//	light.go       light hosts' transport, listener and connections
//	lightstream.go a light connection's streams (network.MuxedStream)
//	lightlink.go   the light links: per-node shapers, latency, windows
//	members.go     what both runners share: a plan's nodes (layoutNodes), their
//	               records (member) and how records become Results
//	runner.go      Run: the timeline, fetches, sampling, verification
//	docker.go      RunDocker: the plan's nodes as containers, driven by the CLI
//	dockerlink.go  a container's link shaped from the host: tc token buckets on
//	               both ends of its veth, latency, partition rules, counters
//	delay_*.go     the latency: packets held in an NFQUEUE the runner serves
//	nfqueue.go     the nfnetlink queue's messages (parsing and building)
//	lookup.go      DHT lookups with hops from kad-dht query events
//	byzantine.go   the corrupting store of byzantine nodes
//	heapprof.go    SHOAL_SIM_HEAPPROF: a heap profile at a run's peak
//	results.go     Results (results.json), TMin (Kumar–Ross), percentiles
//	slots.go       upload-slot use (sampled every 250 ms) and the upload split per node
//	expect.go      checking expectations
//	report.go      report.html and the terminal summary
//	swarm.go       how the content got around: seeders' copies, wire ÷
//	               content, top flows (and their graph)
//	svg.go         the inline SVG charts
//	wallclock_*.go the real clock, read around synctest's fake one
//	cluster.go     NewCluster: n nodes on the simulated network for tests,
//	               with Kill, Restart, Partition and Heal
//	loopback.go    LoopbackNode: one real node on 127.0.0.1 TCP for tests
//	               that reach it from outside (HTTP API, Kubo's RPC)
//
// sim imports node (and blockstore, content for the in-memory store); only
// cmd/shoal imports sim, and tests (for NewCluster and LoopbackNode).
package sim
