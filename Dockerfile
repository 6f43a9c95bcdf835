# syntax=docker/dockerfile:1

# Build a static binary: the runtime image needs no Go and no libc match.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/hlsd ./cmd/hlsd

FROM debian:bookworm-slim
# ffmpeg/ffprobe do the media work; ca-certificates is not needed (no outbound
# TLS). The VA drivers (Intel, AMD) let --hwaccel vaapi/qsv use a /dev/dri
# passed in with --device; NVIDIA's libraries come from the host through the
# NVIDIA Container Toolkit (--gpus all), which mounts the video ones only
# when asked by NVIDIA_DRIVER_CAPABILITIES.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg intel-media-va-driver mesa-va-drivers \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin hlsd \
 && mkdir -p /media /cache \
 && chown hlsd:hlsd /cache
COPY --from=build /out/hlsd /usr/local/bin/hlsd

ENV HLSD_MEDIA=/media \
    HLSD_CACHE=/cache \
    HLSD_LISTEN=0.0.0.0:7666 \
    NVIDIA_DRIVER_CAPABILITIES=compute,video,utility
USER hlsd
EXPOSE 7666
# /media is mounted read-only by convention; /cache holds keyframes, plans and segments.
VOLUME ["/media", "/cache"]
ENTRYPOINT ["/usr/local/bin/hlsd"]
