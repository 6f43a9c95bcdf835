# hlsd developer tasks. `make` alone lists them.

MEDIA ?= ./media
LISTEN ?= 127.0.0.1:7666
GO ?= go

# Root (CI, containers) installs directly; anyone else goes through sudo.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.DEFAULT_GOAL := help
.PHONY: help deps run demo test bench lint build

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-zA-Z_-]*:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install ffmpeg/ffprobe with apt-get if missing
	@if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then \
		echo "ffmpeg: $$(command -v ffmpeg)"; \
	else \
		echo "ffmpeg missing: installing it with apt-get"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y ffmpeg; \
	fi

run: ## run the server on MEDIA (default ./media)
	$(GO) run ./cmd/hlsd --media $(MEDIA) --listen $(LISTEN)

demo: deps ## make a demo library in ./demo-media and serve it on 127.0.0.1:7666
	$(GO) run ./cmd/hlsdemo -out ./demo-media
	@echo "open http://$(LISTEN)/"
	$(GO) run ./cmd/hlsd --media ./demo-media --listen $(LISTEN)

test: deps ## vet and run every test (race detector on)
	$(GO) vet ./... && $(GO) test -race -count=1 -timeout 20m ./...

bench: deps ## run the end-to-end benchmark (cmd/hlsbench)
	$(GO) run ./cmd/hlsbench

lint: ## gofmt, go vet, and check go.mod/go.sum are tidy
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff

build: ## build a static bin/hlsd
	CGO_ENABLED=0 $(GO) build -o bin/hlsd ./cmd/hlsd
