#!/bin/bash
# Builds the lab's guest image once: Debian bookworm (debootstrap minbase) with the Debian
# kernel, multipath-tools, udev, open-iscsi and the LIO target tools. Cached under
# $LAB_CACHE (default /var/cache/mpcluster-lab); rebuilt only when this file changes.
#   $LAB_CACHE/image/rootfs.ext4   the root filesystem (raw ext4; booted read-only-snapshot)
#   $LAB_CACHE/image/vmlinuz, initrd.img   the guest kernel and initramfs
#   $LAB_CACHE/image/versions.txt  package versions in the image
#   $LAB_CACHE/image/stamp         hash of this script the image was built from
set -euo pipefail
LAB_CACHE=${LAB_CACHE:-/var/cache/mpcluster-lab}
MIRROR=${LAB_MIRROR:-http://deb.debian.org/debian}
IMG=$LAB_CACHE/image
STAMP=$(sha256sum "$0" | cut -c1-16)
if [[ -f $IMG/stamp && $(cat "$IMG/stamp") == "$STAMP" && -f $IMG/rootfs.ext4 ]]; then
	echo "lab: guest image up to date ($IMG)"
	exit 0
fi
[[ $(id -u) == 0 ]] || { echo "lab: building the image needs root (debootstrap)" >&2; exit 1; }
for tool in debootstrap mkfs.ext4; do
	command -v $tool >/dev/null || { echo "lab: $tool missing (apt-get install debootstrap e2fsprogs)" >&2; exit 1; }
done
PKGS=linux-image-amd64,multipath-tools,kpartx,dmsetup,udev,kmod,open-iscsi,targetcli-fb,lsscsi,iproute2,procps,curl,util-linux,sg3-utils
ROOT=$LAB_CACHE/build/rootfs
rm -rf "$LAB_CACHE/build" "$IMG.new"
mkdir -p "$LAB_CACHE/build" "$IMG.new"
echo "lab: debootstrap bookworm into $ROOT (takes a few minutes)"
debootstrap --variant=minbase --include="$PKGS" bookworm "$ROOT" "$MIRROR" >"$LAB_CACHE/build/debootstrap.log" 2>&1 ||
	{ tail -30 "$LAB_CACHE/build/debootstrap.log" >&2; exit 1; }
echo mplab >"$ROOT/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 mplab\n' >"$ROOT/etc/hosts"
# the first boot stage: mount the share and hand over to the lab's guest script from the repo
cat >"$ROOT/mplab-init.sh" <<'INIT'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /run /tmp /lab
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
modprobe 9pnet_virtio; modprobe 9p
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 lab /lab
if [ -x /lab/guest/init.sh ]; then exec /lab/guest/init.sh; fi
echo "MPLAB: no /lab/guest/init.sh"; echo o >/proc/sysrq-trigger
INIT
chmod 755 "$ROOT/mplab-init.sh"
# no services are started by packages (no systemd in the guest); keep the image small
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/*
chroot "$ROOT" dpkg-query -W -f='${Package}\t${Version}\n' >"$IMG.new/versions.txt"
cp "$ROOT"/boot/vmlinuz-* "$IMG.new/vmlinuz"
cp "$ROOT"/boot/initrd.img-* "$IMG.new/initrd.img"
ls "$ROOT"/lib/modules >"$IMG.new/kernel.txt"
SIZE_MB=$(($(du -sm "$ROOT" | cut -f1) + 700))
mkfs.ext4 -q -L mplab -d "$ROOT" "$IMG.new/rootfs.ext4" "${SIZE_MB}M"
echo "$STAMP" >"$IMG.new/stamp"
rm -rf "$IMG" "$LAB_CACHE/build"
mv "$IMG.new" "$IMG"
echo "lab: guest image built: $IMG ($(du -sh "$IMG" | cut -f1))"
