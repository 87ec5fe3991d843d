# vcpe — run `make help` for the targets.
SHELL      := /bin/bash
GO         ?= go
BIN        := bin
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS    := -s -w -X main.version=$(VERSION)
CMDS       := $(notdir $(wildcard cmd/vcpe cmd/vcped cmd/vcpe-hub cmd/vcpe-lab))
DIST       ?= dist
PKG_OUT    := $(abspath $(DIST))
STAGE      := $(PKG_OUT)/.stage
HOST_ARCH  := $(shell $(GO) env GOHOSTARCH)
PKG_ARCHS  ?= amd64 arm64
PKG_VERSION ?= $(shell deploy/version.sh 2>/dev/null || echo 0.0.0~dev)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
# The unit and privileged tiers build without the daemons' profile (PGO
# changes speed, not behaviour; it would compile the dependency tree a second
# time). The end-to-end tier builds the daemons as they ship, with it.
TEST_FLAGS ?= -count=1 -p 2 -timeout 15m
# The end-to-end tier runs one lab test at a time; together they take about
# 20 minutes on 2 CPUs, so its timeout is its own.
E2E_TIMEOUT ?= 45m
# The end-to-end tier's long tests that mostly wait (kills at 30 points, planted
# diag faults, packages) run side by side, after the others, this many at once.
E2E_PARALLEL ?= 3
export CGO_ENABLED = 0

# System commands the tests, the lab and the benchmarks run, and the Debian
# packages that provide them.
SYSTEM_DEPS := ip:iproute2 iptables:iptables nft:nftables tc:iproute2 ping:iputils-ping \
               iperf3:iperf3 tmux:tmux ss:iproute2 tcpdump:tcpdump systemd-analyze:systemd ethtool:ethtool \
               rpm:rpm rpmlint:rpmlint ansible-playbook:ansible-core
# Files whose absence means a package is missing: the PostgreSQL server the
# store tests start (Debian keeps initdb off PATH).
SYSTEM_FILES := /usr/lib/postgresql/*/bin/initdb:postgresql

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build static binaries into bin/
	@mkdir -p $(BIN)
	@for c in $(CMDS); do \
		echo "go build -o $(BIN)/$$c ./cmd/$$c"; \
		$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/$$c ./cmd/$$c || exit 1; \
	done

.PHONY: deps
deps: ## Install the system packages tests and the lab need (as root), or name the missing ones
	@missing=""; for d in $(SYSTEM_DEPS); do \
		command -v $${d%%:*} >/dev/null 2>&1 || missing="$$missing $${d##*:}"; \
	done; \
	for d in $(SYSTEM_FILES); do \
		compgen -G "$${d%%:*}" >/dev/null || missing="$$missing $${d##*:}"; \
	done; \
	missing=$$(echo $$missing | tr ' ' '\n' | sort -u | tr '\n' ' '); \
	if [ -n "$$(echo $$missing)" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing:$$missing"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
		else \
			echo "missing system packages:$$missing — install them (apt-get install$$missing) or run as root: sudo make $(MAKECMDGOALS)" >&2; exit 1; \
		fi; \
	fi

# The end-to-end tier (the namespace lab, real binaries, failover budgets)
# runs after the rest, alone, so other packages' tests do not load the
# machine under it.
E2E_PKGS := ./cmd/vcpe-lab/...

.PHONY: test
test: deps ## Run every test; privileged ones need root (sudo make test)
	@export VCPE_REQUIRE_PRIVILEGED=$$( [ "$$(id -u)" = 0 ] && echo 1 ); rc=0; \
	echo "go test $(TEST_FLAGS) (unit and privileged tiers; GOFLAGS=-pgo=off)"; \
	GOFLAGS="$$GOFLAGS -pgo=off" $(GO) test $(TEST_FLAGS) $$($(GO) list ./... | grep -v '/cmd/vcpe-lab') || rc=1; \
	echo "go test $(TEST_FLAGS) -p 1 -parallel $(E2E_PARALLEL) -timeout $(E2E_TIMEOUT) $(E2E_PKGS) (end-to-end tier)"; \
	$(GO) test $(TEST_FLAGS) -p 1 -parallel $(E2E_PARALLEL) -timeout $(E2E_TIMEOUT) $(E2E_PKGS) || rc=1; \
	exit $$rc

.PHONY: vet
vet: ## go vet, for Linux and for a non-Linux target (tests included)
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...

.PHONY: check
check: vet test ## vet + tests

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 60s)
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-60s} $$pkg || exit 1; \
		done; \
	done

.PHONY: bench
bench: deps ## Encrypted throughput side by side: raw veth, upstream wireguard-go, vcped (root; BENCH_QUICK=1 short pass; BENCH_FLAGS=-help lists options)
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/vcpe-bench ./cmd/vcpe-bench
	BENCH_QUICK=$(BENCH_QUICK) $(BIN)/vcpe-bench -out bench-results $(BENCH_FLAGS)

# The daemons are built with profile-guided optimisation from the
# default.pgo beside their main package (go build's -pgo=auto). make pgo
# measures them under make bench's load, one run of every case, and writes
# the merged profile for both; commit it with the change that moved the
# hot path. Stale profiles still help, and never break a build.
PGO_DIR := $(BIN)/pgo
.PHONY: pgo
pgo: deps ## Profile vcped and vcpe-hub under the bench's load and write their default.pgo (root; minutes)
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/vcpe-bench ./cmd/vcpe-bench
	rm -rf $(PGO_DIR)
	$(BIN)/vcpe-bench -runs 1 -variants vcpe -cpu-profile $(PGO_DIR) -out $(PGO_DIR)/report
	$(GO) tool pprof -proto $(PGO_DIR)/*.pprof > $(PGO_DIR)/merged.pgo
	cp $(PGO_DIR)/merged.pgo cmd/vcped/default.pgo
	cp $(PGO_DIR)/merged.pgo cmd/vcpe-hub/default.pgo

.PHONY: demo
demo: deps build ## The whole system in network namespaces: hub, cloud, two sites, tunnels, probes
	@$(BIN)/vcpe-lab down >/dev/null 2>&1 || true
	$(BIN)/vcpe-lab up

.PHONY: demo-down
demo-down: build ## Remove every trace of the demo lab
	$(BIN)/vcpe-lab down

.PHONY: clean-netns
clean-netns: ## Remove namespaces left by a killed test run (only vcpe's own, vcpet-*)
	@for n in $$(ip netns list | awk '/^vcpet-/ {print $$1}'); do \
		ip netns pids $$n | xargs -r kill -9; ip netns del $$n && echo "removed $$n"; \
	done

.PHONY: packages
packages: ## deb and rpm packages of vcpe and vcpe-hub for amd64 and arm64 into dist/ (nfpm; PKG_ARCHS=amd64 for one)
	@rm -rf $(STAGE) $(PKG_OUT)/vcpe*.deb $(PKG_OUT)/vcpe*.rpm && mkdir -p $(STAGE)
	@for a in $(PKG_ARCHS) $(if $(filter $(HOST_ARCH),$(PKG_ARCHS)),,$(HOST_ARCH)); do for c in vcpe vcped vcpe-hub; do \
		echo "GOARCH=$$a go build -o $(STAGE)/$$a/$$c ./cmd/$$c"; \
		GOARCH=$$a $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(STAGE)/$$a/$$c ./cmd/$$c || exit 1; \
	done; done
	@# Man pages and completions come from the commands themselves.
	@export SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH); h=$(STAGE)/$(HOST_ARCH); \
	$$h/vcpe gen-docs --man $(STAGE)/man/vcpe --completions $(STAGE)/completions && \
	$$h/vcped gen-docs --man $(STAGE)/man/vcpe --completions $(STAGE)/completions && \
	$$h/vcpe-hub gen-docs --man $(STAGE)/man/vcpe-hub --completions $(STAGE)/completions
	@cd deploy/tools && $(GO) build -o $(STAGE)/vcpe-package ./cmd/vcpe-package
	@cd deploy/tools && for a in $(PKG_ARCHS); do for p in vcpe vcpe-hub; do for f in deb rpm; do \
		VERSION=$(PKG_VERSION) ARCH=$$a ROOT=$(CURDIR) STAGE=$(STAGE) SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) \
			$(STAGE)/vcpe-package --config ../nfpm/$$p.yaml --packager $$f --target $(PKG_OUT) || exit 1; \
	done; done; done
	@rm -rf $(STAGE)
	@ls -l $(PKG_OUT)

.PHONY: clean
clean: ## Remove build output
	rm -rf $(BIN) $(DIST)
