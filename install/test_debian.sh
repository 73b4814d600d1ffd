#!/usr/bin/env bash
# The whole test suite against another Debian release's OBS and Python, in a chroot.
# Debian 12 (this project's CI) has OBS 29; this checks newer ones without a second machine:
#   sudo install/test_debian.sh trixie     # Debian 13: OBS 30.2, Python 3.13
#   sudo install/test_debian.sh forky      # Debian 14 (testing): OBS 32.x, Python 3.14
# Needs root, debootstrap and the Debian mirror; the chroot stays in /srv/face-swap-SUITE for
# the next run (to start afresh: rm -rf --one-file-system /srv/face-swap-SUITE, after a run:
# never while /proc, /sys or /dev are mounted inside it). The repository is cloned into it (committed
# state, HEAD), so commit what you want checked. Extra arguments go to pytest.
#   install/test_debian.sh SUITE --prepare   only build the chroot, clone and set up the
#                                            venv (CI does this while the host suite runs);
#                                            a later test run of the same HEAD reuses them
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
suite="${1:?usage: install/test_debian.sh SUITE [--prepare | pytest args...] (e.g. trixie, forky)}"
shift
prepare=0
if [ "${1:-}" = "--prepare" ]; then prepare=1; shift; fi
chroot_dir="/srv/face-swap-$suite"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

[ "$(id -u)" = 0 ] || { echo "test_debian: run as root (debootstrap, chroot, mount)" >&2; exit 1; }
command -v debootstrap >/dev/null || apt-get install -y -q debootstrap

if [ ! -x "$chroot_dir/usr/bin/obs" ]; then
  script=/usr/share/debootstrap/scripts/$suite
  [ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid  # newer than this debootstrap
  [ -d "$chroot_dir/usr" ] || debootstrap --variant=minbase --include=ca-certificates \
    "$suite" "$chroot_dir" "$mirror" "$script"
fi

mounts=()  # unmounted on any exit, also those a killed earlier run left behind
cleanup() { for ((i=${#mounts[@]}-1; i>=0; i--)); do umount -l "${mounts[i]}" || true; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
for d in proc sys dev dev/pts; do
  mountpoint -q "$chroot_dir/$d" || mount --bind "/$d" "$chroot_dir/$d"
  mounts+=("$chroot_dir/$d")
done
# the evaluation data the tests read from ../shared (next to the repository): /shared, as
# the clone lives at /repo
if [ -d "$root/../shared" ]; then
  mkdir -p "$chroot_dir/shared"
  mountpoint -q "$chroot_dir/shared" || mount --bind "$root/../shared" "$chroot_dir/shared"
  mounts+=("$chroot_dir/shared")
fi
cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf"
# A TLS-intercepting proxy's CA (if this machine trusts extra ones) must be trusted inside too.
cp /usr/local/share/ca-certificates/*.crt "$chroot_dir/usr/local/share/ca-certificates/" \
  2>/dev/null || true

head="$(git -C "$root" rev-parse HEAD)"
if [ "$(git -C "$chroot_dir/repo" rev-parse HEAD 2>/dev/null)" != "$head" ] \
    || [ -n "$(git -C "$chroot_dir/repo" status --porcelain 2>/dev/null)" ]; then
  rm -rf "$chroot_dir/repo"
  git clone -q "$root" "$chroot_dir/repo"
fi
chroot "$chroot_dir" /bin/bash -c '
  set -e
  export DEBIAN_FRONTEND=noninteractive HOME=/root LANG=C.UTF-8 CI=true PREPARE='"$prepare"'
  export PIP_CERT=/etc/ssl/certs/ca-certificates.crt  # the system store, with any CA added above
  update-ca-certificates >/dev/null
  if [ ! -x /usr/bin/obs ]; then
    # testing suites can lag behind their Release date on mirrors: a throw-away chroot
    # accepts an expired Release file rather than failing
    apt-get update -q -o Acquire::Check-Valid-Until=false
    apt-get install -y -q obs-studio xvfb python3-venv git libobs-dev gcc
  fi
  echo "test_debian: $(. /etc/os-release; echo "$PRETTY_NAME"), $(obs --version 2>&1 | tail -n1), $(python3 --version)"
  cd /repo
  if [ "$PREPARE" = 1 ]; then exec install/setup.sh; fi
  exec install/test.sh "$@"
' test_debian "$@"
