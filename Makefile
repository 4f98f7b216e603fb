# shoal's build, test and benchmark entry points. `make test` is what CI runs.
GO          ?= go
GOBIN       := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
STATICCHECK_VERSION := v0.7.0
FUZZTIME    ?= 10s

.PHONY: all build demo test lint tools bench bench-store fuzz fuzz-ci clean image cluster-image

all: build

build:
	$(GO) build -o bin/shoal ./cmd/shoal

# demo: the README's first command. It says what the silent first build is
# doing before it starts, then runs the local swarm.
demo:
	@echo "building shoal (the first build downloads and compiles dependencies, a few minutes)…"
	$(GO) build -o bin/shoal ./cmd/shoal
	bin/shoal demo

tools:
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# lint: formatting, vet, staticcheck and a tidy go.mod.
lint: tools
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt: these files need 'gofmt -w':"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	@$(GO) mod tidy -diff || (echo "go.mod/go.sum are not tidy: run 'go mod tidy'"; exit 1)

# test: everything CI checks. racetest is `go test -race` that runs a
# package once more only when its test binary died inside the race
# detector's own runtime (no test failed; internal/racetest says why).
test: lint
	$(GO) run ./internal/racetest -timeout 20m ./...

# bench: the headline benchmarks of BENCHMARKS.md in one run — import vs
# sha256 and boxo; block exchange vs the raw libp2p stream and boxo's
# Bitswap (TCP, QUIC; 1 and 3 seeders; CPU ms/MiB); end to end through
# daemons with `shoal fetch -o` (peak RSS of the leecher from VmHWM, disk
# written per byte fetched from /proc/PID/io), gateway TTFB, and a 1 MiB
# gateway Range of a peer-held 1 GiB file — then one table of them against
# the goals of issue 13 (regress -table), then a comparison with
# bench/baseline.txt that fails on a drop of more than 20%. After a
# deliberate change: cp out/bench.txt bench/baseline.txt
# Knobs: SHOAL_BENCH_MIB (exchange and fetch size, default 256; set, the
# baseline comparison is skipped: its sizes differ), SHOAL_BENCH_RANGE_MIB
# (the gateway Range file, default 1024), BENCH_COUNT (samples, default 3).
# A quick check that it all runs:
#   make bench SHOAL_BENCH_MIB=32 SHOAL_BENCH_RANGE_MIB=64 BENCH_COUNT=1
BENCH_COUNT ?= 3
bench:
	@mkdir -p out
	$(GO) test -run '^$$' -bench 'BenchmarkImportHashOnly|BenchmarkImportIntoMemory' -benchtime 3x -timeout 30m ./content/ | tee out/bench.txt
	$(GO) test -run '^$$' -bench BenchmarkExchange -benchtime 1x -count $(BENCH_COUNT) -timeout 60m ./protocol/ | tee -a out/bench.txt
	$(GO) test -run '^$$' -bench 'BenchmarkDaemon|BenchmarkGatewayTTFB' -benchtime 1x -count $(BENCH_COUNT) -timeout 60m ./cmd/shoal/ | tee -a out/bench.txt
	$(GO) test -run '^$$' -bench BenchmarkGatewayRange -benchtime 1x -count 1 -timeout 30m ./cmd/shoal/ | tee -a out/bench.txt
	@echo; $(GO) run ./bench/regress -table out/bench.txt; echo
	@if [ -n "$(SHOAL_BENCH_MIB)" ]; then \
		echo "SHOAL_BENCH_MIB=$(SHOAL_BENCH_MIB): sizes differ from bench/baseline.txt's, so no comparison with it"; \
	else $(GO) run ./bench/regress bench/baseline.txt out/bench.txt; fi

# bench-store: the block store engine comparison (long).
bench-store:
	$(GO) test -run '^$$' -bench . -benchtime 3x -timeout 60m ./blockstore/

# fuzz: every Fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# fuzz-ci: every Fuzz target briefly (2000 inputs each: 0.2–13 s here), for
# CI. Crashers land in the package's testdata/fuzz/ and fail the run; commit
# them as regressions. A count, not a duration: with a duration, Go 1.26's
# fuzz coordinator can fail a target with a bare "context deadline
# exceeded" as the time runs out (golang/go#75804, fixed in Go 1.27) —
# seen here on FuzzResolvePath with no failing input.
fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=2000x

# image: the container image shoal:dev (static binary on scratch; see Dockerfile).
IMAGE ?= shoal:dev
image:
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags '-s -w' -o bin/linux/shoal ./cmd/shoal
	DOCKER_BUILDKIT=0 docker build -q -t $(IMAGE) .

# cluster-image: ipfs-cluster:v1.1.6-local, a stand-in for the
# ipfs/ipfs-cluster:v1.1.6 image where no registry is reachable (see
# deploy/image/cluster/Dockerfile). Builds IPFS Cluster from the Go module
# proxy in a temporary module (about 7-12 min on 2 cores); needs Debian's
# busybox-static for the image's shell.
CLUSTER_VERSION ?= v1.1.6
cluster-image:
	@test -x /bin/busybox || { echo "cluster-image: install busybox-static (apt-get install busybox-static)"; exit 1; }
	mkdir -p bin/cluster
	tmp=$$(mktemp -d) && cd $$tmp && $(GO) mod init clusterbuild >/dev/null 2>&1 && \
	  GOFLAGS=-mod=mod $(GO) get github.com/ipfs-cluster/ipfs-cluster/cmd/ipfs-cluster-service@$(CLUSTER_VERSION) github.com/ipfs-cluster/ipfs-cluster/cmd/ipfs-cluster-ctl@$(CLUSTER_VERSION) && \
	  CGO_ENABLED=0 GOOS=linux GOFLAGS=-mod=mod $(GO) build -trimpath -ldflags '-s -w' -o $(CURDIR)/bin/cluster/ \
	    github.com/ipfs-cluster/ipfs-cluster/cmd/ipfs-cluster-service github.com/ipfs-cluster/ipfs-cluster/cmd/ipfs-cluster-ctl && \
	  rm -rf $$tmp
	cp /bin/busybox deploy/image/cluster/entrypoint.sh bin/cluster/
	cp deploy/image/rootfs/etc/passwd deploy/image/rootfs/etc/group bin/cluster/
	DOCKER_BUILDKIT=0 docker build -q -t ipfs-cluster:$(CLUSTER_VERSION)-local -f deploy/image/cluster/Dockerfile bin/cluster

clean:
	rm -rf bin
