// Package kuborpc answers the subset of Kubo's HTTP RPC (/api/v0/...)
// that IPFS Cluster's IPFS connector (ipfsconn/ipfshttp) and the Kubo CLI
// use, so a cluster peer or `ipfs --api` can drive a shoal node as if it
// were Kubo 0.43: id, version, pin add/rm/ls/update, block put/get/stat,
// add, cat, repo stat/gc, swarm peers/connect, config show, resolve and
// name resolve. Answers follow Kubo's wire shapes: POST only (other
// methods get 405 with Allow: OPTIONS, POST), one JSON value plus newline
// for single answers, newline-separated JSON values with X-Chunked-Output
// for streams, raw bytes with X-Stream-Output for cat and block get, error
// objects {"Message","Code","Type":"error"} (500, or 400 for a client
// error), and "404 page not found" for commands shoal does not have.
// docs/kubo-rpc.md is the route table and how each route was checked
// against a real Kubo.
//
// Every answer comes from the node's real operations (share, fetch, pin,
// GC, the store's counters); where shoal differs from Kubo (it pins only
// recursively, imports only with the unixfs-v1-2025 profile, has no IPNS)
// the route answers with Kubo's error shape and says so.
//
// Files: server.go (handler, guard, routing, Kubo's framing), args.go
// (query options and arguments), routes_node.go (id, version, swarm, repo,
// config), routes_pin.go (pin), routes_data.go (block, add, cat, resolve).
//
// kuborpc may import node, content, api and internal/httpguard of this
// project, nothing else (no web: the guard's Host, Origin and token rules
// are shoal's API's, shared with web through internal/httpguard and
// answered here in Kubo's error shapes).
package kuborpc
