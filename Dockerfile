# shoal's container image: one static binary on an empty base, nothing to
# pull. Build it with `make image` (which compiles bin/linux/shoal first):
#
#   CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags '-s -w' -o bin/linux/shoal ./cmd/shoal
#   docker build -t shoal:dev .
#
# Run:   docker run -d -v shoal-data:/data -p 4040:4040/tcp -p 4040:4040/udp shoal:dev
# CLI:   docker exec <container> /shoal id
#
# The home (key, config, blocks, pins) is the volume /data. libp2p listens
# on every interface (port 4040 TCP and UDP/QUIC); the API, dashboard and
# gateway stay on the container's loopback unless you pass
# `--api-addr 0.0.0.0:5080` with the token in SHOAL_API_TOKEN (the daemon
# refuses a non-loopback API without a token). See docs/deploying.md.
FROM scratch

# A passwd entry so the unprivileged user has a name and a home.
COPY deploy/image/rootfs/etc/passwd deploy/image/rootfs/etc/group /etc/
# /data and /tmp must exist and belong to the user: a named volume mounted
# on /data starts as a copy of this directory, owner included.
COPY --chown=65532:65532 deploy/image/rootfs/data/ /data/
COPY --chown=65532:65532 deploy/image/rootfs/tmp/ /tmp/
COPY bin/linux/shoal /shoal

ENV SHOAL_HOME=/data
USER 65532:65532
WORKDIR /data
VOLUME /data
EXPOSE 4040/tcp 4040/udp

# The CLI asks the daemon for its identity: cheap, and only answers once the
# node and its API are up. The daemon, this check and `docker exec ...
# /shoal` all read the token from SHOAL_API_TOKEN.
# An --api-addr on another port needs its own --health-cmd.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/shoal", "id", "--api", "http://127.0.0.1:5080"]

ENTRYPOINT ["/shoal"]
CMD ["daemon"]
