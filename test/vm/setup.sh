#!/bin/bash
# One-time, idempotent install of what the IPVS test VM needs (test/vm/run.sh). .ci/run calls this.
#   - qemu-system-x86 (qemu + the C virtiofsd + qboot), busybox-static (the initramfs userland),
#     ipvsadm (the external oracle the VM tests compare against), cpio (builds the initramfs).
#     --no-install-recommends: with recommends apt pulls ~185 packages (GTK, mesa, gstreamer).
#   - Debian's cloud kernel, which has IPVS as modules, is only downloaded and unpacked into
#     $VIGIL_VM_KDIR: installing linux-image-cloud-amd64 would also pull udev, initramfs-tools and
#     a systemd upgrade and run update-initramfs, none of which the VM needs.
# Environment: VIGIL_VM_KDIR (default /var/cache/vigil-vm/kernel).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
KDIR=${VIGIL_VM_KDIR:-/var/cache/vigil-vm/kernel}

need=()
{ command -v qemu-system-x86_64 >/dev/null && [ -x /usr/lib/qemu/virtiofsd ]; } || need+=(qemu-system-x86)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v ipvsadm >/dev/null || need+=(ipvsadm)
command -v cpio >/dev/null || need+=(cpio)
if [ ${#need[@]} -gt 0 ]; then
  # a fresh image may have stale or no package lists: update only when the first attempt fails
  apt-get install -y -q --no-install-recommends "${need[@]}" ||
    { apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"; }
fi

kernel_pkg() { # the versioned image the cloud meta-package points at
  apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ && !p {print $2; p=1}'
}

if ! ls -d "$KDIR"/lib/modules/*/kernel/net/netfilter/ipvs >/dev/null 2>&1; then
  pkg=$(kernel_pkg)
  if [ -z "$pkg" ]; then apt-get update -q; pkg=$(kernel_pkg); fi
  [ -n "$pkg" ] || { echo "setup.sh: apt knows no linux-image-cloud-amd64" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  chown _apt "$tmp" 2>/dev/null || true # apt-get download runs as user _apt
  (cd "$tmp" && apt-get download -q "$pkg")
  rm -rf "$KDIR.tmp"
  mkdir -p "$KDIR.tmp"
  dpkg-deb -x "$tmp"/*.deb "$KDIR.tmp"
  rm -rf "$KDIR"
  mv "$KDIR.tmp" "$KDIR"
  kver=$(ls "$KDIR/lib/modules")
  # the .deb ships no modules.dep; modprobe inside the guest (scheduler autoload by ipvsadm) wants one
  if command -v depmod >/dev/null; then depmod -b "$KDIR" "$kver"; else busybox depmod -b "$KDIR" "$kver"; fi
fi
echo "vigil-vm ready: qemu $(qemu-system-x86_64 --version | awk 'NR==1 {print $4}'), kernel $(ls "$KDIR/lib/modules") in $KDIR"
