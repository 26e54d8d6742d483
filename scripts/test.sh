#!/usr/bin/env bash
# The whole mpcluster test suite, and what it needs. This is the README's test command and the
# only thing .ci/run calls.
#
# 1. Installs every Debian package the build and the tests need, when missing and we are root:
#    a C toolchain for ring (gcc, libc6-dev), the programs the tests start for real (etcd,
#    multipath-tools, chromium + chromedriver, perl for the seed oracle, util-linux's unshare,
#    python3-aiosmtpd as the real SMTP receiver of the notification tests, iproute2 for the
#    fault suite's network namespaces),
#    and git; for the Debian package test (crates/mpcluster/tests/package_deb.rs): systemd
#    (systemd-analyze), man-db, bash-completion and dpkg-dev (dpkg-shlibdeps). Named one by
#    one with --no-install-recommends, so nothing depends on "recommends" or on what happens
#    to be on the machine. The build needs no protoc: the etcd client's stubs are generated in
#    Rust (crates/mpcluster-store/build.rs).
#    Then cargo-deb (pinned) from crates.io when it is missing: the package test builds the
#    .deb with it.
# 2. Checks formatting and lints (cargo fmt --check, clippy -D warnings).
# 3. Runs every test in the workspace. Tests that need etcd / multipath-tools / chromium / perl
#    start those programs themselves; under CI=true a missing program fails the test instead of
#    skipping it.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(gcc e2fsprogs libc6-dev git util-linux perl etcd-server multipath-tools chromium chromium-driver prometheus
    systemd man-db bash-completion dpkg-dev python3-aiosmtpd iproute2)
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

# cargo-deb for the package test (crates/mpcluster/tests/package_deb.rs).
CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version 2>/dev/null | grep -qF "$CARGO_DEB_VERSION"; then
    echo "== installing cargo-deb $CARGO_DEB_VERSION"
    cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
