# rill-authd. Only Go is needed; `make test` is what CI runs.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BENCHTIME ?= 1s
FUZZTIME ?= 15s
# staticcheck, pinned; `go run` fetches it through the module proxy on first use.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build run test unit bench lint fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...
	$(GO) build -o bin/plugins/ ./plugins/examples/...

# The daemon on its embedded defaults: store in ./data, gRPC 127.0.0.1:9191, HTTP 127.0.0.1:8080.
# Flags go in ARGS: make run ARGS="--http-addr 127.0.0.1:9090 --grpc-addr 127.0.0.1:9292" (then RILLCTL_API_URL for rillctl).
ARGS ?=
run: build
	./bin/rill-authd $(ARGS)

test: lint unit

# The suite under the race detector. A test that needs what this machine lacks (PostgreSQL,
# nginx, caddy: internal/testenv.Unavailable) is skipped, and go test shows a passing package's
# skips only with -v, so they are collected in a file and listed after the suite, one line per
# area with what would make them run. Under CI=true they fail instead.
PKGS ?= ./...
unit:
	@skips=$$(mktemp); \
	RILL_AUTHD_SKIP_LOG=$$skips $(GO) test -race -count=1 $(PKGS); rc=$$?; \
	if [ -s $$skips ]; then \
	  echo "NOT RUN: tests skipped for want of a prerequisite (under CI=true they fail):"; \
	  sort $$skips | uniq -c | sed -E 's/^ *([0-9]+) ([^:]*): /  SKIPPED \2 (\1 test(s)): /'; \
	fi; \
	rm -f $$skips; exit $$rc

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Every fuzz target for FUZZTIME each (its seed corpus also runs in `make test`).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

clean:
	rm -rf bin
