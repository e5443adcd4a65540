# syntax=docker/dockerfile:1
#
# configsnap image: a static binary on distroless/static, nothing else.
#
# Build:  docker build -t ghcr.io/configsnap/configsnap:0.1.0 \
#           --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# The binary is built by scripts/build-static.sh, the same command CI runs and
# checks with scripts/check-static-binary.sh, so the image ships what CI tested.
# That script targets x86_64-unknown-linux-gnu, hence the pinned platform.

# ---- build ------------------------------------------------------------------
# hadolint ignore=DL3029
FROM --platform=linux/amd64 rust:1.95-bookworm AS build

WORKDIR /src
COPY . .

# Cache mounts keep the crates.io index, downloaded crates and compiled deps
# between builds; the target dir is a cache too, so the binary is copied out
# in the same RUN, before the mount goes away.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/cargo-target,sharing=locked \
    CARGO_TARGET_DIR=/cargo-target bash scripts/build-static.sh > /tmp/bin-path \
    && install -D -m 0755 "$(tail -n 1 /tmp/bin-path)" /out/configsnap

# ---- runtime ----------------------------------------------------------------
# distroless/static: CA certificates, /etc/passwd with nonroot (65532), tzdata;
# no shell, no libc (the binary links glibc statically).
# hadolint ignore=DL3029
FROM --platform=linux/amd64 gcr.io/distroless/static-debian12:nonroot

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="configsnap" \
      org.opencontainers.image.description="Sidecar that turns a namespace's ConfigMaps into atomically swapped config snapshots and reloads the app" \
      org.opencontainers.image.source="https://github.com/configsnap/configsnap" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"

COPY --from=build /out/configsnap /configsnap

# Admin HTTP: /healthz /readyz /metrics (--listen, default 0.0.0.0:9090).
EXPOSE 9090
# Numeric, so runAsNonRoot can be verified by the kubelet. Pods may override
# it (the examples in deploy/ run as 101 to signal nginx-unprivileged).
USER 65532:65532
ENTRYPOINT ["/configsnap"]
