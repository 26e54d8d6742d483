#!/usr/bin/env bash
# Make a format fixture for the rolling-upgrade tests: an embedded store written by a given
# mpcluster binary (a release), with every document and node value that release writes.
#
#   scripts/make-format-fixture.sh BINARY OUTDIR
#
# Runs `BINARY demo --nodes 3 --dir TMP` (simulated nodes, real agents, embedded store) for
# 25 s, adds a storage, an override, a defaults knob and the always-accept setting through the
# binary's own CLI, stops it and copies the store's `docs/` and `kv/` to OUTDIR/store (lock
# and temporary files left out), plus OUTDIR/VERSION (the binary's `--version`).
set -euo pipefail
bin=$(realpath "$1")
out=$2
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" demo --nodes 3 --step 5 --listen 127.0.0.1:0 --dir "$work/demo" > "$work/demo.log" 2>&1 &
pid=$!
sleep 25
store=$(find "$work/demo" -maxdepth 2 -type d -name docs -printf '%h\n' | head -1)
[ -n "$store" ] || { echo "no store under $work/demo" >&2; cat "$work/demo.log" >&2; exit 1; }
"$bin" storage add multipath upgrade-san --store "embedded:$store"
"$bin" config set polling-interval=7 --store "embedded:$store"
printf 'devices {\n\tdevice {\n\t\tvendor "NETAPP"\n\t\tproduct "LUN.*"\n\t\tno_path_retry queue\n\t}\n}\n' > "$work/ov"
"$bin" overrides set "$work/ov" --store "embedded:$store"
"$bin" config accept --always true --store "embedded:$store"
sleep 3
kill "$pid"; wait "$pid" 2>/dev/null || true
rm -rf "$out/store"
mkdir -p "$out/store"
cp -r "$store/docs" "$store/kv" "$out/store/"
find "$out/store" \( -name '.*' -o -name '*.tmp*' -o -name '*.lock' \) -exec rm -rf {} +
"$bin" --version > "$out/VERSION"
echo "fixture in $out: $(find "$out/store" -type f | wc -l) files"
