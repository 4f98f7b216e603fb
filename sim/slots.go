package sim

import (
	"sort"
	"time"
)

// Upload slots as the report shows them. Every slotSampleInterval of the
// run the runner reads each node's upload-slot state (node.UploadSlots)
// and its upload split (node.Traffic); SlotUse and UploadSplit are what
// those samples add up to.

// slotSampleInterval is how often slot state is sampled: well under a
// choke round (10 s) and a fill round (1 s), so a slot held for a
// second shows.
const slotSampleInterval = 250 * time.Millisecond

// maxSlotHolders is how many peers a node's SlotUse names.
const maxSlotHolders = 8

// SlotUse is how one node used its upload slots while the run was
// sampled (its fetch or seeding until the last fetcher finished).
type SlotUse struct {
	// Slots is the regular slots it had (the last sample; the
	// optimistic one is extra).
	Slots int `json:"slots"`
	// Used is the mean share of its Slots+1 slots that were held by an
	// unchoked swarm peer: 1 is every slot taken the whole time.
	Used float64 `json:"used"`
	// Served is the mean share of its Slots+1 slots held by a peer that
	// was sent block bytes while it held them (the server counts a batch
	// once it is sent, so this is by holder over the run, not per
	// sample): Used − Served is slots given to peers that took nothing.
	Served float64 `json:"served"`
	// Busy is the share of samples in which at least one slot was held.
	Busy float64 `json:"busy"`
	// OriginS is the seconds origin mode (least-sent first) was on.
	OriginS float64 `json:"origin_s"`
	// SampledS is the seconds sampled.
	SampledS float64 `json:"sampled_s"`
	// Holders are the peers that held a slot longest, longest first.
	Holders []SlotHolder `json:"holders,omitempty"`
}

// SlotHolder is one peer and how long it held a slot of a node.
type SlotHolder struct {
	Peer    string  `json:"peer"`
	Seconds float64 `json:"s"`
	// SentMiB is the block bytes sent to it while it held the slot.
	SentMiB float64 `json:"sent_mib"`
}

// UploadSplit is a node's upload by protocol (the wire bytes, BytesUp,
// are the sum of these plus QUIC, DHT and identify).
type UploadSplit struct {
	BlockBytes   int64 `json:"block_bytes"`   // block data served over Bitswap
	BitswapBytes int64 `json:"bitswap_bytes"` // every Bitswap frame, blocks included
	SwarmBytes   int64 `json:"swarm_bytes"`   // the swarm extension's messages
	SwarmMsgs    int64 `json:"swarm_msgs"`
	// BlockBytesDown is block data received over Bitswap, duplicates
	// that arrived after the fetch closed included.
	BlockBytesDown int64 `json:"block_bytes_down,omitempty"`
	// LinkUse is the wire bytes up ÷ what the uplink could carry in the
	// time sampled (SlotUse.SampledS): 1 is an uplink busy throughout.
	LinkUse float64 `json:"link_use"`
}

// slotTally accumulates one node's slot samples; guarded by its member's mu.
type slotTally struct {
	samples, busy int
	used          float64
	origin        int
	slots         int
	held          map[string]int    // peer ID → samples unchoked
	sent          map[string]uint64 // peer ID → block bytes sent to it, at the last sample
	sentHeld      map[string]uint64 // peer ID → block bytes sent to it while it held a slot
}

// add records one sample: the regular slots, the unchoked peers with the
// block bytes sent to each so far (sentTo, in the same order; nil when
// unknown), and whether origin mode is on.
func (t *slotTally) add(slots int, unchoked []string, sentTo []uint64, origin bool) {
	t.samples++
	t.slots = slots
	if t.sent == nil {
		t.sent, t.sentHeld = map[string]uint64{}, map[string]uint64{}
	}
	if len(unchoked) > 0 {
		t.busy++
		t.used += min(1, float64(len(unchoked))/float64(slots+1))
		for i, p := range unchoked {
			if i < len(sentTo) {
				// A swarm peer is sent blocks only while it holds a
				// slot (and while a batch started then goes out), so
				// the bytes since its last sample, or since the start,
				// were sent for this hold.
				if sentTo[i] > t.sent[p] {
					t.sentHeld[p] += sentTo[i] - t.sent[p]
				}
				t.sent[p] = sentTo[i]
			}
		}
	}
	if origin {
		t.origin++
	}
	if t.held == nil {
		t.held = map[string]int{}
	}
	for _, p := range unchoked {
		t.held[p]++
	}
}

// use is the tally as a SlotUse, with peers named by names (peer ID →
// node name); nil when nothing was sampled.
func (t *slotTally) use(names map[string]string) *SlotUse {
	if t.samples == 0 {
		return nil
	}
	dt := slotSampleInterval.Seconds()
	servedSamples := 0
	for p, n := range t.held {
		if t.sentHeld[p] > 0 {
			servedSamples += n
		}
	}
	u := &SlotUse{
		Slots: t.slots, Used: t.used / float64(t.samples),
		Served: min(1, float64(servedSamples)/float64(t.samples*(t.slots+1))), Busy: float64(t.busy) / float64(t.samples),
		OriginS: float64(t.origin) * dt, SampledS: float64(t.samples) * dt,
	}
	for p, n := range t.held {
		u.Holders = append(u.Holders, SlotHolder{Peer: nameOr(names, p), Seconds: float64(n) * dt, SentMiB: mib(int64(t.sentHeld[p]))})
	}
	sort.Slice(u.Holders, func(i, j int) bool {
		a, b := u.Holders[i], u.Holders[j]
		if a.Seconds != b.Seconds {
			return a.Seconds > b.Seconds
		}
		return a.Peer < b.Peer
	})
	if len(u.Holders) > maxSlotHolders {
		u.Holders = u.Holders[:maxSlotHolders]
	}
	return u
}

// sampleSlots records every running node's slot state once.
func (r *run) sampleSlots() {
	for _, sn := range r.nodes {
		sn.mu.Lock()
		if sn.n != nil && !sn.left {
			st := sn.n.UploadSlots()
			sn.slots.add(st.Slots, st.Unchoked, st.SentTo, st.Origin)
		}
		sn.mu.Unlock()
	}
}

// GroupSlots is one group's slot use and upload split, summed or averaged
// over its nodes.
type GroupSlots struct {
	Name                 string
	Nodes                int     // nodes with slot samples
	Used, Served         float64 // means over those nodes
	Busy, LinkUse        float64
	Wire, Blocks, Swarm  int64 // bytes up, summed
	Bitswap              int64
	Holders, HoldersMean float64 // distinct holders per node (≤ maxSlotHolders), mean
}

// SlotSummaries is the slot use per group (groups without samples left out).
func (res *Results) SlotSummaries() []GroupSlots {
	var out []GroupSlots
	for _, g := range res.groups() {
		s := GroupSlots{Name: g}
		for _, n := range res.Nodes {
			if n.Group != g || n.Slots == nil {
				continue
			}
			s.Nodes++
			s.Used += n.Slots.Used
			s.Served += n.Slots.Served
			s.Busy += n.Slots.Busy
			s.Holders += float64(len(n.Slots.Holders))
			s.Wire += n.BytesUp
			if u := n.Upload; u != nil {
				s.LinkUse += u.LinkUse
				s.Blocks += u.BlockBytes
				s.Bitswap += u.BitswapBytes
				s.Swarm += u.SwarmBytes
			}
		}
		if s.Nodes == 0 {
			continue
		}
		k := float64(s.Nodes)
		s.Used, s.Served, s.Busy, s.LinkUse, s.HoldersMean = s.Used/k, s.Served/k, s.Busy/k, s.LinkUse/k, s.Holders/k
		out = append(out, s)
	}
	return out
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
