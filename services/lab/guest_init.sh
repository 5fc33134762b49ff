#!/bin/busybox sh
# /init of eucasim's tiny guest: network by DHCP, metadata and user-data from 169.254.169.254,
# the ephemeral disk mounted and swap on, answers on ports 80 and 22, and every change of its
# disks reported on the console. Lines a test reads start with "EUCASIM-GUEST".
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /mnt/ephemeral /www
for module in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
              failover net_failover virtio_net virtio_blk scsi_common scsi_mod sd_mod virtio_scsi; do
    insmod "/lib/modules/$module.ko" 2>/dev/null
done
say() { echo "EUCASIM-GUEST $*" > /dev/console; }
say booted
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -n -q -t 20 -T 1 -A 1 -s /etc/udhcpc.sh >/dev/null 2>&1
say address "$(ip -4 -o addr show dev eth0 | awk '{print $4}')"
md=http://169.254.169.254/latest
# busybox's wget -T segfaults in Debian's build: timeout(1) bounds it instead.
get() { timeout 5 wget -qO- "$md/$1" 2>/dev/null; }
id=""
for try in 1 2 3 4 5 6 7 8 9 10; do
    id=$(get meta-data/instance-id) && [ -n "$id" ] && break
    sleep 1
done
say instance-id "$id"
if get user-data > /tmp/user-data && [ -s /tmp/user-data ]; then
    say user-data "$(wc -c < /tmp/user-data) bytes"
    if [ "$(head -c 2 /tmp/user-data)" = "#!" ]; then
        chmod +x /tmp/user-data
        /tmp/user-data > /tmp/user-data.out 2>&1
        say user-data-ran "$?" "$(head -c 200 /tmp/user-data.out | tr '\n' ' ')"
    fi
fi
# The NC gives sda1, sda2, sda3 SCSI units 0, 1, 2 (virtio-scsi LUNs); the kernel names the
# disks in the order its asynchronous scan finds them, not by unit (swap came up as sdb beside
# an ephemeral sdc), so a disk is found by its LUN, the last field of its SCSI address.
disk_of() {
    name=$(get "meta-data/block-device-mapping/$1") || return 1
    say block-device-mapping "$1=$name"
    lun=$(( ${name##*[!0-9]} - 1 ))
    for dev in /sys/block/sd*; do
        address=$(basename "$(readlink "$dev/device")")
        [ "${address##*:}" = "$lun" ] && { echo "/dev/$(basename "$dev")"; return 0; }
    done
    return 1
}
eph=$(disk_of ephemeral0) && mount "$eph" /mnt/ephemeral 2>/dev/null && say ephemeral "$eph" mounted
swp=$(disk_of swap) && swapon "$swp" 2>/dev/null && say swap "$swp" on
echo "GUEST $id says hello" > /www/index.html
httpd -p 80 -h /www
(while true; do echo "SSH-2.0-eucasim-guest $id" | nc -l -p 22 >/dev/null 2>&1; done) &
say ready
# The disk agent: five times a second it compares /proc/partitions with the last look.
# A disk that appears after boot (a hot-plugged EBS volume) is reported with its size and
# serial (the NC sets <serial> to the volume id); if its first sector is blank (a new volume)
# the agent writes one marker line there, "EUCASIM-MARKER <instance-id> <serial>", so a test
# can follow the data to another guest or through a snapshot; if the sector already holds a
# marker it is printed. A disk holding anything else is never written. A disk that goes away
# is reported too.
serial_of() {
    if [ -r "/sys/block/$1/serial" ]; then cat "/sys/block/$1/serial"
    elif [ -r "/sys/block/$1/device/vpd_pg80" ]; then tail -c +5 "/sys/block/$1/device/vpd_pg80" | tr -d '\000 '
    fi
}
disks() { awk 'NR > 2 && $4 !~ /[0-9]$/ {print $4}' /proc/partitions | sort; }
seen_disk() {
    disk=$1
    # 4 KiB rather than one sector: ext2/3/4 leave their first KiB blank, swap signs at 4086.
    head -c 4096 "/dev/$disk" > /tmp/head 2>/dev/null && [ "$(wc -c < /tmp/head)" -eq 4096 ] ||
        { say disk-unreadable "$disk"; return; }
    if [ "$(tr -d '\000' < /tmp/head | wc -c)" -eq 0 ]; then
        printf 'EUCASIM-MARKER %s %s\n' "$id" "$(serial_of "$disk")" |
            dd of="/dev/$disk" bs=512 count=1 conv=sync,fsync 2>/dev/null
        sync
        say disk-marked "$disk" "$(head -n 1 "/dev/$disk" | tr -d '\000')"
    elif [ "$(head -c 14 /tmp/head)" = EUCASIM-MARKER ]; then
        say disk-marker "$disk" "$(head -n 1 /tmp/head)"
    fi
}
known=$(disks)
last=""
# Two processes a look (cat, sleep) so that five looks a second cost a TCG guest little; the
# rest runs only when the table changed.
while true; do
    table=$(cat /proc/partitions)
    if [ "$table" != "$last" ]; then
        last=$table
        say disks "$(awk 'NR > 2 {print $4 ":" $3}' /proc/partitions | sort | tr '\n' ' ')"
        current=$(disks)
        for disk in $current; do
            echo "$known" | grep -qx "$disk" && continue
            say disk-added "$disk" "$(cat "/sys/block/$disk/size" 2>/dev/null)" "serial=$(serial_of "$disk")"
            seen_disk "$disk"
        done
        for disk in $known; do
            echo "$current" | grep -qx "$disk" || say disk-removed "$disk"
        done
        known=$current
    fi
    sleep 0.2
done
