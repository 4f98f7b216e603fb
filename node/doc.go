// Package node assembles one running shoal node from its parts — the
// libp2p host, the DHT, the blockstore and the block-exchange protocol —
// and owns its configuration and lifecycle. It holds no protocol logic.
package node
