# rill-authd. Only Go is needed; `make test` is what CI runs.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BENCHTIME ?= 1s
FUZZTIME ?= 15s
# staticcheck, pinned; `go run` fetches it through the module proxy on first use.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build run test unit bench lint fuzz clean image

# The container image (Containerfile): repository and the OCI labels. `make image` tags
# $(IMAGE):$(VERSION) and $(IMAGE):latest.
IMAGE          ?= localhost/rill-authd
IMAGE_SOURCE   ?= https://github.com/rill-authd/rill-authd
IMAGE_LICENSES ?= NOASSERTION
REVISION       ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
CA_BUNDLE      ?= /etc/ssl/certs/ca-certificates.crt
PODMAN         ?= podman
IMAGE_CTX      ?= bin/image

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

# The image on scratch: a static binary (no libc to bring along), the host's CA bundle, an
# /etc/passwd for user 65532 and an empty data dir, laid out in $(IMAGE_CTX) as the build context.
image:
	rm -rf $(IMAGE_CTX) && mkdir -p $(IMAGE_CTX)/etc/ssl/certs $(IMAGE_CTX)/var/lib $(IMAGE_CTX)/data
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $(IMAGE_CTX)/rill-authd ./cmd/rill-authd
	cp $(CA_BUNDLE) $(IMAGE_CTX)/etc/ssl/certs/ca-certificates.crt
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/var/lib/rill-authd:/sbin/nologin\n' > $(IMAGE_CTX)/etc/passwd
	printf 'root:x:0:\nnonroot:x:65532:\n' > $(IMAGE_CTX)/etc/group
	$(PODMAN) build --quiet -f Containerfile \
	  --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
	  --build-arg SOURCE=$(IMAGE_SOURCE) --build-arg LICENSES=$(IMAGE_LICENSES) \
	  -t $(IMAGE):$(VERSION) -t $(IMAGE):latest $(IMAGE_CTX)
	@echo "image $(IMAGE):$(VERSION) (and :latest): $$($(PODMAN) image inspect --format '{{.Size}}' $(IMAGE):$(VERSION) | awk '{printf "%.1f MB (%d bytes)", $$1/1000000, $$1}')"

clean:
	rm -rf bin
