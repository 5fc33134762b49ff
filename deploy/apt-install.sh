#!/usr/bin/env bash
# Install the Debian packages named on the command line that are not installed yet.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
# Another apt (unattended-upgrades on a fresh machine, a second `make` beside this one) may hold
# the locks: wait for it rather than fail the whole set-up.
wait_lock=(-o DPkg::Lock::Timeout=900)
for try in 1 2 3 4 5 6 7 8 9 10; do
  $sudo apt-get "${wait_lock[@]}" update -qq && break
  echo "apt-get update failed (try $try); waiting for the other apt to finish"
  sleep 20
done
DEBIAN_FRONTEND=noninteractive $sudo apt-get "${wait_lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
