#!/usr/bin/env python3
"""Write fuzz/seeds/<target>/ from the test fixtures and the example snapshot.

Run from the repository root: python3 fuzz/make_seeds.py
"""
import glob
import json
import os

F = 'crates/mpcluster-core/tests/fixtures'
S = 'fuzz/seeds'


def write(target, name, data):
    os.makedirs(f'{S}/{target}', exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(f'{S}/{target}/{name}', 'wb') as f:
        f.write(data)


def read(path):
    with open(path, 'rb') as f:
        return f.read()


# parse_maps_json: constructed replies and the real 0.9.4 captures.
for p in sorted(glob.glob(f'{F}/constructed/*.json')):
    write('parse_maps_json', 'constructed-' + os.path.basename(p), read(p))
for p in sorted(glob.glob(f'{F}/real-0.9.4/*/*/show-maps-json.json')):
    write('parse_maps_json', f'real-{p.split("/")[-2]}.json', read(p))

# parse_raw: flag byte, maps reply, NUL, paths reply (flag 0: the agent's formats, 1: the
# formats of the real captures).
for p in sorted(glob.glob(f'{F}/constructed/*.maps-raw.txt')):
    base = p[:-len('.maps-raw.txt')]
    write('parse_raw', 'constructed-' + os.path.basename(base),
          b'\x00' + read(p) + b'\x00' + read(base + '.paths-raw.txt'))
for d in sorted(glob.glob(f'{F}/real-0.9.4/*/*/')):
    maps, paths = d + 'show-maps-format-raw.txt', d + 'show-paths-format-raw.txt'
    if os.path.exists(maps) and os.path.exists(paths):
        write('parse_raw', 'real-' + d.rstrip('/').split('/')[-1],
              b'\x01' + read(maps) + b'\x00' + read(paths))

# broadcast_decode: the example snapshot's broadcasts and two odd values.
snap = json.loads(read('examples/cluster-snapshot.json'))
for node, value in sorted(snap['kv']['multipath'].items()):
    write('broadcast_decode', f'example-{node}.json', value)
write('broadcast_decode', 'truncated.json',
      '{"time":1767225600,"maps":{"36001405aa":{"state":"failed","paths-active":0,'
      '"paths-total":2}},"truncated":3}')
write('broadcast_decode', 'odd-fields.json',
      '{"time":1.5e9,"maps":{"w1":{"state":"sideways","paths-active":-1,"paths-total":"2",'
      '"transport":"","size":1e3},"bad wwid":{},"w2":[]},"x":null}')

# snapshot: the example and a small standalone one.
write('snapshot', 'example.json', read('examples/cluster-snapshot.json'))
write('snapshot', 'standalone.json', json.dumps({
    "version": 1, "now": 100, "stale-after": 60,
    "config": {"wwids": ["w1", "w2"], "aliases": {"w1": "data"}},
    "kv": {
        "multipath": {"n1": '{"time":90,"maps":{"w1":{"state":"optimal","paths-active":2,"paths-total":2}}}'},
        "multipath-apply": {"n2": '{"error":"boom","time":null}'},
        "multipath-collect": {"n1": '{"error":"x","time":95}'},
    },
    "expectations": {"nodes": ["n1", "n2"], "wwid-nodes": {"w2": ["n2"]}, "consumers": {"w2": "lvm1"}},
}))
