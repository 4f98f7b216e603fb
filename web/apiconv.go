package web

import (
	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/node"
)

// The API speaks package api's types; the node speaks its own. These
// functions are the one place one becomes the other (TestAPIConvJSON
// checks that each keeps every field).

func apiInfo(i node.Info) apiv1.Info {
	return apiv1.Info{
		ID: i.ID, Addresses: i.Addresses, Started: i.Started, DHTMode: i.DHTMode, Network: i.Network,
		RoutingTableSize: i.RoutingTableSize, StoreBlocks: i.StoreBlocks, StoreBytes: i.StoreBytes,
		CapacityBytes: i.CapacityBytes, ProvideQueue: i.ProvideQueue,
	}
}

func apiPeer(p node.PeerInfo) apiv1.Peer {
	return apiv1.Peer{ID: p.ID, Address: p.Address, Transport: p.Transport, LatencyMS: p.LatencyMS,
		BytesIn: p.BytesIn, BytesOut: p.BytesOut, Score: p.Score}
}

func apiRoot(r node.RootInfo) apiv1.Root {
	return apiv1.Root{CID: r.CID, Name: r.Name, Size: r.Size, Pinned: r.Pinned, Providing: r.Providing, LastProvided: r.LastProvided}
}

func apiTransfer(t node.TransferInfo) apiv1.Transfer {
	peers := mapSlice(t.Peers, func(p node.PeerContribution) apiv1.PeerContribution {
		return apiv1.PeerContribution{Peer: p.Peer, Bytes: p.Bytes, Blocks: p.Blocks}
	})
	return apiv1.Transfer{
		ID: t.ID, CID: t.CID, Name: t.Name, Source: t.Source, State: t.State, Phase: t.Phase,
		Providers: t.Providers, Lookups: t.Lookups, ElapsedSeconds: t.ElapsedSeconds, Pinned: t.Pinned,
		Size: t.Size, BytesDone: t.BytesDone, BytesReceived: t.BytesReceived, Blocks: t.Blocks,
		RateBps: t.RateBps, ETASeconds: t.ETASeconds, DuplicateRatio: t.DuplicateRatio,
		Started: t.Started, Finished: t.Finished, Error: t.Error, Peers: peers,
	}
}

func apiGC(r node.GCResult) apiv1.GCResult { return apiv1.GCResult{Removed: r.Removed, Bytes: r.Bytes} }

func apiVerifyReport(r node.VerifyReport) apiv1.VerifyReport {
	inc := mapSlice(r.Incomplete, func(p node.IncompletePin) apiv1.IncompletePin {
		return apiv1.IncompletePin{CID: p.CID, Blocks: p.Blocks, Missing: p.Missing}
	})
	return apiv1.VerifyReport{Checked: r.Checked, Bytes: r.Bytes, Corrupt: r.Corrupt, Vanished: r.Vanished,
		Pins: r.Pins, Incomplete: inc, Relisted: r.Relisted}
}

// mapSlice converts every element of a node list; nil stays nil (and
// encodes as null, as the node's own list did).
func mapSlice[T, U any](in []T, f func(T) U) []U {
	if in == nil {
		return nil
	}
	out := make([]U, 0, len(in))
	for _, v := range in {
		out = append(out, f(v))
	}
	return out
}
