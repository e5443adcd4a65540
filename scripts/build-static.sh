#!/usr/bin/env bash
# Build the statically linked release binary of `configsnap`.
#
# This is the one build command shared by the Dockerfile and CI, so the image
# ships exactly what CI tested. It links glibc statically (`+crt-static`) on
# the gnu target instead of using musl: that needs no extra toolchain or
# `rustup target add`, and the result runs in an empty rootfs
# (distroless/static). `--target` is explicit so that RUSTFLAGS apply only to
# the target artefacts, not to build scripts and proc-macros, which must stay
# dynamic to be loaded by rustc.
#
# The target follows TARGETARCH (as docker buildx sets it: amd64 or arm64), else the
# host; building for another architecture uses Debian's cross gcc (gcc-<arch>-linux-gnu
# and libc6-dev-<deb>-cross, which the Dockerfile installs) as linker and C compiler.
#
# Usage: scripts/build-static.sh            (honours CARGO_TARGET_DIR, TARGETARCH)
# Prints the path of the built binary as the last line of stdout.
set -euo pipefail

readonly BIN=configsnap
case "${TARGETARCH:-$(uname -m)}" in
    amd64 | x86_64) TARGET=x86_64-unknown-linux-gnu gnu=x86_64-linux-gnu ;;
    arm64 | aarch64) TARGET=aarch64-unknown-linux-gnu gnu=aarch64-linux-gnu ;;
    *) echo "build-static: unsupported architecture ${TARGETARCH:-$(uname -m)} (amd64, arm64)" >&2; exit 64 ;;
esac
readonly TARGET gnu
if [[ "$(uname -m)-linux-gnu" != "$gnu" ]]; then
    # cargo's and cc's per-target variables: CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER, CC_aarch64_unknown_linux_gnu.
    triple="${TARGET//-/_}"
    export "CARGO_TARGET_${triple^^}_LINKER=${gnu}-gcc" "CC_${triple}=${gnu}-gcc"
fi

# A relative CARGO_TARGET_DIR means relative to the caller's directory, as
# for cargo itself: pin it before moving to the repository root.
if [[ -n "${CARGO_TARGET_DIR:-}" && "$CARGO_TARGET_DIR" != /* ]]; then
    export CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
fi
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

# Keep any RUSTFLAGS the caller set (e.g. -D warnings) and add ours.
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static"

# Cargo's own progress goes to stderr; stdout carries only the path.
cargo build --release --locked --target "$TARGET" --bin "$BIN" >&2

# Ask cargo where the target dir is: CARGO_TARGET_DIR (relative or not),
# build.target-dir in a .cargo/config.toml, or the default.
target_dir="$(cargo metadata --format-version 1 --no-deps --locked \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
out="$target_dir/$TARGET/release/$BIN"
if [[ ! -x "$out" ]]; then
    echo "build-static: expected binary not found at $out" >&2
    exit 1
fi
echo "$out"
