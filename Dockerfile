# syntax=docker/dockerfile:1
#
# configsnap image: a static binary on distroless/static, nothing else.
#
# Build:  docker build -t ghcr.io/configsnap/configsnap:0.1.0 \
#           --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# The binary is built by scripts/build-static.sh, the same command CI runs and
# checks with scripts/check-static-binary.sh, so the image ships what CI tested.
#
# One file for amd64 and arm64 (docker buildx build --platform linux/amd64,linux/arm64):
# the builder runs on the build machine's platform (BUILDPLATFORM, no emulation) and
# cross-compiles for TARGETARCH with Debian's cross gcc when the two differ;
# build-static.sh picks the Rust target from TARGETARCH.
#
# Base images are fully qualified (buildah/podman need no registry config) and pinned by
# the digest of their multi-arch index, so a re-pushed tag cannot change the build. To
# refresh a pin:  crane digest docker.io/library/rust:1.95-bookworm
#                 crane digest gcr.io/distroless/static-debian12:nonroot
# (or `docker buildx imagetools inspect IMAGE`) and replace the sha256 below.

# ---- build ------------------------------------------------------------------
FROM --platform=$BUILDPLATFORM docker.io/library/rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build

ARG TARGETARCH
# Cross toolchain only when building for another architecture. Debian's cross gcc and
# libc (static libc.a included) come from the same bookworm release as the image, so
# apt versions are not pinned separately: the image digest pins the release.
# hadolint ignore=DL3008
RUN set -eu; \
    case "${TARGETARCH:-amd64}" in \
        amd64) gnu=x86_64-linux-gnu; deb=amd64; rust=x86_64-unknown-linux-gnu ;; \
        arm64) gnu=aarch64-linux-gnu; deb=arm64; rust=aarch64-unknown-linux-gnu ;; \
        *) echo "unsupported TARGETARCH ${TARGETARCH}" >&2; exit 1 ;; \
    esac; \
    if [ "$(uname -m)-linux-gnu" != "$gnu" ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends "gcc-${gnu}" "libc6-dev-${deb}-cross"; \
        rm -rf /var/lib/apt/lists/*; \
        rustup target add "$rust"; \
    fi

WORKDIR /src
COPY . .

# Cache mounts keep the crates.io index, downloaded crates and compiled deps
# between builds; the target dir is a cache too, so the binary is copied out
# in the same RUN, before the mount goes away.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/cargo-target,sharing=locked \
    CARGO_TARGET_DIR=/cargo-target TARGETARCH="${TARGETARCH}" bash scripts/build-static.sh > /tmp/bin-path \
    && install -D -m 0755 "$(tail -n 1 /tmp/bin-path)" /out/configsnap

# ---- runtime ----------------------------------------------------------------
# distroless/static: CA certificates, /etc/passwd with nonroot (65532), tzdata;
# no shell, no libc (the binary links glibc statically). --exec and --validate-cmd run
# their argv directly; a validator comes in through a shared volume (see deploy/).
FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="configsnap" \
      org.opencontainers.image.description="Sidecar that turns a namespace's ConfigMaps into atomically swapped config snapshots and reloads the app" \
      org.opencontainers.image.source="https://github.com/configsnap/configsnap" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot" \
      org.opencontainers.image.base.digest="sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab"

COPY --from=build /out/configsnap /configsnap

# Admin HTTP: /healthz /readyz /metrics (--listen, default 0.0.0.0:9403: not 9090,
# which is Prometheus's own).
EXPOSE 9403
# Numeric, so runAsNonRoot can be verified by the kubelet. Pods may override
# it (the examples in deploy/ run as 101 to signal nginx-unprivileged).
USER 65532:65532
ENTRYPOINT ["/configsnap"]
