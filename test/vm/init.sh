#!/bin/busybox sh
# /init of the test VM (build-initramfs.sh copies it in). Loads the modules, mounts the host's root
# read-only over virtiofs with a tmpfs overlay on top (writes stay in the guest), chroots into it and
# runs the payload (/payload/run, a per-run cpio segment from run.sh). Prints VIGILVM_EXIT=<status>,
# the only line run.sh trusts, then powers off.
# Kernel command line: vigilvm.rw=DIR      mount virtiofs tag "rw" read-write at DIR (results to the host)
#                      vigilvm.skipmod=a,b do not load these modules (tests of a missing scheduler)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm

log() { echo "vigilvm: $*"; }
finish() {
  echo "VIGILVM_EXIT=$1"
  sync
  poweroff -f
  sleep 5
}

RWDIR= SKIP=
for a in $(cat /proc/cmdline); do
  case $a in
    vigilvm.rw=*) RWDIR=${a#vigilvm.rw=} ;;
    vigilvm.skipmod=*) SKIP=,${a#vigilvm.skipmod=}, ;;
  esac
done

# busybox insmod, in the dependency order build-initramfs.sh computed. The kernel cannot autoload a
# module later (no /sbin/modprobe in this root), so a skipped scheduler stays missing.
for m in $(cat /lib/modules/vigilvm/order); do
  case $SKIP in *,${m%.ko},*) continue ;; esac
  insmod /lib/modules/vigilvm/$m 2>/dev/null || log "insmod $m failed"
done
ip link set lo up

mount -t virtiofs -o ro hostroot /host || { log "mount virtiofs failed"; finish 125; }
mount -t tmpfs tmpfs /ovl
mkdir -p /ovl/upper /ovl/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/ovl/upper,workdir=/ovl/work /newroot ||
  { log "overlay mount failed"; finish 125; }
for d in proc sys dev; do mount --rbind /$d /newroot/$d; done
# the host's /run/netns bind mounts mean nothing here and would collide with names the guest creates
mkdir -p /newroot/run/netns 2>/dev/null
mount -t tmpfs tmpfs /newroot/run/netns
# ipvsadm/modprobe in the guest look under /lib/modules/KVER; the kernel was unpacked elsewhere
KVER=$(cat /etc/vigilvm-kver) KDIR=$(cat /etc/vigilvm-kdir)
if [ ! -e /newroot/lib/modules/$KVER ]; then
  mkdir -p /newroot/lib/modules && ln -s "$KDIR/lib/modules/$KVER" /newroot/lib/modules/$KVER
fi
if [ -n "$RWDIR" ]; then
  mkdir -p /newroot$RWDIR 2>/dev/null
  mount -t virtiofs rw /newroot$RWDIR || { log "mount rw share at $RWDIR failed"; finish 125; }
fi
cp /payload/run /newroot/run/vigilvm-payload
HOME=/root chroot /newroot /bin/sh /run/vigilvm-payload
finish $?
