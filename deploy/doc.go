// Package deploy holds shoal's deployment files and the tests that run them
// against real hosts. It has no library code.
//
// Files:
//   - compose.yaml, compose-demo.sh: a bootstrap node and N peers on a
//     private Docker network; the script shares a file on one node and
//     fetches it on all the others.
//   - compose-fleet.yaml: three shoal daemons, each with an
//     ipfs-cluster-service in its network namespace driving it through
//     the Kubo RPC on loopback (IPFS Cluster decides what lives where).
//   - shoal.service: a sandboxed systemd unit.
//   - k8s/: a DaemonSet with a bootstrap Service (and its StatefulSet);
//     fleet.yaml, the fleet as a StatefulSet of shoal + cluster pods.
//   - image/: the files the Dockerfile (at the module root) copies besides
//     the binary.
//
// Tests:
//   - docker_test.go: the harness — gets the image built from the
//     Dockerfile once per content (internal/dockercli.CachedImage, shared
//     with sim's docker test), starts containers on a user-defined network
//     with fixed addresses, drives the CLI through `docker exec`, cleans
//     up. Every wait ends 45 s before the test binary's deadline, so a run
//     out of time fails naming what it waited for and still cleans up.
//   - swarm_test.go: multi-host scenarios — share and fetch on six nodes
//     through DHT lookups, a seeder killed and another paused mid-transfer,
//     a network partition and its healing, a rolling restart.
//   - manifests_test.go: structural checks of the Kubernetes manifests,
//     the fleet's compose file (and `docker-compose config` where
//     installed) and the systemd unit (no Kubernetes runs here). The
//     fleet itself runs on real processes in cmd/shoal's
//     TestClusterReplicatesOnShoal.
//
// The Docker tests skip, saying why, when `docker info` fails, and fail
// when the image cannot be built. SHOAL_DEPLOY_IMAGE=name:tag uses an
// existing image instead of building one.
package deploy
