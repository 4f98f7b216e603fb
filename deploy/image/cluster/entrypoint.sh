#!/bin/sh
# Initialise the peer on first start, then run ipfs-cluster-service with
# the container's arguments (what the ipfs/ipfs-cluster image does).
set -e
if [ ! -f "$IPFS_CLUSTER_PATH/service.json" ]; then
	ipfs-cluster-service init --consensus "$IPFS_CLUSTER_CONSENSUS"
fi
exec ipfs-cluster-service "$@"
