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
# The NC gives sda1, sda2, sda3 SCSI units 0, 1, 2: the guest sees them as sda, sdb, sdc.
disk_of() {
    name=$(get "meta-data/block-device-mapping/$1") || return 1
    unit=${name##*[!0-9]}
    echo "/dev/sd$(echo abcdefgh | cut -c "$unit")"
}
eph=$(disk_of ephemeral0) && mount "$eph" /mnt/ephemeral 2>/dev/null && say ephemeral "$eph" mounted
swp=$(disk_of swap) && swapon "$swp" 2>/dev/null && say swap "$swp" on
echo "GUEST $id says hello" > /www/index.html
httpd -p 80 -h /www
(while true; do echo "SSH-2.0-eucasim-guest $id" | nc -l -p 22 >/dev/null 2>&1; done) &
say ready
last=""
while true; do
    now=$(awk 'NR > 2 {print $4 ":" $3}' /proc/partitions | sort | tr '\n' ' ')
    [ "$now" != "$last" ] && say disks "$now"
    last="$now"
    sleep 1
done
