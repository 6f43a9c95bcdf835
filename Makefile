# hlsd developer tasks. `make` alone lists them.

MEDIA ?= ./media
LISTEN ?= 127.0.0.1:7666
GO ?= go

# Root (CI, containers) installs directly; anyone else goes through sudo.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.DEFAULT_GOAL := help
.PHONY: help deps e2e-deps run demo test test-cluster test-deploy bench lint build

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-zA-Z0-9_-]*:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install ffmpeg/ffprobe with apt-get if missing
	@if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then \
		echo "ffmpeg: $$(command -v ffmpeg)"; \
	else \
		echo "ffmpeg missing: installing it with apt-get"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y ffmpeg; \
	fi

# The browser tests (web/e2e) drive Debian's Chromium with playwright-core
# from npm; playwright never downloads a browser of its own here. Shaka
# Player and video.js come from npm too; GStreamer (playbin, its HLS demuxer
# and libav decoders) from Debian; so are HAProxy and nginx, which the
# cluster test puts in front of three hlsd nodes, and mpv and VLC.
e2e-deps: deps ## install Chromium, Node.js, GStreamer, mpv, VLC, HAProxy, nginx and web/e2e's npm packages if missing
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	[ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	command -v mpv >/dev/null 2>&1 || missing="$$missing mpv"; \
	command -v cvlc >/dev/null 2>&1 || missing="$$missing vlc-bin vlc-plugin-base"; \
	command -v gst-launch-1.0 >/dev/null 2>&1 && gst-inspect-1.0 hlsdemux2 >/dev/null 2>&1 && \
		gst-inspect-1.0 avdec_h264 >/dev/null 2>&1 || missing="$$missing gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav"; \
	if [ -n "$$missing" ]; then \
		echo "installing with apt-get:$$missing"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi
	@cd web/e2e && if [ ! node_modules/.package-lock.json -nt package-lock.json ]; then \
		npm ci --no-audit --no-fund; \
	fi

run: ## run the server on MEDIA (default ./media)
	$(GO) run ./cmd/hlsd --media $(MEDIA) --listen $(LISTEN)

demo: deps ## make a demo library in ./demo-media and serve it on 127.0.0.1:7666
	$(GO) run ./cmd/hlsdemo -out ./demo-media
	@echo "open http://$(LISTEN)/"
	$(GO) run ./cmd/hlsd --media ./demo-media --listen $(LISTEN)

test: e2e-deps test-deploy ## vet and run every test (race detector on), then the browser and cluster tests and a 45 s load test, each alone
	@# Test media first, one clip at a time: made inside the parallel test
	@# packages, heavy clips outlast their deadlines on a slow machine.
	$(GO) run ./cmd/hlsdemo -test-media
	@# The two longest packages first, so that go test (two at a time on two
	@# cores) runs them side by side and the short ones fill in around them.
	$(GO) vet ./... && $(GO) test -race -count=1 -timeout 20m ./web/clients ./server \
		$$($(GO) list ./... | grep -v -e /web/e2e -e /web/clients -e '/server$$')
	@# Alone: a player on 2 cores stalls when other packages' tests encode beside it.
	@# TestCluster (make test-cluster) is among these.
	$(GO) test -race -count=1 -timeout 15m ./web/e2e/
	@# Alone and without -race: the load test checks timing on a loaded machine.
	HLSD_LOAD=1 $(GO) test -count=1 -timeout 10m -run TestLoad ./cmd/hlsload/

test-cluster: e2e-deps ## three hlsd nodes behind HAProxy and an nginx cache: routing, a node SIGKILLed under a player, the CDN (about a minute)
	$(GO) test -count=1 -timeout 5m -run TestCluster -v ./web/e2e/

# A module of its own (deploy/kubernetes/go.mod): hlsd itself does not
# depend on the Kubernetes API.
test-deploy: ## check deploy/kubernetes offline with Kubernetes' API types, and its HAProxy config with haproxy -c
	cd deploy/kubernetes && $(GO) vet ./... && $(GO) test -count=1 ./...

bench: e2e-deps ## run the end-to-end benchmark (cmd/hlsbench, browser figures included), 2 minutes of load, then a 10-minute soak on a full cache (cmd/hlsload)
	$(GO) run ./cmd/hlsbench $(ARGS)
	$(GO) run ./cmd/hlsload
	$(GO) run ./cmd/hlsload -soak

lint: ## gofmt, go vet, and check go.mod/go.sum are tidy
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	cd deploy/kubernetes && $(GO) mod tidy -diff

build: ## build a static bin/hlsd
	CGO_ENABLED=0 $(GO) build -o bin/hlsd ./cmd/hlsd
