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
# Usage: scripts/build-static.sh            (honours CARGO_TARGET_DIR)
# Prints the path of the built binary as the last line of stdout.
set -euo pipefail

readonly TARGET=x86_64-unknown-linux-gnu
readonly BIN=configsnap

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
