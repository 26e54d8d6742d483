#!/usr/bin/env bash
# Does the README's main job work on a fresh machine? Simulated without uninstalling anything:
#
# - a private mount namespace hides what a fresh Debian 12 does not have but this machine may:
#   protoc (/usr/bin/protoc) and the protobuf well-known types (/usr/include/google), behind
#   empty bind mounts;
# - a fresh clone of the committed HEAD (uncommitted changes are not part of the check);
# - a fresh CARGO_HOME (no registry cache, no cargo config) and a fresh CARGO_TARGET_DIR;
# - then the README's main-job command, `cargo run --release -- demo`, until the demo prints
#   its URL (then it is stopped).
#
# Slow (a clean release build: several minutes), so not part of .ci/run. Needs root (mount
# namespace) and a Rust toolchain (rustup). Usage: bash scripts/fresh-check.sh [TIMEOUT_SECONDS]
set -euo pipefail

timeout_s=${1:-1500}
repo=$(cd "$(dirname "$0")/.." && pwd)

if [ "${MPCLUSTER_FRESH_INNER:-}" != 1 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "fresh-check: needs root (it uses a private mount namespace)" >&2
        exit 1
    fi
    exec env MPCLUSTER_FRESH_INNER=1 unshare -m --propagation private bash "$0" "$@"
fi

# Inside the private mount namespace from here on.
hidden=()
empty_dir=$(mktemp -d)
empty_file=$(mktemp)
for p in /usr/bin/protoc /usr/include/google; do
    if [ -d "$p" ]; then
        mount --bind "$empty_dir" "$p"
        hidden+=("$p")
    elif [ -e "$p" ]; then
        mount --bind "$empty_file" "$p"
        hidden+=("$p")
    fi
done
echo "== fresh-check: hidden: ${hidden[*]:-(nothing to hide: neither is installed)}"
if command -v protoc >/dev/null 2>&1 && protoc --version >/dev/null 2>&1; then
    echo "fresh-check: protoc still works after hiding it: $(command -v protoc)" >&2
    exit 1
fi

work=$(mktemp -d /tmp/mpcluster-fresh.XXXXXX)
demo_pid=
cleanup() {
    if [ -n "$demo_pid" ]; then
        kill -- -"$demo_pid" 2>/dev/null || kill "$demo_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

git clone -q "$repo" "$work/src"
echo "== fresh-check: clone of $(git -C "$work/src" rev-parse --short HEAD) in $work/src"
export CARGO_HOME="$work/cargo-home"
export CARGO_TARGET_DIR="$work/target"
mkdir -p "$CARGO_HOME"
# rustup's proxies live in the real CARGO_HOME; the toolchain itself in RUSTUP_HOME.
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
cargo_bin=$(command -v cargo)

cd "$work/src"
echo "== fresh-check: cargo run --release -- demo (timeout ${timeout_s}s)"
start=$(date +%s)
log="$work/demo.log"
# setsid: the demo and everything it starts form one process group, stopped together.
setsid "$cargo_bin" run --release -- demo >"$log" 2>&1 &
demo_pid=$!
url=
while [ $(($(date +%s) - start)) -lt "$timeout_s" ]; do
    if ! kill -0 "$demo_pid" 2>/dev/null; then
        break
    fi
    url=$(grep -m 1 -oE 'http://[^ ]+' "$log" || true)
    [ -n "$url" ] && break
    sleep 2
done
elapsed=$(($(date +%s) - start))
if [ -z "$url" ]; then
    echo "fresh-check: FAILED after ${elapsed}s: the demo did not print its URL. Last lines:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
echo "== fresh-check: demo answered after ${elapsed}s (build included): $url"
grep -E "Finished|Running|http://" "$log" | head -n 10
echo "fresh-check: OK"
