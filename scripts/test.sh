#!/usr/bin/env bash
# The whole mpcluster test suite, and what it needs. This is the README's test command and the
# only thing .ci/run calls.
#
# 1. Installs the Debian packages the tests start for real (etcd, multipath-tools, chromium +
#    chromedriver, protoc for the etcd client) when they are missing and we are root.
# 2. Checks formatting and lints (cargo fmt --check, clippy -D warnings).
# 3. Runs every test in the workspace. Tests that need etcd / multipath-tools / chromium start
#    those programs themselves; under CI=true a missing program fails the test instead of
#    skipping it.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(etcd-server protobuf-compiler multipath-tools chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" -eq 0 ]; then
        echo "== installing test dependencies: ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        echo "error: missing Debian packages: ${missing[*]} (run this script as root, or install them)" >&2
        exit 1
    fi
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: no Rust toolchain: install Rust >= 1.88 (rustup) first" >&2
    exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
