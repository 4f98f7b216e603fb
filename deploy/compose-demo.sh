#!/bin/sh
# compose-demo.sh: start the compose swarm (a bootstrap node and N peers),
# share a random file on the bootstrap node, fetch it on every peer at once
# and compare checksums. Needs the image (make image) and docker-compose v1
# or `docker compose` v2.
#
#   deploy/compose-demo.sh              # N=4 peers, 32 MiB
#   N=8 SIZE_MIB=128 deploy/compose-demo.sh
#   deploy/compose-demo.sh down         # stop and delete everything
set -eu

here=$(cd "$(dirname "$0")" && pwd)
N=${N:-4}
SIZE_MIB=${SIZE_MIB:-32}
PROJECT=${PROJECT:-shoal-demo}
API=http://127.0.0.1:5080

if docker compose version >/dev/null 2>&1; then
	compose() { docker compose -f "$here/compose.yaml" -p "$PROJECT" "$@"; }
elif command -v docker-compose >/dev/null 2>&1; then
	compose() { docker-compose -f "$here/compose.yaml" -p "$PROJECT" "$@"; }
else
	echo "compose-demo: neither 'docker compose' nor 'docker-compose' is installed" >&2
	exit 1
fi

if [ "${1:-}" = down ]; then
	SHOAL_BOOTSTRAP=unused compose down -v
	exit 0
fi

: "${SHOAL_API_TOKEN:=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export SHOAL_API_TOKEN
export SHOAL_BOOTSTRAP=unused # the bootstrap service does not read it

# shoal_in CONTAINER ARGS...: run the CLI inside a container.
shoal_in() { c=$1; shift; docker exec "$c" /shoal "$@" --api "$API"; }

echo "== starting the bootstrap node"
compose up -d bootstrap
boot=$(compose ps -q bootstrap)
i=0
until id=$(shoal_in "$boot" id --json 2>/dev/null | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p') && [ -n "$id" ]; do
	i=$((i + 1))
	[ $i -lt 60 ] || { echo "bootstrap node did not come up; see: docker logs $boot" >&2; exit 1; }
	sleep 0.5
done
export SHOAL_BOOTSTRAP="/dns4/bootstrap/tcp/4040/p2p/$id"
echo "   bootstrap peer: $SHOAL_BOOTSTRAP"

echo "== starting $N peers"
compose up -d --no-recreate --scale peer="$N" peer
peers=$(compose ps -q peer)
for p in $peers; do
	i=0
	until shoal_in "$p" id >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 60 ] || { echo "peer $p did not come up; see: docker logs $p" >&2; exit 1; }
		sleep 0.5
	done
done

echo "== sharing a $SIZE_MIB MiB random file on the bootstrap node"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -c $((SIZE_MIB * 1048576)) /dev/urandom >"$tmp/demo.bin"
want=$(sha256sum <"$tmp/demo.bin" | cut -d' ' -f1)
tar -C "$tmp" --owner=65532 --group=65532 -cf - demo.bin | docker cp - "$boot:/data/"
cid=$(shoal_in "$boot" share /data/demo.bin | tail -n 1)
echo "   $cid"

echo "== fetching it on every peer at once"
start=$(date +%s)
for p in $peers; do
	shoal_in "$p" fetch "$cid" -o /data/demo.bin --force >"$tmp/$p.log" 2>&1 &
done
fail=0
wait || true
for p in $peers; do
	got=$(docker cp "$p:/data/demo.bin" - 2>/dev/null | tar -xOf - | sha256sum | cut -d' ' -f1)
	if [ "$got" = "$want" ]; then
		echo "   $(docker inspect -f '{{.Name}}' "$p"): $(tail -n 1 "$tmp/$p.log")"
	else
		echo "   $(docker inspect -f '{{.Name}}' "$p"): FAILED ($(tail -n 1 "$tmp/$p.log"))" >&2
		fail=1
	fi
done
echo "   all peers done in $(($(date +%s) - start)) s; sha256 $want"

echo
echo "dashboard: http://127.0.0.1:${SHOAL_DASHBOARD_PORT:-5080}/  (token: $SHOAL_API_TOKEN)"
echo "stop:      $0 down"
exit $fail
