# syntax=docker/dockerfile:1

# Build stage. The golang image sets GOTOOLCHAIN=local, so its Go must be at
# least go.mod's go line; override with --build-arg GO_VERSION=1.26.x to pin.
#
# The base images are named by tag, not yet pinned by digest: the digests
# could not be looked up where this file was last edited (no registry access),
# and a made-up digest would only break the build. To pin, resolve them with
# `docker buildx imagetools inspect golang:1.26-bookworm` and
# `... gcr.io/distroless/static-debian12:nonroot` and write `FROM name@sha256:…`.
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src

# Modules first, so this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .
# Static binary: no cgo (SQLite comes from the pure-Go driver), so it runs on
# distroless/static.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/passkey-server ./cmd/passkey-server
# The data directory (embedded SQLite, generated master key) must be writable
# by the nonroot user of the final stage; distroless has no shell to mkdir.
RUN mkdir -p /out/data

# Final stage: no shell, no package manager; CA certificates and tzdata only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/passkey-server /passkey-server
COPY --from=build --chown=65532:65532 /out/data /data

# The admin API listens on every interface of the container: the embedded
# mode's loopback default would make it unreachable through a published port.
# Publish it only where you mean to (compose.yaml binds it to the host's
# loopback).
ENV PASSKEY_DATA_DIR=/data PASSKEY_ADMIN_ADDRESS=:8001
VOLUME /data

# nonroot, given by number so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532

# Public API, admin API (metrics, health).
EXPOSE 8000 8001

# Exec form: the image has no shell. Some runtimes (Kubernetes, OCI-format
# builds) ignore HEALTHCHECK; they use /health/ready on :8001 instead.
# The start period covers PASSKEY_STARTUP_TIMEOUT (30s), during which the
# server waits for PostgreSQL and Redis: failed checks then do not count.
HEALTHCHECK --interval=10s --timeout=5s --start-period=40s --retries=3 \
	CMD ["/passkey-server", "healthcheck"]

ENTRYPOINT ["/passkey-server"]
