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

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

# Keep any RUSTFLAGS the caller set (e.g. -D warnings) and add ours.
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static"

# Cargo's own progress goes to stderr; stdout carries only the path.
cargo build --release --locked --target "$TARGET" --bin "$BIN" >&2

target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
out="$target_dir/$TARGET/release/$BIN"
if [[ ! -x "$out" ]]; then
    echo "build-static: expected binary not found at $out" >&2
    exit 1
fi
echo "$out"
