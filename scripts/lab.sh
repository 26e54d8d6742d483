#!/bin/bash
# The real-kernel lab: the agent, the status and the config apply against a live multipathd
# and dm-multipath in a QEMU guest (Debian bookworm, scsi_debug, LIO iSCSI + open-iscsi over two
# portals). Opt-in and slow (QEMU TCG: about 10 minutes, plus the release build, plus about
# 4 minutes for the guest image the first time); not part of .ci/run. See docs/LAB.md.
#
#   scripts/lab.sh [--only S1,S2] [--latency-runs N] [--no-iscsi] [--no-build] [--timeout MIN]
#
# Needs root (debootstrap for the image, once), qemu-system-x86 and debootstrap
# (apt-get install qemu-system-x86 debootstrap). The image and every run's output live under
# $LAB_CACHE (default /var/cache/mpcluster-lab); the run's report is printed and kept in
# $LAB_CACHE/runs/<time>/report.md. Exit 0 when every scenario passed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
LAB_CACHE=${LAB_CACHE:-/var/cache/mpcluster-lab}
export LAB_CACHE
ONLY="" LATENCY_RUNS=20 ISCSI=1 BUILD=1 TIMEOUT_MIN=60
while [[ $# -gt 0 ]]; do
	case $1 in
	--only) ONLY=$2; shift 2 ;;
	--latency-runs) LATENCY_RUNS=$2; shift 2 ;;
	--no-iscsi) ISCSI=0; shift ;;
	--no-build) BUILD=0; shift ;;
	--timeout) TIMEOUT_MIN=$2; shift 2 ;;
	-h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "lab: unknown argument $1" >&2; exit 2 ;;
	esac
done
command -v qemu-system-x86_64 >/dev/null || { echo "lab: qemu-system-x86_64 missing (apt-get install qemu-system-x86)" >&2; exit 2; }
START=$(date +%s)

bash lab/build-image.sh
IMG=$LAB_CACHE/image

if [[ $BUILD == 1 ]]; then
	echo "lab: cargo build --release -p mpcluster"
	cargo build --release -p mpcluster --locked
fi
BIN=${MPCLUSTER_BIN:-$REPO/target/release/mpcluster}
[[ -x $BIN ]] || { echo "lab: $BIN missing" >&2; exit 2; }

RUN=$LAB_CACHE/runs/$(date -u +%Y%m%dT%H%M%SZ)
SHARE=$RUN/share
mkdir -p "$SHARE/bin" "$SHARE/out"
cp -r lab/guest "$SHARE/guest"
cp "$BIN" "$SHARE/bin/mpcluster"
printf 'only=%s\nlatency_runs=%s\niscsi=%s\n' "$ONLY" "$LATENCY_RUNS" "$ISCSI" >"$SHARE/params"
# keep the last 5 runs only
ls -1d "$LAB_CACHE"/runs/*/ 2>/dev/null | head -n -5 | xargs -r rm -rf

echo "lab: booting the guest (QEMU TCG); serial console: $RUN/serial.log"
set +e
timeout --foreground $((TIMEOUT_MIN * 60)) qemu-system-x86_64 \
	-accel tcg,thread=multi -cpu max -m 2048 -smp 2 \
	-display none -no-reboot -serial "file:$RUN/serial.log" -monitor none \
	-kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" \
	-append "root=/dev/vda rw rootfstype=ext4 console=ttyS0 init=/mplab-init.sh panic=-1 net.ifnames=0 quiet" \
	-drive "file=$IMG/rootfs.ext4,format=raw,if=virtio,snapshot=on" \
	-virtfs "local,path=$SHARE,mount_tag=lab,security_model=none,id=lab" \
	-nic none
QEMU_RC=$?
set -e
ELAPSED=$(($(date +%s) - START))
cp -r "$SHARE/out/." "$RUN/" 2>/dev/null || true
rm -rf "$SHARE"
if [[ ! -f $RUN/report.json ]]; then
	echo "lab: no report (qemu exit $QEMU_RC after ${ELAPSED}s); see $RUN/serial.log and $RUN/guest.log" >&2
	tail -n 30 "$RUN/guest.log" 2>/dev/null >&2 || tail -n 30 "$RUN/serial.log" >&2
	exit 1
fi
python3 lab/report.py "$RUN" "$ELAPSED" >"$RUN/report.md"
cat "$RUN/report.md"
echo "lab: run kept in $RUN"
[[ $(cat "$RUN/scenarios.rc" 2>/dev/null) == 0 ]]
