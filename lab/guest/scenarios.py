#!/usr/bin/python3
"""The lab's scenarios, run inside the guest against the live multipathd and dm-multipath.

Started by init.sh once udev, scsi_debug, the iSCSI target/initiator and multipathd run.
Every scenario changes the real system (sysfs device state, iSCSI portal, multipathd itself,
the cluster configuration through the mpcluster CLI) and asserts what the agent broadcast
(read from the embedded store) and what `mpcluster status --server` says. Results go to
/lab/out/report.json and /lab/out/report.md.
"""

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

MP = "/lab/bin/mpcluster"
STORE_DIR = "/var/lib/mpcluster"
STORE = "embedded:" + STORE_DIR
NODE = "mplab"
URL = "http://127.0.0.1:8470"
TOKEN_FILE = STORE_DIR + "/admin-token"
OUT = "/lab/out"
PARAMS = {}
for line in open("/lab/params").read().split():
    if "=" in line:
        k, v = line.split("=", 1)
        PARAMS[k] = v
LATENCY_RUNS = int(PARAMS.get("latency_runs", "20"))
ONLY = [s for s in PARAMS.get("only", "").split(",") if s]

ENV = dict(os.environ, MPCLUSTER_STORE=STORE, NO_COLOR="1")
T_START = time.monotonic()
console = open("/dev/console", "w")


def uptime():
    return open("/proc/uptime").read().split()[0]


def log(msg):
    line = f"MPLAB[{uptime()}]: {msg}"
    print(line, flush=True)
    try:
        console.write(line + "\n")
        console.flush()
    except OSError:
        pass


def run(cmd, check=True, timeout=120, quiet=False):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)
    if not quiet:
        log(f"$ {' '.join(cmd)} -> rc={r.returncode}"
            + (f" {r.stdout.strip()[:300]}" if r.stdout.strip() else "")
            + (f" [stderr: {r.stderr.strip()[:300]}]" if r.stderr.strip() else ""))
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (rc={r.returncode}): {r.stderr.strip()[:500]}")
    return r


def mpc(*args, **kw):
    return run([MP, *args], **kw)


def multipathd(*args, check=False):
    return run(["multipathd", *args], check=check, quiet=True)


def write(path, value):
    with open(path, "w") as f:
        f.write(value)


# ---------------------------------------------------------------------------------------
# The system under test: LUNs and their paths, as multipathd names them


def paths_by_wwid():
    """{wwid: [(dev, map name, prio)]} of the paths multipathd knows, and the maps {wwid: (name, dm)}."""
    r = multipathd("show", "paths", "raw", "format", "%d %w %m %p")
    paths = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) == 4 and f[0] != "ok":
            paths.setdefault(f[1], []).append((f[0], f[2], f[3]))
    r = multipathd("show", "maps", "raw", "format", "%n %w %d")
    maps = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) == 3:
            maps[f[1]] = (f[0], f[2])
    return paths, maps


def transport_of(dev):
    link = os.path.realpath(f"/sys/block/{dev}/device")
    return "iscsi" if "/session" in link else "scsi_debug"


class Luns:
    def __init__(self):
        paths, maps = paths_by_wwid()
        self.paths = paths
        self.maps = maps
        sd = sorted(w for w, p in paths.items() if transport_of(p[0][0]) == "scsi_debug")
        iscsi = sorted(w for w, p in paths.items() if transport_of(p[0][0]) == "iscsi")
        self.a, self.b = sd[0], sd[1]
        self.c = iscsi[0] if iscsi else None

    def devs(self, wwid):
        return sorted(p[0] for p in self.paths[wwid])

    def prio50(self, wwid):
        return sorted(p[0] for p in self.paths[wwid] if p[2] == "50")


def dm_of(wwid):
    _, maps = paths_by_wwid()
    return maps.get(wwid, (None, None))


# ---------------------------------------------------------------------------------------
# mpcluster: server with the in-process agent on the embedded store


class Server:
    def __init__(self):
        self.proc = None
        self.mode = None

    def start(self, uevents=True):
        self.stop()
        self.mode = "events" if uevents else "polling"
        args = [MP, "serve", "--store", STORE, "--listen", "127.0.0.1:8470", "--node", NODE,
                "--log", "info,mpcluster_agent=debug"]
        if not uevents:
            args.append("--no-uevents")
        logf = open(f"/tmp/mpcluster-serve-{self.mode}.log", "a")
        log(f"starting: {' '.join(args)}")
        self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, env=ENV)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mpcluster serve exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(URL + "/health", timeout=2) as r:
                    if r.status == 200 and os.path.exists(TOKEN_FILE):
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("mpcluster serve did not come up in 120 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


SERVER = Server()


def token():
    return open(TOKEN_FILE).read().strip()


def api_status():
    req = urllib.request.Request(URL + "/api2/json/cluster/multipath/status",
                                 headers={"Authorization": "Bearer " + token()})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)["data"]


def cli_status():
    r = mpc("status", "--server", URL, "--token-file", TOKEN_FILE, "--format", "json",
            check=False, quiet=True)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {"error": r.stderr.strip()[:300]}


def store_view():
    """What the agent published in the store: broadcast maps, collect and apply errors."""
    r = mpc("snapshot", "--store", STORE, check=False, quiet=True)
    try:
        snap = json.loads(r.stdout)
    except ValueError:
        return {"error": r.stderr.strip()[:300]}
    kv = snap.get("kv", {})

    def value(key):
        v = kv.get(key, {}).get(NODE)
        try:
            return json.loads(v) if v else None
        except ValueError:
            return {"unparsable": v}

    return {"broadcast": value("multipath"), "collect": value("multipath-collect"),
            "apply": value("multipath-apply")}


def lun_cell(status, wwid):
    for lun in status.get("luns", []):
        if lun.get("wwid") == wwid:
            return lun, lun.get("nodes", {}).get(NODE, {})
    return None, {}


# ---------------------------------------------------------------------------------------
# Scenario bookkeeping

RESULTS = []
LATENCY = {}


class Failed(Exception):
    pass


def wait_until(what, check, timeout):
    """Poll check() (returns (ok, detail)) until ok or timeout; returns (seconds, detail)."""
    t0 = time.monotonic()
    detail = None
    while True:
        ok, detail = check()
        if ok:
            return time.monotonic() - t0, detail
        if time.monotonic() - t0 > timeout:
            raise Failed(f"{what}: not within {timeout} s; last: {json.dumps(detail)[:1500]}")
        time.sleep(0.5)


def expect_luns(expected, timeout=60, what="states"):
    """expected: {wwid: (state, active, total)}; checked in the CLI status and in the broadcast."""

    def check():
        st = cli_status()
        sv = store_view()
        bmaps = (sv.get("broadcast") or {}).get("maps", {})
        seen = {}
        ok = True
        for wwid, (state, active, total) in expected.items():
            _, cell = lun_cell(st, wwid)
            b = bmaps.get(wwid, {})
            got = {"status": [cell.get("state"), cell.get("paths-active"), cell.get("paths-total")],
                   "broadcast": [b.get("state"), b.get("paths-active"), b.get("paths-total")]}
            seen[wwid] = got
            want = [state, active, total]
            if got["status"] != want or got["broadcast"] != want:
                ok = False
        node = st.get("nodes", {}).get(NODE, {})
        if node.get("collect-error"):
            ok = False
            seen["collect-error"] = node["collect-error"]
        return ok, seen

    secs, seen = wait_until(what, check, timeout)
    return f"after {secs:.1f} s: " + "; ".join(
        f"{w[-8:]} {v['status'][0]} {v['status'][1]}/{v['status'][2]}" for w, v in seen.items())


def scenario(name, asserts):
    def deco(fn):
        def wrapper():
            if ONLY and name not in ONLY and not any(name.startswith(o) for o in ONLY):
                return
            log(f"=== scenario {name}")
            t0 = time.monotonic()
            try:
                detail = fn()
                RESULTS.append({"scenario": name, "asserts": asserts, "result": "pass",
                                "detail": detail, "seconds": round(time.monotonic() - t0, 1)})
                log(f"PASS {name}: {detail}")
            except Exception as e:  # noqa: BLE001 - every failure is a scenario result
                RESULTS.append({"scenario": name, "asserts": asserts, "result": "FAIL",
                                "detail": f"{type(e).__name__}: {e}",
                                "seconds": round(time.monotonic() - t0, 1)})
                log(f"FAIL {name}: {type(e).__name__}: {e}")
        wrapper.scenario = name
        return wrapper
    return deco


def direct_read(dm_name, mib=4):
    """Direct reads of a map (the kernel fails a path on the I/O error at once)."""
    return subprocess.Popen(["dd", f"if=/dev/mapper/{dm_name}", "of=/dev/null", "bs=64k",
                             f"count={mib * 16}", "iflag=direct"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def set_state(dev, state):
    # the kernel wants the newline (scsi_sysfs.c: store_state_field)
    write(f"/sys/block/{dev}/device/state", state + "\n")


# ---------------------------------------------------------------------------------------
# Setup


def wait_maps(n, timeout=120):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        paths, maps = paths_by_wwid()
        if len(maps) >= n and all(len(paths.get(w, [])) >= 2 for w in maps):
            return
        time.sleep(1)
    raise RuntimeError(f"multipathd did not assemble {n} maps in {timeout} s: "
                       + multipathd("show", "maps").stdout)


L = None
ALL = []
TOTAL = {}


def healthy_expectation():
    return {w: ("optimal", TOTAL[w], TOTAL[w]) for w in ALL}


def setup():
    """Find the LUNs, allow-list them in the cluster configuration, start the server."""
    global L, ALL, TOTAL
    iscsi = open("/run/iscsi-ok").read().strip() == "1"
    wait_maps(3 if iscsi else 2)
    L = Luns()
    log(f"LUNs: A={L.a} {L.devs(L.a)} B={L.b} {L.devs(L.b)} C={L.c} {L.devs(L.c) if L.c else ''}")
    ALL = [w for w in (L.a, L.b, L.c) if w]
    TOTAL = {w: len(L.devs(w)) for w in ALL}
    # Every LUN allow-listed; the first apply's renames (mpathX -> WWID) accepted.
    for w in ALL:
        mpc("wwid", "add", w)
    mpc("config", "accept", "--always", "true")
    CLOCK.start()
    SERVER.start(uevents=True)


@scenario("01-healthy", "every LUN optimal with all its paths (3/3, 3/3, 2/2 iSCSI) in the "
          "broadcast and in `status`; the apply of the allow-list succeeded (no apply error)")
def s_healthy():
    d = expect_luns(healthy_expectation(), timeout=180)
    st = cli_status()
    node = st.get("nodes", {}).get(NODE, {})
    if node.get("apply-error"):
        raise Failed(f"apply error: {node['apply-error']}")
    for w in ALL:
        lun, _ = lun_cell(st, w)
        if lun.get("cluster-state") != "optimal":
            raise Failed(f"{w} cluster-state {lun.get('cluster-state')}")
    c = mpc("status", "--server", URL, "--token-file", TOKEN_FILE, "--check", check=False)
    if c.returncode != 0:
        raise Failed(f"status --check exit {c.returncode}, expected 0")
    return d + "; status --check 0"


@scenario("02-one-path-offline", "scsi_debug path of LUN A offlined (sysfs state) + direct I/O: "
          "A degraded 2/3, the others optimal; status --check exit 1")
def s_one_offline():
    dev = L.prio50(L.a)[0]
    name, _ = dm_of(L.a)
    set_state(dev, "offline")
    direct_read(name).wait(60)
    exp = healthy_expectation()
    exp[L.a] = ("degraded", TOTAL[L.a] - 1, TOTAL[L.a])
    d = expect_luns(exp, timeout=60)
    c = mpc("status", "--server", URL, "--token-file", TOKEN_FILE, "--check", check=False)
    if c.returncode != 1:
        raise Failed(f"status --check exit {c.returncode}, expected 1")
    return f"{dev} offline; " + d + "; status --check 1"


@scenario("03-all-paths-down-queueing", "every path of LUN A offline while queue_if_no_path: "
          "A failed 0/3 while multipathd still queues (no_path_retry countdown); --check exit 2")
def s_all_down():
    for dev in L.devs(L.a):
        set_state(dev, "offline")
    exp = healthy_expectation()
    exp[L.a] = ("failed", 0, TOTAL[L.a])
    d = expect_luns(exp, timeout=40)
    name, _ = dm_of(L.a)
    q = multipathd("show", "maps", "raw", "format", "%n %Q").stdout
    queueing = [ln for ln in q.splitlines() if ln.split()[:1] == [name]]
    c = mpc("status", "--server", URL, "--token-file", TOKEN_FILE, "--check", check=False)
    if c.returncode != 2:
        raise Failed(f"status --check exit {c.returncode}, expected 2")
    return d + f"; multipathd queueing: {queueing[0].split(None, 1)[1] if queueing else '?'}; status --check 2"


@scenario("04-restored", "the paths of LUN A back to running: A optimal 3/3 again")
def s_restored():
    for dev in L.devs(L.a):
        set_state(dev, "running")
    return expect_luns(healthy_expectation(), timeout=60)


@scenario("05-path-removed", "one path of LUN B deleted (SCSI device removed): B has 2 paths, "
          "all usable: optimal 2/2")
def s_path_removed():
    dev = L.devs(L.b)[-1]
    write(f"/sys/block/{dev}/device/delete", "1")
    TOTAL[L.b] -= 1
    d = expect_luns(healthy_expectation(), timeout=60)
    return f"{dev} deleted; " + d


@scenario("06-iscsi-portal-down", "the second iSCSI portal's address removed: LUN C degraded 1/2 "
          "(session recovery, replacement_timeout 5 s); address back: optimal 2/2")
def s_portal_down():
    if not L.c:
        raise Failed("no iSCSI LUN (iSCSI setup failed, see iscsi-setup.log)")
    run(["ip", "addr", "del", "10.99.0.2/32", "dev", "lab1"])
    name, _ = dm_of(L.c)
    direct_read(name, mib=1)
    exp = healthy_expectation()
    exp[L.c] = ("degraded", 1, 2)
    d1 = expect_luns(exp, timeout=90)
    run(["ip", "addr", "add", "10.99.0.2/32", "dev", "lab1"])
    d2 = expect_luns(healthy_expectation(), timeout=120)
    return f"down: {d1}; up: {d2}"


@scenario("07-multipathd-stopped", "multipathd shut down: the node shows a collection error, "
          "every LUN `unknown` (never optimal) in the broadcast and the status; --check not 0")
def s_mpd_stopped():
    multipathd("shutdown")
    pid = int(open("/run/lab-multipathd.pid").read())
    for _ in range(60):
        if not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
            break
        time.sleep(0.5)

    def check():
        st = cli_status()
        sv = store_view()
        node = st.get("nodes", {}).get(NODE, {})
        cells = {w[-8:]: lun_cell(st, w)[1].get("state") for w in ALL}
        bmaps = (sv.get("broadcast") or {}).get("maps", {})
        bstates = {w[-8:]: bmaps.get(w, {}).get("state") for w in ALL}
        ok = (bool(node.get("collect-error")) and bool(sv.get("collect"))
              and all(s == "unknown" for s in cells.values())
              and all(s in ("unknown", None) for s in bstates.values()))
        return ok, {"collect-error": node.get("collect-error"), "status": cells, "broadcast": bstates}

    secs, seen = wait_until("collection error", check, 30)
    c = mpc("status", "--server", URL, "--token-file", TOKEN_FILE, "--check", check=False)
    if c.returncode == 0:
        raise Failed("status --check exit 0 with multipathd stopped")
    # and it stays so (never optimal) a few ticks later
    time.sleep(6)
    ok, seen2 = check()
    if not ok:
        raise Failed(f"changed while multipathd is down: {seen2}")
    return (f"after {secs:.1f} s: collect-error {seen['collect-error'][:120]!r}; status {seen['status']}; "
            f"broadcast {seen['broadcast']}; status --check {c.returncode}")


@scenario("08-multipathd-restarted", "multipathd started again: collection error cleared, "
          "every LUN optimal again")
def s_mpd_restarted():
    p = subprocess.Popen(["multipathd", "-d", "-s", "-v2"], stdout=open("/tmp/multipathd.log", "a"),
                         stderr=subprocess.STDOUT)
    write("/run/lab-multipathd.pid", str(p.pid))
    d = expect_luns(healthy_expectation(), timeout=120)
    sv = store_view()
    if sv.get("collect"):
        raise Failed(f"collect error still published: {sv['collect']}")
    return d


def wait_applied(what, timeout=60):
    def check():
        st = cli_status()
        node = st.get("nodes", {}).get(NODE, {})
        plan = mpc("config", "plan", "--node", NODE, "--format", "json", check=False, quiet=True)
        return not node.get("apply-error"), {"apply-error": node.get("apply-error"),
                                              "plan": plan.stdout[:300]}
    return wait_until(what, check, timeout)


def show_config_multipath(wwid):
    """The `multipaths` entry of wwid in `multipathd show config`."""
    text = multipathd("show", "config").stdout
    out, inside, block = [], False, []
    for line in text.splitlines():
        s = line.strip()
        if s == "multipath {":
            inside, block = True, []
        elif inside and s == "}":
            inside = False
            if any(b.startswith("wwid") and wwid in b for b in block):
                out = block
        elif inside:
            block.append(s)
    return out


def show_config_defaults():
    text = multipathd("show", "config").stdout
    out = []
    for line in text.splitlines():
        if line.startswith("defaults {"):
            out = []
            continue
        if line.startswith("}") and out is not None:
            if out:
                return out
        out.append(line.strip())
    return out


@scenario("09-apply-alias", "`mpcluster wwid set A --alias labalpha`: the live multipathd "
          "renames the map (show maps names labalpha for A), the status shows the alias")
def s_alias():
    mpc("wwid", "set", L.a, "--alias", "labalpha")

    def check():
        r = multipathd("show", "maps", "raw", "format", "%n %w").stdout
        names = dict(reversed(ln.split()) for ln in r.splitlines() if len(ln.split()) == 2)
        return names.get(L.a) == "labalpha", {"show maps": r.strip()}
    secs, seen = wait_until("alias in multipathd", check, 60)
    st = cli_status()
    lun, _ = lun_cell(st, L.a)
    if lun.get("alias") != "labalpha":
        raise Failed(f"status alias {lun.get('alias')}")
    expect_luns(healthy_expectation(), timeout=30)
    line = [ln for ln in seen["show maps"].splitlines() if L.a in ln]
    return f"after {secs:.1f} s multipathd show maps: {line[0]!r}; status alias labalpha; all optimal"


@scenario("10-apply-per-lun-knob", "`mpcluster wwid set B no-path-retry=12`: multipathd show "
          "config has `no_path_retry 12` in B's multipath entry and B's queueing reads `12 chk`")
def s_per_lun():
    mpc("wwid", "set", L.b, "no-path-retry=12")

    def check():
        entry = show_config_multipath(L.b)
        q = multipathd("show", "maps", "raw", "format", "%w %Q").stdout
        qline = [ln for ln in q.splitlines() if ln.startswith(L.b)]
        ok = "no_path_retry 12" in entry and bool(qline) and qline[0].split(None, 1)[1].strip() == "12 chk"
        return ok, {"entry": entry, "queueing": qline}
    secs, seen = wait_until("no_path_retry 12 in multipathd", check, 60)
    return f"after {secs:.1f} s: show config multipath entry {seen['entry']}; show maps %Q {seen['queueing']}"


@scenario("11-apply-defaults-knob", "`mpcluster config set checker-timeout=17`: multipathd show "
          "config's defaults say `checker_timeout 17`")
def s_defaults():
    mpc("config", "set", "checker-timeout=17")

    def check():
        d = show_config_defaults()
        return "checker_timeout 17" in d, {"defaults": [x for x in d if "checker_timeout" in x
                                                        or "user_friendly" in x or "find_multipaths" in x]}
    secs, seen = wait_until("checker_timeout 17 in multipathd", check, 60)
    wait_applied("no apply error")
    return f"after {secs:.1f} s: show config defaults {seen['defaults']}"


REJECTED = """devices {
\tdevice {
\t\tvendor "LABREJECT"
\t\tproduct "NOPE"
\t\tno_path_retry bogus
\t}
}
"""


@scenario("12-apply-rejected", "overrides that mpcluster stores but multipath-tools' parser "
          "rejects (`no_path_retry bogus`): not applied (show config has no LABREJECT device), "
          "the node's apply error names the parser's complaint; clearing it clears the error")
def s_rejected():
    write("/tmp/rejected.conf", REJECTED)
    mpc("overrides", "set", "/tmp/rejected.conf")

    def check():
        st = cli_status()
        err = st.get("nodes", {}).get(NODE, {}).get("apply-error")
        return bool(err), {"apply-error": err}
    secs, seen = wait_until("apply error", check, 60)
    if "LABREJECT" in multipathd("show", "config").stdout:
        raise Failed("the rejected device section reached multipathd")
    if os.path.exists("/etc/multipath/conf.d") and any(
            "LABREJECT" in open(os.path.join("/etc/multipath/conf.d", f)).read()
            for f in os.listdir("/etc/multipath/conf.d")):
        raise Failed("the rejected overrides were written to /etc/multipath/conf.d")
    sv = store_view()
    write("/tmp/empty.conf", "")
    mpc("overrides", "set", "/tmp/empty.conf")

    def cleared():
        st = cli_status()
        err = st.get("nodes", {}).get(NODE, {}).get("apply-error")
        return not err, {"apply-error": err}
    secs2, _ = wait_until("apply error cleared", cleared, 60)
    return (f"after {secs:.1f} s apply-error {seen['apply-error'][:200]!r} (store: "
            f"{str((sv.get('apply') or {}).get('error'))[:80]!r}); multipathd show config without LABREJECT; "
            f"cleared {secs2:.1f} s after the overrides were emptied")


# ---------------------------------------------------------------------------------------
# Latency: path failure -> new state in the API, with uevents and polling only


class UeventClock(threading.Thread):
    """Records the arrival time of each PATH_FAILED uevent (kernel netlink, group 1), and keeps
    the first kernel message of each kind the agent reacts to (for the unit tests' fixtures)."""

    KINDS = [("path-failed", b"DM_ACTION=PATH_FAILED"), ("path-reinstated", b"DM_ACTION=PATH_REINSTATED"),
             ("map-reload", b"DM_COOKIE="), ("path-remove", b"remove@"), ("path-add", b"add@")]

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 15)
        self.sock.bind((0, 1))
        self.times = []
        self.captured = {}

    def run(self):
        while True:
            data = self.sock.recv(65536)
            if b"DM_ACTION=PATH_FAILED" in data:
                self.times.append(time.monotonic())
            if b"SUBSYSTEM=block" in data and b"DEVTYPE=partition" not in data:
                for kind, marker in self.KINDS:
                    if marker in data and kind not in self.captured:
                        self.captured[kind] = data
                        break

    def dump(self, path):
        with open(path, "w") as f:
            for kind, data in self.captured.items():
                f.write(f"{kind}\t{data!r}\n")

    def first_after(self, t0):
        later = [t for t in self.times if t >= t0]
        return min(later) if later else None


def measure(mode, clock):
    SERVER.start(uevents=(mode == "events"))
    expect_luns(healthy_expectation(), timeout=120)
    name, _ = dm_of(L.a)
    dev = L.prio50(L.a)[0]
    auth = {"Authorization": "Bearer " + token()}

    def state_a():
        req = urllib.request.Request(URL + "/api2/json/cluster/multipath/status", headers=auth)
        with urllib.request.urlopen(req, timeout=5) as r:
            data = json.load(r)["data"]
        _, cell = lun_cell(data, L.a)
        return cell.get("state"), cell.get("paths-active")

    samples, kernel = [], []
    for i in range(LATENCY_RUNS):
        time.sleep(random.uniform(0.5, 2.5))  # no phase lock with the 2 s collection tick
        t0 = time.monotonic()
        set_state(dev, "offline")
        dd = direct_read(name)
        while True:
            s, active = state_a()
            if s == "degraded" and active == TOTAL[L.a] - 1:
                break
            if time.monotonic() - t0 > 60:
                raise Failed(f"{mode} run {i}: not degraded in 60 s (last {s})")
            time.sleep(0.02)
        t1 = time.monotonic()
        samples.append(t1 - t0)
        ev = clock.first_after(t0)
        if ev is not None:
            kernel.append(ev - t0)
        dd.wait(60)
        set_state(dev, "running")
        deadline = time.monotonic() + 60
        while state_a() != ("optimal", TOTAL[L.a]):
            if time.monotonic() > deadline:
                raise Failed(f"{mode} run {i}: not optimal again in 60 s")
            time.sleep(0.2)
        log(f"latency {mode} #{i + 1}: {samples[-1] * 1000:.0f} ms"
            + (f" (kernel PATH_FAILED after {kernel[-1] * 1000:.0f} ms)" if ev is not None else ""))
    return samples, kernel


def stats(xs):
    xs = sorted(xs)
    if not xs:
        return {}
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return {"n": len(xs), "median_ms": round(statistics.median(xs) * 1000),
            "p95_ms": round(p95 * 1000), "max_ms": round(xs[-1] * 1000),
            "min_ms": round(xs[0] * 1000), "mean_ms": round(statistics.mean(xs) * 1000)}


@scenario("13-latency", f"path failure (scsi_debug path offlined + direct I/O) to the new state "
          f"(degraded) in the API, {LATENCY_RUNS} failures with uevents and {LATENCY_RUNS} "
          "with polling only (--no-uevents, 2 s interval)")
def s_latency():
    clock = CLOCK
    for mode in ("events", "polling"):
        samples, kernel = measure(mode, clock)
        LATENCY[mode] = {"api": stats(samples), "kernel_path_failed": stats(kernel),
                         "samples_ms": [round(s * 1000) for s in samples]}
    SERVER.start(uevents=True)
    e, p = LATENCY["events"]["api"], LATENCY["polling"]["api"]
    return (f"events: median {e['median_ms']} ms, p95 {e['p95_ms']} ms, max {e['max_ms']} ms; "
            f"polling: median {p['median_ms']} ms, p95 {p['p95_ms']} ms, max {p['max_ms']} ms")


CLOCK = UeventClock()

SCENARIOS = [s_healthy, s_one_offline, s_all_down, s_restored, s_path_removed, s_portal_down,
             s_mpd_stopped, s_mpd_restarted, s_alias, s_per_lun, s_defaults, s_rejected, s_latency]


def main():
    setup()
    for s in SCENARIOS:
        s()
    SERVER.stop()
    CLOCK.dump(f"{OUT}/uevents-captured.txt")
    report = {
        "kernel": os.uname().release,
        "multipath-tools": run(["dpkg-query", "-W", "-f=${Version}", "multipath-tools"],
                               quiet=True).stdout,
        "luns": {"A": L.a, "B": L.b, "C": L.c},
        "scenarios": RESULTS,
        "latency": LATENCY,
        "guest_seconds": round(time.monotonic() - T_START),
    }
    with open(f"{OUT}/report.json", "w") as f:
        json.dump(report, f, indent=1)
    failed = [r for r in RESULTS if r["result"] != "pass"]
    log(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


try:
    sys.exit(main())
except Exception as e:  # noqa: BLE001
    log(f"lab aborted: {type(e).__name__}: {e}")
    SERVER.stop()
    with open(f"{OUT}/report.json", "w") as f:
        json.dump({"aborted": str(e), "scenarios": RESULTS, "latency": LATENCY}, f, indent=1)
    sys.exit(2)
