#!/usr/bin/env bash
# Check that --validate-cmd and --exec work where the image runs: as uid 65532 in a root
# filesystem with no shell and no libc, holding only the static configsnap binary and a
# static validator copied in (the pattern deploy/ documents: an init container copies the
# validator into a shared emptyDir). The validator here is Debian's busybox-static, called
# by its path with no applet links, so there is still no `sh` to fall back on.
#
#   1. a good snapshot: the validator (no shell) accepts it, it is written, and --exec
#      (no shell) runs after the swap;
#   2. a bad snapshot: the validator refuses it, --once exits non-zero, nothing is written;
#   3. a command with shell syntax fails with a message saying there is no shell.
#
# Usage: scripts/check-distroless-exec.sh PATH-TO-STATIC-CONFIGSNAP
# Needs root (chroot); installs busybox-static when it is missing (apt, idempotent).
set -euo pipefail

die() { echo "check-distroless-exec: FAIL: $*" >&2; exit 1; }
step() { echo "==> $*"; }

[[ $# -eq 1 ]] || { echo "usage: $0 PATH" >&2; exit 64; }
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
[[ -x "$bin" ]] || die "$bin: not an executable"
[[ $EUID -eq 0 ]] || die "needs root for chroot (run by .ci/run, which is root)"
chroot="$(command -v chroot)" || die "chroot not found (coreutils)"

busybox=/bin/busybox
if ! file -b "$busybox" 2>/dev/null | grep -q 'statically linked'; then
    step "installing Debian's busybox-static"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends busybox-static >/dev/null; }
fi
file -b "$busybox" | grep -q 'statically linked' || die "$busybox is not static (install busybox-static)"

root="$(mktemp -d)"
chmod 0755 "$root" # mktemp makes it 0700: uid 65532 must traverse it
trap 'rm -rf "$root"' EXIT
# The image's layout: the binary at /, /dev from the runtime, writable volumes, the
# validator in the emptyDir an init container filled. No /bin, no /lib, no /etc.
mkdir -p "$root/tools" "$root/in/app" "$root/out" "$root/marks" "$root/dev"
cp "$bin" "$root/configsnap"
cp "$busybox" "$root/tools/busybox"
mknod -m 666 "$root/dev/null" c 1 3
mknod -m 444 "$root/dev/random" c 1 8
mknod -m 444 "$root/dev/urandom" c 1 9
chown 65532:65532 "$root/out" "$root/marks"
[[ ! -e "$root/bin/sh" ]] || die "the test root must have no shell"

run() { # runs configsnap --once in the root as 65532, stdout+stderr to $root/log
    # A clean environment, as in the image (PATH only), not this shell's.
    timeout 60 env -i PATH=/usr/local/bin:/usr/bin:/bin "$chroot" --userspec=65532:65532 "$root" /configsnap --once --reload-on-start \
        --from-dir /in/app --dir /out "$@" >"$root/log" 2>&1
}
validate='/tools/busybox grep -q listen $CONFIGSNAP_STAGED_DIR/app/server.conf'
exec_cmd='/tools/busybox touch /marks/reloaded-$CONFIGSNAP_HASH'

step "1. a good snapshot is validated, written and followed by --exec, with no shell"
echo "listen 8080;" >"$root/in/app/server.conf"
run --validate-cmd "$validate" --exec "$exec_cmd" || { cat "$root/log" >&2; die "--once exited non-zero"; }
[[ "$(cat "$root/out/app/server.conf")" == "listen 8080;" ]] || { cat "$root/log" >&2; die "file not written"; }
compgen -G "$root/marks/reloaded-sha256:*" >/dev/null || { cat "$root/log" >&2; die "--exec did not run"; }
echo "    ok"

step "2. a snapshot the validator refuses is not written"
rm -rf "${root:?}/out/"* "${root:?}/out/"..?* 2>/dev/null || true
echo "port 8080;" >"$root/in/app/server.conf"
if run --validate-cmd "$validate"; then cat "$root/log" >&2; die "--once accepted a refused snapshot"; fi
grep -q 'exited with 1' "$root/log" || { cat "$root/log" >&2; die "the log does not show the validator's exit 1"; }
[[ ! -e "$root/out/app/server.conf" ]] || die "a refused snapshot was written"
echo "    ok"

step "3. shell syntax says there is no shell"
echo "listen 8080;" >"$root/in/app/server.conf"
if run --validate-cmd 'test -f $CONFIGSNAP_STAGED_DIR/app/server.conf && true'; then
    die "a shell command ran without a shell"
fi
grep -q 'has no shell' "$root/log" || { cat "$root/log" >&2; die "the error does not explain the missing shell"; }
echo "    ok"

echo "check-distroless-exec: OK"
