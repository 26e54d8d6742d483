#!/usr/bin/env bash
# Side by side, in one run: the whole `mpcluster status --snapshot FILE --format json` process
# against the seed's status rules in Perl (../shared/seed/oracle/seed_status.pl) on the same
# synthetic snapshot. Prints the median wall time of each over RUNS runs and the ratio.
#
#   scripts/bench-seed.sh [NODES] [LUNS] [RUNS]        (default 64 1024 5)
#
# Needs perl and the shared folder beside the repository (or MPCLUSTER_SHARED=DIR).
set -euo pipefail
nodes=${1:-64}
luns=${2:-1024}
runs=${3:-5}
repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${MPCLUSTER_SHARED:-$repo/../shared}
oracle=$shared/seed/oracle/seed_status.pl
[ -f "$oracle" ] || { echo "bench-seed.sh: no seed oracle at $oracle (set MPCLUSTER_SHARED)" >&2; exit 1; }
cd "$repo"
cargo build --release --locked -q -p mpcluster --bin mpcluster
cargo build --release --locked -q -p mpcluster-core --features synthetic --example synthetic_snapshot
target=${CARGO_TARGET_DIR:-$repo/target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$target/release/examples/synthetic_snapshot" "$nodes" "$luns" > "$work/snapshot.json"
echo "snapshot: $nodes nodes x $luns LUNs, $(du -h "$work/snapshot.json" | cut -f1)"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" > /dev/null
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 ))
}
ours=() seed=()
for _ in $(seq "$runs"); do
    ours+=("$(time_ms "$target/release/mpcluster" status --snapshot "$work/snapshot.json" --format json)")
    seed+=("$(time_ms perl "$oracle" "$work/snapshot.json")")
done
o=$(printf '%s\n' "${ours[@]}" | median)
s=$(printf '%s\n' "${seed[@]}" | median)
echo "mpcluster status --snapshot: median ${o} ms (runs: ${ours[*]})"
echo "seed_status.pl:              median ${s} ms (runs: ${seed[*]})"
awk -v s="$s" -v o="$o" 'BEGIN { if (o < 1) o = 1; printf "ratio: %.0fx\n", s / o }'
