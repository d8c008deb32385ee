#!/bin/bash
# Builds the base initramfs of the test VM: busybox-static, /init (init.sh beside this script) and the
# kernel modules the tests need with their dependencies, in load order.
#
#   build-initramfs.sh OUT.cpio.gz KDIR KVER
#
# KDIR is where setup.sh unpacked the kernel .deb (KDIR/lib/modules/KVER). Dependencies come from each
# module's own "depends=" field (and "softdep=pre:"), so neither modules.dep nor kmod is needed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: build-initramfs.sh OUT.cpio.gz KDIR KVER}
KDIR=${2:?KDIR}
KVER=${3:?KVER}
MODROOT=$KDIR/lib/modules/$KVER
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || { echo "no $BUSYBOX: run test/vm/setup.sh" >&2; exit 1; }
[ -d "$MODROOT/kernel" ] || { echo "no $MODROOT: run test/vm/setup.sh" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
R=$WORK/root
M=$R/lib/modules/vigilvm
mkdir -p "$R"/{bin,dev,proc,sys,tmp,run,host,newroot,ovl,etc,payload} "$M"
cp "$BUSYBOX" "$R/bin/busybox"
cp "$HERE/init.sh" "$R/init"
chmod 755 "$R/init"

# module name -> path (names use "_" where file names may use "-")
find "$MODROOT/kernel" -name '*.ko*' |
  awk -F/ '{n=$NF; sub(/\.ko(\.(xz|zst|gz))?$/, "", n); gsub(/-/, "_", n); print n "\t" $0}' > "$WORK/index"

# IPVS with every scheduler (tests pick schedulers; one can be held back with vigilvm.skipmod=),
# network devices for namespaced topologies, and what mounting the host root over virtiofs needs.
# Nothing else: every insmod costs boot time under TCG (the sip engine and the ipip/gre/ip6 tunnel
# modules with their dependencies added ~2 s), and programming TUN dests needs no tunnel module.
WANT="ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh ip_vs_wlc ip_vs_lc ip_vs_sed ip_vs_nq ip_vs_mh ip_vs_dh ip_vs_fo
      ip_vs_ovf ip_vs_lblc ip_vs_lblcr ip_vs_ftp
      veth dummy bridge macvlan virtio_pci virtio_net fuse virtiofs overlay"
: > "$M/order"
add_module() { # depth first: dependencies before dependents, each once
  local name=${1//-/_} path file deps d
  grep -qx "$name.ko" "$M/order" && return 0
  path=$(awk -F'\t' -v n="$name" '$1==n {print $2; exit}' "$WORK/index")
  [ -n "$path" ] || { [ -n "${2:-}" ] || echo "module $name not in $MODROOT (built in?)" >&2; return 0; }
  file=$M/$name.ko
  case "$path" in
    *.ko.xz) xz -dc "$path" > "$file" ;;
    *.ko.zst) zstd -qdc "$path" > "$file" ;;
    *.ko.gz) gzip -dc "$path" > "$file" ;;
    *) cp "$path" "$file" ;;
  esac
  deps=$(grep -a -o -m1 'depends=[A-Za-z0-9_,-]*' "$file" | sed -n 1p | cut -d= -f2 | tr ',' ' ')
  for d in $deps; do add_module "$d"; done
  # softdep names may be aliases (crc32c -> crc32c_generic); both are optional
  for d in $(grep -a -o 'softdep=pre: [A-Za-z0-9_ -]*' "$file" | sed -n '1s/^softdep=pre: //p'); do
    if awk -F'\t' -v n="${d//-/_}" '$1==n {f=1} END {exit !f}' "$WORK/index"; then add_module "$d" optional
    else add_module "${d}_generic" optional; fi
  done
  echo "$name.ko" >> "$M/order"
}
for m in $WANT; do add_module "$m"; done
echo "$KVER" > "$R/etc/vigilvm-kver"
echo "$KDIR" > "$R/etc/vigilvm-kdir"

(cd "$R" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$OUT"
echo "vigil-vm: built $OUT ($(du -h "$OUT" | cut -f1)), kernel $KVER, $(wc -l < "$M/order") modules" >&2
