# gsd — build, test and demo targets. `make demo` and `make test` are the two
# commands the README promises; both install what they need first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO            ?= go
GOBIN         := $(shell $(GO) env GOPATH)/bin
STATICCHECK   := $(GOBIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
GORELEASER_VERSION := v2.18.2
GORELEASER_GO := go1.27.3
GORELEASER    := $(GOBIN)/goreleaser-$(GORELEASER_VERSION)/goreleaser
SUDO          := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests and the sandbox use: Wine and its service
# manager, mingw for the ProcessPrng shim, pywinrm as an independent WinRM
# client, OpenSSH for SSH hosts, iproute2 for network namespaces, zsh and
# fish for the completion scripts, tmux for the live progress in a terminal,
# MIT Kerberos (KDC, kadmin.local, kinit) for the sandbox's realm, and
# python3-gssapi with python3-requests-kerberos for pywinrm over Kerberos.
APT_PACKAGES  := wine wine64 gcc-mingw-w64-x86-64-win32 python3-winrm openssh-server openssh-client iproute2 zsh fish tmux \
                 krb5-kdc krb5-admin-server krb5-user python3-gssapi python3-requests-kerberos
# Node.js runs tree-sitter's PowerShell grammar (npm: tree-sitter-powershell,
# web-tree-sitter) over the agent bootstrap; any node >= 18 with npm does.
GRAMMAR_DIR   := agent/bootstrap/testdata/grammar
FUZZTIME      ?= 30s
# Wine template prefix and the Windows binaries its tests run (never committed).
GSD_WINE_HOME ?= $(HOME)/.cache/gsd/wine
WINE_BIN      := $(CURDIR)/bin/windows

.PHONY: build agent release setup deps tools test check fmt-check vet lint unit windows-build \
        test-wine wine-prefix test-sandbox test-e2e bench-sandbox fuzz bench demo clean \
        test-transport bench-transport bench-plan bench-rollout bench-scale

# The version and commit gsd version names; a release sets them from its tag.
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT        ?= $(shell git rev-parse HEAD 2>/dev/null)
GSD_BIN       ?= bin/gsd
AGENT_EMBED   := cmd/gsd/gsd-agent.exe

## agent: the gsd-agent.exe that build and release embed, built with the
## flags gsd itself uses when it builds the agent from source.
agent:
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags='-s -w' -o $(AGENT_EMBED) ./cmd/gsd-agent

## release: archives of gsd for linux, darwin and windows on amd64 and arm64,
## each with the agent embedded, and SHA256SUMS, in dist/ (GoReleaser, with
## .goreleaser.yaml). A snapshot unless HEAD is tagged; nothing is published.
release: $(GORELEASER)
	GSD_COMMIT=$(COMMIT) $(GORELEASER) release --clean $(if $(shell git describe --exact-match --tags HEAD 2>/dev/null),--skip=publish,--snapshot)

# GoReleaser v2.18.2 needs Go 1.27: the module proxy serves that toolchain
# as a module, so only GoReleaser is built with it; gsd's own builds use
# the local Go.
$(GORELEASER):
	GOTOOLCHAIN=$(GORELEASER_GO) GOFLAGS= GOBIN=$(dir $@) $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)

## build: bin/gsd with the agent embedded, so it works wherever it is copied.
build: agent
	$(GO) build -tags embedagent -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o $(GSD_BIN) ./cmd/gsd

## setup: everything the tests and the demo need on a fresh Debian machine.
setup: deps tools

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	command -v node >/dev/null && command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@[ -d $(GRAMMAR_DIR)/node_modules/tree-sitter-powershell ] || \
	  npm ci --ignore-scripts --no-audit --no-fund --prefix $(GRAMMAR_DIR) >/dev/null
	$(GO) mod download

tools: $(STATICCHECK)

$(STATICCHECK):
	GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## test: the whole suite, as CI runs it.
test: setup check unit windows-build test-wine test-sandbox test-transport test-e2e

check: fmt-check vet lint

fmt-check:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint: tools
	$(STATICCHECK) ./...

# -short: tests that need Wine, sandbox hosts or sshd run in their own
# targets below, once.
unit:
	$(GO) test -short -count=1 ./...

windows-build:
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	GOOS=windows GOARCH=amd64 $(GO) vet ./...

## wine-prefix: a ready template WINEPREFIX (ProcessPrng shim, wineboot done)
## at $(GSD_WINE_HOME)/template; tests and the sandbox copy it.
wine-prefix: deps
	GSD_WINE_HOME=$(GSD_WINE_HOME) sandbox/wine/setup.sh

# The agent's Windows tests under Wine's real service manager. Each test
# binary runs in its own copy of the template prefix (sandbox/wine/goexec.sh).
test-wine: wine-prefix
	rm -rf $(WINE_BIN) && mkdir -p $(WINE_BIN)
	GOOS=windows GOARCH=amd64 $(GO) build -o $(WINE_BIN)/ ./cmd/gsd-agent ./agent/internal/fixture/...
	GSD_REQUIRE_WINE=1 GSD_WINE_HOME=$(GSD_WINE_HOME) GSD_WINE_BIN=$(WINE_BIN) GOOS=windows GOARCH=amd64 \
	  $(GO) test -count=1 -timeout=10m -exec $(CURDIR)/sandbox/wine/goexec.sh ./agent/... ./cmd/gsd-agent/...

# The sandbox: its WS-Management conformance suite with two independent
# clients (masterzen/winrm and Debian's pywinrm) and gsd, the stock way in
# (HTTP, NTLM, message encryption) and over HTTP/HTTPS with Basic/NTLM,
# pywinrm over Kerberos against a realm on MIT's KDC (sealed over HTTP,
# bound to the certificate over HTTPS), hostile requests, the bootstrap's PowerShell grammar check, the
# bootstrap and agent on a real host, up/down leaving nothing behind, and
# a short fuzz of the SOAP decoder.
# GSD_REQUIRE_SANDBOX=1 makes a missing prerequisite fail instead of skip.
test-sandbox: wine-prefix
	GSD_REQUIRE_SANDBOX=1 GSD_WINE_HOME=$(GSD_WINE_HOME) $(GO) test -count=1 -timeout=10m ./agent/bootstrap/... ./sandbox/...
	$(GO) test -run='^$$' -fuzz=FuzzDecodeEnvelope -fuzztime=10s ./sandbox/wsman

# The WinRM and SSH transports end to end: in-process WinRS servers and
# Debian's sshd on loopback, commands and the agent under Wine; Kerberos
# against a realm on Debian's MIT KDC, each of its failures provoked.
test-transport: wine-prefix
	GSD_REQUIRE_SANDBOX=1 GSD_WINE_HOME=$(GSD_WINE_HOME) $(GO) test -count=1 -timeout=6m ./providers/...
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=10s ./providers/winrm/sealed

## bench-transport: upload throughput to one sandbox host, over loopback
## and over a veth shaped to 1 Gbit/s: gsd (WinRS Send into the agent)
## over HTTP with NTLM message encryption (the default), over HTTP with
## Kerberos message encryption (a realm on MIT's KDC) and over HTTPS, a
## plain HTTPS PUT (the ceiling) and one `echo` command per base64 chunk;
## gsd's peak heap for 200 MB.
bench-transport: wine-prefix
	GSD_REQUIRE_SANDBOX=1 GSD_WINE_HOME=$(GSD_WINE_HOME) $(GO) test -count=1 -run='^$$' -bench=Upload -benchtime=3x -timeout=25m ./providers/winrm

## bench-sandbox: sandbox start time for 1 and 5 hosts; `cmd /c exit 0` over
## WinRM and over SSH to the same host.
bench-sandbox: wine-prefix
	GSD_REQUIRE_SANDBOX=1 GSD_WINE_HOME=$(GSD_WINE_HOME) $(GO) test -count=1 -run='^$$' -bench=. -benchtime=3x ./sandbox

# go test -fuzz takes one package and one target at a time.
# The gsd binary against sandbox hosts: plan, apply, idempotency, reload
# versus restart, saved and stale plans, no secret in any output or on a
# host; rolling upgrades; whole-release rollback, gsd rollback and gsd
# releases; killed agents, cut connections and a killed gsd.
# gsd got the three ways a user gets it (go install through a file-system
# module proxy, a copied make build, an unpacked release archive) planning
# and applying from an empty folder; restart, stop, start, unlock and
# -skip-unreachable; the JSON event stream against its schema; the live
# progress in a real terminal (tmux); the demo over Kerberos (a -kerberos
# sandbox: HTTP sealed from a kinit's cache, HTTPS from a keytab).
test-e2e: wine-prefix $(GORELEASER)
	GSD_E2E=1 GSD_REQUIRE_SANDBOX=1 GSD_WINE_HOME=$(GSD_WINE_HOME) GSD_GORELEASER=$(GORELEASER) $(GO) test -count=1 -timeout=20m -run 'EndToEnd' ./cmd/gsd

## bench-plan: a no-op gsd plan over 1, 5 and 20 sandbox hosts (starts 20).
bench-plan: wine-prefix build
	GSD_E2E=1 GSD_REQUIRE_SANDBOX=1 GSD_WINE_HOME=$(GSD_WINE_HOME) $(GO) test -count=1 -run='^$$' -bench=NoOpPlan -benchtime=3x -timeout=20m ./cmd/gsd

## bench-rollout: rolling upgrades on 6 sandbox hosts: one host's
## unavailability window beside its stop + start (target ≤ stop + start +
## 200 ms), and 3 batches of 2 hosts beside 1 batch (target ≤ 3.3×).
bench-rollout: wine-prefix build
	GSD_E2E=1 GSD_REQUIRE_SANDBOX=1 GSD_WINE_HOME=$(GSD_WINE_HOME) $(GO) test -count=1 -run='^$$' -bench=Rollout -benchtime=3x -timeout=20m ./cmd/gsd

## bench-scale: gsd's own cost per host, without Wine: a no-op plan and a
## one-attribute apply over 1, 10, 100 and 1,000 simulated hosts (the
## sandbox's WS-Management server and NTLM on loopback, reached the default
## way, HTTP with message encryption (GSD_SCALE_HTTPS=1: HTTPS), 20 ms added
## to every answer, the real agent over an in-memory service manager).
## (The benchmark process's own allocations would count the hosts too, so
## gsd's memory is read from its process: rss-MB.)
bench-scale:
	GSD_BENCH_SCALE=1 $(MAKE) --no-print-directory bench BENCH_PKGS=./sandbox/scale BENCHTIME=1x BENCHMEM=

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzLoad -fuzztime=$(FUZZTIME) ./config
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./agent/protocol
	$(GO) test -run='^$$' -fuzz=FuzzParseRecords -fuzztime=$(FUZZTIME) ./agent/eventlog
	$(GO) test -run='^$$' -fuzz=FuzzAccept -fuzztime=$(FUZZTIME) ./providers/winrm/kerberos
	$(GO) test -run='^$$' -fuzz=FuzzComplete -fuzztime=$(FUZZTIME) ./providers/winrm/kerberos
	$(GO) test -run='^$$' -fuzz=FuzzUnwrap -fuzztime=$(FUZZTIME) ./providers/winrm/kerberos

# Benchmarks print as a table: one row per benchmark, its metrics beside
# it. Ratios are measured inside one run, so shared-machine noise cancels.
# Those that need sandbox hosts skip here; run them with their own
# targets: bench-sandbox, bench-transport, bench-plan, bench-rollout.
BENCH_PKGS ?= ./...
BENCHTIME  ?= 1x
BENCHMEM   ?= -benchmem
bench:
	@$(GO) test -run='^$$' -bench=. -benchtime=$(BENCHTIME) $(BENCHMEM) -timeout=20m $(BENCH_PKGS) 2>&1 | awk ' \
	  /^pkg:/ { pkg = $$2 } \
	  /^Benchmark/ { name = $$1; sub(/-[0-9]+$$/, "", name); row = ""; \
	    for (i = 3; i < NF; i += 2) row = row sprintf("  %14s %s", $$i, $$(i+1)); \
	    printf "%-44s %-28s%s\n", name, pkg, row; next } \
	  /^(FAIL|panic|---)/ { print; failed = 1 } \
	  END { exit failed }'

## demo: the README's first command.
demo: setup build wine-prefix
	examples/sandbox/demo.sh

clean:
	rm -rf bin
