#!/usr/bin/python3
"""Render a lab run's report.json (+ versions.txt) as the Markdown report (stdout)."""
import json
import sys

run, elapsed = sys.argv[1], int(sys.argv[2])
r = json.load(open(f"{run}/report.json"))
try:
    versions = open(f"{run}/versions.txt").read().strip().splitlines()
except OSError:
    versions = []
res = r.get("scenarios", [])
passed = sum(1 for s in res if s["result"] == "pass")
print(f"## Lab report ({run.rstrip('/').rsplit('/', 1)[-1]})\n")
print(f"- {passed} passed, {len(res) - passed} failed"
      + (f"; ABORTED: {r['aborted']}" if r.get("aborted") else ""))
print(f"- whole run {elapsed // 60} min {elapsed % 60} s (guest scenarios {r.get('guest_seconds', '?')} s), QEMU TCG, 2 vCPUs")
for v in versions:
    print(f"- `{v}`")
if r.get("luns"):
    print("- LUNs: " + ", ".join(f"{k} `{v}`" for k, v in r["luns"].items() if v))
print("\n| scenario | result | s | what was observed |\n|---|---|---|---|")
for s in res:
    d = s["detail"].replace("|", "\\|").replace("\n", " ")
    print(f"| {s['scenario']} | {s['result']} | {s['seconds']} | {d} |")
lat = r.get("latency") or {}
if lat:
    print("\n| detection | n | median | p95 | max | min | kernel PATH_FAILED after (median) |\n|---|---|---|---|---|---|---|")
    for mode, v in lat.items():
        a, k = v["api"], v.get("kernel_path_failed") or {}
        print(f"| {mode} | {a['n']} | {a['median_ms']} ms | {a['p95_ms']} ms | {a['max_ms']} ms | {a['min_ms']} ms | "
              f"{k.get('median_ms', '-')} ms |")
    for mode, v in lat.items():
        print(f"\n{mode} samples (ms): {' '.join(str(x) for x in v['samples_ms'])}")
