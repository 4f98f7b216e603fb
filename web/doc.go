// Package web owns shoal's HTTP surfaces: the JSON API under /api/v1 (the
// one the CLI and the dashboard use) and the read-only gateway
// (/ipfs/{cid}[/path]). It reaches the node only through the Node
// interface declared in node.go, which *node.Node satisfies, and imports
// package content for its data types and UnixFS decoding.
//
// Files:
//   - node.go: the Node interface, sentinel errors and their HTTP statuses.
//   - parse.go: CID and path parsing shared by the API and the gateway.
//   - api.go: APIConfig, NewAPI and its routes, JSON responses and errors.
//   - api_handlers.go: one handler per API route; api_swarm.go: GET
//     /api/v1/swarm (the swarm view) and /api/v1/cluster (the IPFS
//     Cluster peer's pins).
//   - guard.go: the Host, Origin and bearer-token checks in front of the
//     API (rules in internal/httpguard, shared with kuborpc), answered as
//     the API's JSON errors.
//   - events.go: GET /api/v1/events, and serveEvents, the one loop of
//     periodic snapshots as server-sent events (this route and the
//     dashboard's).
//   - tarstream.go: a directory DAG written as a streaming tar.
//   - gateway.go: GatewayConfig, NewGateway and the /ipfs/ handler
//     (files with Range, directory listings, ?format=raw and ?format=car);
//     a Range is read as ServeContent will (requestedBytes) and told to
//     the file (node.File.Expect), so only its blocks are fetched, and the
//     content type is sniffed without a whole-DAG fetch. A request reads
//     under the root its path names (node.WithReadRoot): the path walk,
//     the kind check and the read are one node read session, with one
//     provider lookup (the API's cat, get and stat do the same).
//   - car.go: a streaming CAR v1 writer (header, then each block once, in
//     depth-first order).
//   - listen.go: ServerConfig and NewServer, the http.Server every
//     listener runs: header and idle timeouts and a connection cap that
//     closes the longest-idle connection to make room.
//   - site.go: NewSite, the API plus the dashboard and /metrics behind the
//     same guard (what the daemon serves on its API address).
//   - dashboard.go: the dashboard's event stream and bandwidth history;
//     assets/: the page itself (go:embed, no outside links, hand-drawn SVG).
//   - metrics.go: the Prometheus collector (shoal_ series, read from the
//     node's own counters at scrape time) beside libp2p's own host and
//     resource-manager metrics.
//
// Security: state-changing API routes accept only POST; a request whose
// Origin is not the API's own, or whose Host is not the API's address, is
// refused with 403; a bearer token is required when configured (and the
// configuration must carry one when the API is not on loopback).
package web
