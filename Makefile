# rill-authd. Only Go is needed; `make test` is what CI runs.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BENCHTIME ?= 1s

.PHONY: build run test bench lint fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...
	$(GO) build -o bin/plugins/ ./plugins/examples/...

# The daemon on its embedded defaults: store in ./data, gRPC :9191, HTTP 127.0.0.1:8080.
run: build
	./bin/rill-authd

test: lint
	$(GO) test -race -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# A minute of fuzzing of the token parser.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./token/

clean:
	rm -rf bin
