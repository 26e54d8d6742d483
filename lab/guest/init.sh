#!/bin/sh
# PID 1 of the lab guest (started by /mplab-init.sh of the image once /lab, the 9p share, is
# mounted). Brings up udev, scsi_debug, a LIO iSCSI target + open-iscsi over two portals and
# multipathd, then runs the scenarios (scenarios.py) and powers off. Never `wait`s for all
# children: multipathd, iscsid and mpcluster run in the background for the whole run.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
OUT=/lab/out
mkdir -p "$OUT"
exec >"$OUT/guest.log" 2>&1
T0=$(cut -d' ' -f1 /proc/uptime)
log() { echo "MPLAB[$(cut -d' ' -f1 /proc/uptime)]: $*"; echo "MPLAB[$(cut -d' ' -f1 /proc/uptime)]: $*" >/dev/console; }
poweroff_now() { sync; echo o >/proc/sysrq-trigger; sleep 10; }
trap poweroff_now EXIT
log "guest up (kernel $(uname -r)), params: $(cat /lab/params 2>/dev/null | tr '\n' ' ')"

hostname mplab
ip link set lo up
mount -t configfs none /sys/kernel/config 2>/dev/null
echo 1 >/proc/sys/kernel/sysrq

# udev (no systemd in the guest)
/lib/systemd/systemd-udevd --daemon || log "udevd failed"
modprobe sd_mod
udevadm trigger --action=add
udevadm settle -t 30
modprobe dm_multipath; modprobe dm_round_robin; modprobe dm_service_time; modprobe scsi_dh_alua

# scsi_debug: 5 hosts x 2 LUNs sharing one store; drop the ALUA-standby hosts (host_no % 3 == 2)
# whose READs fail (see shared/fixtures/multipathd-0.9.4/README.md): 3 paths per LUN remain.
modprobe scsi_debug add_host=5 num_tgts=1 max_luns=2 vpd_use_hostno=0 dev_size_mb=64
udevadm settle -t 30
for dev in /sys/bus/pseudo/drivers/scsi_debug/adapter*/host*; do
	h=${dev##*/host}
	if [ $((h % 3)) -eq 2 ]; then
		for sdev in /sys/class/scsi_host/host$h/device/target*/*:*:*:*; do
			[ -e "$sdev/delete" ] && echo 1 >"$sdev/delete"
		done
	fi
done
udevadm settle -t 30

# LIO iSCSI target (configfs) with one ramdisk LUN, two portals on dummy interfaces, and the
# open-iscsi initiator logged in through both: 2 paths to one LUN.
ISCSI_OK=0
setup_iscsi() {
	modprobe target_core_mod || return 1
	mount -t configfs none /sys/kernel/config 2>/dev/null
	modprobe iscsi_target_mod || return 1
	modprobe dummy
	ip link add lab0 type dummy && ip addr add 10.99.0.1/32 dev lab0 && ip link set lab0 up || return 1
	ip link add lab1 type dummy && ip addr add 10.99.0.2/32 dev lab1 && ip link set lab1 up || return 1
	C=/sys/kernel/config/target
	mkdir -p $C/core/rd_mcp_0/lablun0 || return 1
	echo rd_pages=16384 >$C/core/rd_mcp_0/lablun0/control
	echo 1 >$C/core/rd_mcp_0/lablun0/enable || return 1
	# a unit serial (as targetcli sets one): without it the VPD 0x83 page has no valid NAA
	# designator and no target port group, and dm-multipath cannot attach scsi_dh_alua
	echo 4c616231-0000-4000-8000-6d70636c7573 >$C/core/rd_mcp_0/lablun0/wwn/vpd_unit_serial || return 1
	IQN=iqn.2026-12.lab.mpcluster:target
	T=$C/iscsi/$IQN/tpgt_1
	mkdir -p $T/lun/lun_0 || return 1
	ln -s $C/core/rd_mcp_0/lablun0 $T/lun/lun_0/lablun0 || return 1
	mkdir $T/np/10.99.0.1:3260 && mkdir $T/np/10.99.0.2:3260 || return 1
	echo 0 >$T/attrib/authentication
	echo 1 >$T/attrib/generate_node_acls
	echo 1 >$T/attrib/cache_dynamic_acls
	echo 0 >$T/attrib/demo_mode_write_protect
	echo 1 >$T/enable || return 1
	modprobe iscsi_tcp
	[ -s /etc/iscsi/initiatorname.iscsi ] || echo "InitiatorName=iqn.2026-12.lab.mpcluster:initiator" >/etc/iscsi/initiatorname.iscsi
	mkdir -p /run/lock/iscsi
	iscsid || return 1
	sleep 1
	iscsiadm -m discovery -t sendtargets -p 10.99.0.1:3260 || return 1
	# fail fast on a lost portal: 5 s of recovery, 2 s NOPs
	iscsiadm -m node -o update -n node.session.timeo.replacement_timeout -v 5
	iscsiadm -m node -o update -n node.conn[0].timeo.noop_out_interval -v 2
	iscsiadm -m node -o update -n node.conn[0].timeo.noop_out_timeout -v 2
	iscsiadm -m node -l || return 1
	udevadm settle -t 30
	ISCSI_OK=1
}
if [ "$(sed -n 's/^iscsi=//p' /lab/params)" != 0 ]; then
	setup_iscsi >"$OUT/iscsi-setup.log" 2>&1 || log "iSCSI setup FAILED (see iscsi-setup.log)"
fi
echo "$ISCSI_OK" >/run/iscsi-ok
lsscsi -t >"$OUT/lsscsi.txt" 2>&1

cat >/etc/multipath.conf <<'CONF'
defaults {
	user_friendly_names yes
	find_multipaths no
	polling_interval 5
	max_polling_interval 10
}
blacklist {
	devnode "^vd[a-z]"
}
devices {
	device {
		vendor "Linux"
		product "scsi_debug"
		path_grouping_policy group_by_prio
		prio alua
		failback immediate
		no_path_retry 6
	}
}
CONF
cp /etc/multipath.conf "$OUT/multipath.conf"
log "starting multipathd"
multipathd -d -s -v2 >/tmp/multipathd.log 2>&1 &
echo $! >/run/lab-multipathd.pid

log "running the scenarios"
python3 /lab/guest/scenarios.py
echo $? >"$OUT/scenarios.rc"
log "scenarios done (rc=$(cat "$OUT/scenarios.rc"))"
# small logs only
tail -n 400 /tmp/multipathd.log >"$OUT/multipathd.log" 2>/dev/null
for f in /tmp/mpcluster-*.log; do [ -e "$f" ] && tail -n 300 "$f" >"$OUT/${f##*/}"; done
dmesg | tail -n 300 >"$OUT/dmesg-tail.txt"
{
	uname -r
	cat /proc/version
	dpkg-query -W -f='${Package}\t${Version}\n' multipath-tools kpartx dmsetup udev open-iscsi targetcli-fb linux-image-amd64
	multipath -h 2>&1 | head -1
	/lab/bin/mpcluster --version
} >"$OUT/versions.txt" 2>&1
log "end after $(awk -v t0="$T0" '{print int($1-t0)}' /proc/uptime) s"
