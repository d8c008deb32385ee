#!/bin/bash
# Runs one command inside a throw-away QEMU VM whose kernel has IPVS (Debian's cloud kernel, unpacked by
# setup.sh). The host's / is shared read-only over virtiofs with a tmpfs overlay on top; the command runs
# chrooted there, in the current directory, so the repo, bun, ip and ipvsadm are all usable unchanged.
#
#   test/vm/run.sh [--rw DIR] [--env K=V]... [--skipmod MOD]... [--mem MB] [--smp N] [--timeout S]
#                  [--log FILE] -- COMMAND [ARGS...]
#
#   --rw DIR      share host DIR read-write at the same path (everything else written is lost)
#   --env K=V     export into the command's environment (only PATH, the cwd and VIGILVM=1 go by default)
#   --skipmod M   do not load kernel module M (e.g. ip_vs_ovf: a scheduler that is then missing)
#   --timeout S   kill the VM after S seconds (default 600): a stuck boot prints nothing and never ends
# Exit status: the command's, 124 on timeout, 125 if the VM ended without reporting one.
# Environment: VIGIL_VM_KDIR (kernel, default /var/cache/vigil-vm/kernel), VIGIL_VM_CACHE (initramfs
# cache, default /tmp/vigil-vm-cache).
#
# Why these qemu options: TCG, because nested KVM on the CI machines crawls through an unmodified guest
# kernel; -cpu max for the SSE4/AVX bun needs, minus ERMS/FSRM because TCG runs "rep movsb" byte by byte
# and the guest kernel copies pages that way (every exec costs 2x with it); qboot boots -kernel ~0.4 s
# faster than SeaBIOS; virtiofs (the cloud kernel has no 9p) needs guest RAM in shared memory.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

RW= MEM=1024 SMP=1 TIMEOUT=600 LOG= ENVS=() SKIP=
while [ $# -gt 0 ]; do
  case "$1" in
    --rw) RW=$(realpath "$2"); shift 2 ;;
    --env) ENVS+=("$2"); shift 2 ;;
    --skipmod) SKIP=${SKIP:+$SKIP,}$2; shift 2 ;;
    --mem) MEM=$2; shift 2 ;;
    --smp) SMP=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --log) LOG=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: test/vm/run.sh [options] -- COMMAND..." >&2; exit 2; }

KDIR=${VIGIL_VM_KDIR:-/var/cache/vigil-vm/kernel}
KVER=$(ls -d "$KDIR"/lib/modules/*/kernel/net/netfilter/ipvs 2>/dev/null | sort -V | tail -1 |
  sed 's|.*/lib/modules/\([^/]*\)/kernel/.*|\1|')
KERNEL=$KDIR/boot/vmlinuz-$KVER
for t in qemu-system-x86_64 /usr/lib/qemu/virtiofsd cpio; do
  command -v "$t" >/dev/null || { echo "run.sh: $t missing: run test/vm/setup.sh" >&2; exit 1; }
done
[ -n "$KVER" ] && [ -r "$KERNEL" ] || { echo "run.sh: no IPVS kernel under $KDIR: run test/vm/setup.sh" >&2; exit 1; }

WORK=$(mktemp -d /tmp/vigil-vm.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# base initramfs, cached per kernel and per version of the scripts that build it
CACHE=${VIGIL_VM_CACHE:-/tmp/vigil-vm-cache}
mkdir -p "$CACHE"
KEY=$(printf '%s\n' "$KDIR" "$KVER" | cat - "$HERE/init.sh" "$HERE/build-initramfs.sh" | sha1sum | cut -c1-12)
BASE=$CACHE/base-$KEY.cpio.gz
if [ ! -s "$BASE" ]; then
  "$HERE/build-initramfs.sh" "$BASE.tmp.$$" "$KDIR" "$KVER"
  mv "$BASE.tmp.$$" "$BASE"
fi

# per-run segment: /payload/run = cd to the caller's directory, environment, command
mkdir -p "$WORK/p/payload"
{
  echo "cd $(printf '%q' "$PWD") || exit 125"
  echo "export PATH=$(printf '%q' "$PATH"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  echo "export VIGILVM=1"
  for e in "${ENVS[@]}"; do echo "export $(printf '%q' "$e")"; done
  printf '%q ' "$@"
  echo
} > "$WORK/p/payload/run"
(cd "$WORK/p" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK/payload.cpio.gz"
cat "$BASE" "$WORK/payload.cpio.gz" > "$WORK/initrd.cpio.gz" # the kernel unpacks concatenated archives

APPEND="console=ttyS0 quiet loglevel=3 panic=-1 random.trust_cpu=on"
[ -n "$SKIP" ] && APPEND+=" vigilvm.skipmod=$SKIP"
QEMU=(qemu-system-x86_64 -m "$MEM" -smp "$SMP" -nographic -no-reboot -nodefaults -serial stdio
  -kernel "$KERNEL" -initrd "$WORK/initrd.cpio.gz"
  -accel "tcg,thread=$([ "$SMP" -gt 1 ] && echo multi || echo single)" -cpu max,-erms,-fsrm
  -object "memory-backend-memfd,id=mem,size=${MEM}M,share=on" -numa node,memdev=mem)
[ -r /usr/share/qemu/qboot.rom ] && QEMU+=(-bios /usr/share/qemu/qboot.rom)

start_virtiofsd() { # tag dir
  local sock=$WORK/$1.sock
  # -f: without it virtiofsd daemonizes and its pid is lost; no --syslog (its seccomp filter kills it)
  /usr/lib/qemu/virtiofsd --socket-path="$sock" -o source="$2" -o cache=auto -o sandbox=chroot \
    -f -o log_level=warn > "$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
  [ -S "$sock" ] || { echo "run.sh: virtiofsd for $2 did not start:" >&2; cat "$WORK/$1.log" >&2; exit 1; }
  QEMU+=(-chardev "socket,id=$1,path=$sock" -device "vhost-user-fs-pci,chardev=$1,tag=$1,queue-size=1024")
}
start_virtiofsd hostroot /
if [ -n "$RW" ]; then
  start_virtiofsd rw "$RW"
  APPEND+=" vigilvm.rw=$RW"
fi
QEMU+=(-append "$APPEND")

OUT=${LOG:-$WORK/serial.log}
# qemu runs in the background so that a TERM/INT to this script (a test runner's timeout) takes the VM
# down with it: bash defers traps while a foreground pipeline runs
timeout -k 5 "$TIMEOUT" "${QEMU[@]}" < /dev/null > "$WORK/raw.log" 2>&1 &
QPID=$!
PIDS+=("$QPID")
trap 'exit 143' TERM INT
tail -n +1 -f --pid="$QPID" "$WORK/raw.log" | tr -d '\r' &
set +e
wait "$QPID"
QRC=$?
wait
set -e
tr -d '\r' < "$WORK/raw.log" > "$OUT"
RC=$(sed -n 's/^VIGILVM_EXIT=\([0-9]*\)$/\1/p' "$OUT" | tail -1)
[ -n "$RC" ] && exit "$RC"
[ "$QRC" = 124 ] && { echo "run.sh: VM timed out after ${TIMEOUT}s" >&2; exit 124; }
echo "run.sh: VM ended (qemu status $QRC) without VIGILVM_EXIT" >&2
exit 125
