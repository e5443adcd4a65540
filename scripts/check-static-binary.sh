#!/usr/bin/env bash
# Check that a built `configsnap` binary can ship in distroless/static:
#   1. it is a statically linked x86-64 ELF (no interpreter, no NEEDED libs),
#   2. `--help` succeeds and prints clap's usage, also in an empty chroot
#      (when run as root), which is stricter than the distroless image,
#   3. it is at most MAX_SIZE_MIB (default 15) MiB.
#
# Usage: scripts/check-static-binary.sh PATH
# Installs Debian's `file` if it is missing (needs root or sudo; idempotent).
set -euo pipefail

readonly MAX_SIZE_MIB="${MAX_SIZE_MIB:-15}"

die() { echo "check-static-binary: FAIL: $*" >&2; exit 1; }
step() { echo "==> $*"; }

[[ $# -eq 1 ]] || { echo "usage: $0 PATH" >&2; exit 64; }
bin="$1"
[[ -f "$bin" ]] || die "$bin: no such file"
[[ -x "$bin" ]] || die "$bin: not executable"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root or sudo to run: $*"
    fi
}

ensure_file_cmd() {
    command -v file >/dev/null && return 0
    step "installing Debian package 'file'"
    # Update the index only when installing from it fails: a fresh machine
    # may have none, a warm one is fast either way.
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends file >/dev/null 2>&1 || {
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends file >/dev/null
    }
}

# --- 1. static linking -------------------------------------------------------
ensure_file_cmd
step "file type of $bin"
desc="$(file -b "$bin")"
echo "    $desc"
[[ "$desc" == ELF* ]] || die "not an ELF file"
[[ "$desc" == *x86-64* ]] || die "not an x86-64 binary"
# `file` says "statically linked" for -static and "static-pie linked" for
# static-pie (what +crt-static gives on the gnu target); a dynamic one says
# "dynamically linked, interpreter /lib64/ld-linux-x86-64.so.2".
if [[ "$desc" != *"statically linked"* && "$desc" != *"static-pie linked"* ]]; then
    die "file does not report a static binary"
fi

step "ldd $bin"
# ldd exits 1 with "not a dynamic executable" for -static, and 0 with
# "statically linked" for static-pie; anything listing a .so is dynamic.
ldd_out="$(ldd "$bin" 2>&1 || true)"
echo "    $ldd_out"
if [[ "$ldd_out" != *"not a dynamic executable"* && "$ldd_out" != *"statically linked"* ]]; then
    die "ldd lists shared libraries"
fi

if command -v readelf >/dev/null; then
    step "readelf: no PT_INTERP, no DT_NEEDED"
    # Here-strings: `grep -q` stopping at a match would SIGPIPE readelf and, with
    # pipefail, turn the very failure we look for into a pass.
    if grep -q 'INTERP' <<<"$(readelf -lW "$bin")"; then die "binary has a program interpreter"; fi
    if grep -q '(NEEDED)' <<<"$(readelf -dW "$bin")"; then die "binary needs shared libraries"; fi
    echo "    ok"
fi

# --- 2. --help -----------------------------------------------------------------
check_help() {
    local out
    if ! out="$("$@" --help 2>&1)"; then
        head -20 <<<"$out" >&2
        die "'$* --help' exited non-zero"
    fi
    # clap always prints "Usage:"; an empty or unrelated output means the
    # binary is not the real CLI (e.g. a stub main).
    if [[ "$out" != *"Usage:"* ]]; then
        head -20 <<<"$out" >&2
        die "'$* --help' printed no usage"
    fi
    # A here-string, not a pipe from printf: with pipefail, `head` closing the pipe early
    # kills a writer still writing the rest with SIGPIPE (exit 141, seen under load).
    sed -n '1,3s/^/    /p' <<<"$out"
}

step "$bin --help"
check_help "$bin"

if [[ $EUID -eq 0 ]] && command -v chroot >/dev/null; then
    # An empty root with only the binary: no libc, no /etc, no certs. If the
    # binary runs here it runs in distroless/static (which has more).
    step "--help inside an empty chroot"
    root="$(mktemp -d)"
    trap 'rm -rf "$root"' EXIT
    cp "$bin" "$root/configsnap"
    check_help chroot "$root" /configsnap
else
    step "skipping the empty-chroot run (needs root and chroot)"
fi

# --- 3. size -------------------------------------------------------------------
step "size"
size="$(stat -c %s "$bin")"
max=$((MAX_SIZE_MIB * 1024 * 1024))
awk -v s="$size" -v m="$MAX_SIZE_MIB" \
    'BEGIN { printf "    %d bytes (%.2f MiB, limit %d MiB)\n", s, s / 1048576, m }'
(( size <= max )) || die "binary is larger than $MAX_SIZE_MIB MiB"

echo "check-static-binary: OK: $bin"
