# syntax=docker/dockerfile:1

# Build stage. The golang image sets GOTOOLCHAIN=local, so its Go must be at
# least go.mod's go line; override with --build-arg GO_VERSION=1.26.x to pin.
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

ENV PASSKEY_DATA_DIR=/data
VOLUME /data

# nonroot, given by number so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532

# Public API, admin API (metrics, health).
EXPOSE 8000 8001

# Exec form: the image has no shell. Some runtimes (Kubernetes, OCI-format
# builds) ignore HEALTHCHECK; they use /health/ready on :8001 instead.
HEALTHCHECK CMD ["/passkey-server", "healthcheck"]

ENTRYPOINT ["/passkey-server"]
