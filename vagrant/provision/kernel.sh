#!/bin/sh
# lb's XDP program needs Linux 6.15 or later (BPF load-acquire/store-release);
# Debian 13 ships 6.12, so the lb nodes take the kernel from trixie-backports.
# Vagrant reboots the machine after this script (`reboot: true`).
set -eu
release=$(uname -r)
major=${release%%.*}
rest=${release#*.}
minor=${rest%%.*}
if [ "$major" -gt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -ge 15 ]; }; then
    echo "kernel $release: new enough for lb"
    exit 0
fi
. /etc/os-release
echo "kernel $release is older than 6.15: installing linux-image-amd64 from ${VERSION_CODENAME}-backports"
echo "deb http://deb.debian.org/debian ${VERSION_CODENAME}-backports main" \
    > /etc/apt/sources.list.d/backports.list
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q -t "${VERSION_CODENAME}-backports" linux-image-amd64
