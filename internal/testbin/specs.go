package testbin

// The other projects' commands shoal's tests run, by the name .ci/run and
// `go run ./internal/testbin/build NAME` use.
var (
	// Kubo is Kubo's CLI and daemon, which kuborpc's tests compare the RPC
	// with. The first build is large (48 minutes on a loaded 2-core
	// machine: more than the whole suite's budget), so it runs only when
	// SHOAL_KUBO_BUILD=1 asks for it; the comparison runs wherever the
	// binary is cached.
	Kubo = Spec{
		Name: "kubo-v0.43.0", Module: "github.com/ipfs/kubo", Version: "v0.43.0",
		Commands: []string{"cmd/ipfs"},
		OptIn:    "SHOAL_KUBO_BUILD", Cost: "48 min",
		Rerun: "SHOAL_KUBO_BUILD=1 go test -timeout 90m -run Kubo ./kuborpc/",
	}
	// IPFSCluster is IPFS Cluster's daemon and CLI, which cmd/shoal's
	// fleet tests run shoal behind. Building them took 12 minutes on this
	// project's loaded 2-core machine (go get about 1 min, go build 687 s
	// under nice -n 19 at load 15-22; bench/deploy.md), so the build is
	// opt-in (SHOAL_CLUSTER_BUILD=1, or CI's background build, which the
	// tests wait for); a cached pair is used as is.
	IPFSCluster = Spec{
		Name: "ipfs-cluster-v1.1.6", Module: "github.com/ipfs-cluster/ipfs-cluster", Version: "v1.1.6",
		Commands: []string{"cmd/ipfs-cluster-service", "cmd/ipfs-cluster-ctl"},
		OptIn:    "SHOAL_CLUSTER_BUILD", Cost: "12 min",
		Rerun: "SHOAL_CLUSTER_BUILD=1 go test -timeout 60m -run TestCluster ./cmd/shoal/",
	}
)

// Specs are the specs above by name.
var Specs = map[string]Spec{"kubo": Kubo, "ipfs-cluster": IPFSCluster}
