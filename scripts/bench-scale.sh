#!/usr/bin/env bash
# Scale on etcd (issue 16): NODES agents (the real agent loop, each with its own etcd client,
# membership lease and broadcast, over a simulated multipathd with 300 maps x 2 paths) in one
# process against one real etcd member, and the real `mpcluster serve --no-agent` as a separate
# process; a 4096-WWID allow-list. Prints, per node count: steady-state etcd writes/s, the
# server's recomputations (time, CPU, RSS), detection latency and the status API at 64
# clients. Method and numbers: docs/PERFORMANCE.md, "Scale on etcd (issue 16)".
#
#   scripts/bench-scale.sh [NODES...]        (default 64 128 256)
#   FLIPS=20 LOAD_SECS=10 scripts/bench-scale.sh 256
#
# Needs etcd on PATH (Debian: etcd-server) or MPCLUSTER_TEST_ETCD=/path/to/etcd.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
nodes=("$@")
[ ${#nodes[@]} -gt 0 ] || nodes=(64 128 256)
flips=${FLIPS:-20}
load_secs=${LOAD_SECS:-10}
# Many agents in one process: each holds an etcd connection and a fake multipathd socket.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo bench --locked -q -p mpcluster --bench scale_etcd --no-run
echo "machine: $(nproc) cores; $(uptime)"
for n in "${nodes[@]}"; do
    echo "== $n nodes =="
    cargo bench --locked -q -p mpcluster --bench scale_etcd -- "$n" "$flips" "$load_secs"
    echo "after: $(uptime)"
done
