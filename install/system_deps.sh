#!/usr/bin/env bash
# System packages the end-to-end tests need: a real OBS Studio and a virtual X server.
# Installs them with apt-get when missing (as root or with passwordless sudo); otherwise says
# what to install and exits 1. Safe to run again: does nothing when both are present.
set -euo pipefail
missing=()
command -v obs >/dev/null 2>&1 || missing+=(obs-studio)
command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system_deps: please install ${missing[*]} with your package manager" >&2; exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "system_deps: need root to install ${missing[*]}: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
echo "system_deps: installing ${missing[*]} (apt-get)"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
