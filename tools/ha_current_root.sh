#!/usr/bin/env bash
# A Debian 13 root with Python 3.13 and today's Home Assistant, for running the integration's suite
# on the core people run now (this machine's Python is 3.11, too old for HA 2025+).
#
#   tools/ha_current_root.sh build ROOT REQUIREMENTS   make ROOT once (skipped when ROOT/.ready)
#   tools/ha_current_root.sh run ROOT REPO CMD...      run CMD in ROOT with REPO mounted at /repo
#
# Needs root (chroot, mount) and `debootstrap` (installed with apt-get when missing). No container
# runtime: the root is entered with chroot, /proc and /dev bind-mounted for the duration of a
# command only, and pip inside uses the host's pip configuration (config files, PIP_* variables
# and any local wheel folders they name, mounted read-only) so it installs from where the host does.
set -euo pipefail

SUITE=trixie
VENV=/opt/ha-venv

die() { echo "ha_current_root: $*" >&2; exit 1; }

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -R -l "${mounted[i]}" 2>/dev/null || true; done
  mounted=()
}
trap cleanup EXIT

bind() {  # bind SRC DEST [ro]: recursive, so /dev brings /dev/pts and /dev/shm
  mkdir -p "$2"
  mount --rbind "$1" "$2"
  mounted+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
  return 0
}

# Local paths the host's pip configuration points at (find-links, cert, constraints, and whole
# file:// index folders: their pages link to ../../files).
pip_paths() {
  { pip config list 2>/dev/null || true; env | grep '^PIP_' || true; } \
    | grep -o "\(file://\)\?/[^' ]*" | sed -e 's|^file://||' -e 's|/simple/\?$||' | sort -u
}

enter() {  # enter ROOT: mount what a command inside needs
  local root=$1 p
  bind /proc "$root/proc"
  bind /dev "$root/dev"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  while read -r p; do
    [ -e "$p" ] || continue
    if [ -d "$p" ]; then
      bind "$p" "$root$p" ro
    else
      mkdir -p "$(dirname "$root$p")"
      cp -L "$p" "$root$p"
    fi
  done < <(pip_paths)
  for p in /etc/pip.conf /etc/xdg/pip; do
    if [ -e "$p" ]; then mkdir -p "$(dirname "$root$p")"; cp -rL "$p" "$(dirname "$root$p")/"; fi
  done
}

in_root() {  # in_root ROOT CMD...: the host's PIP_* variables go in with the command
  local root=$1; shift
  chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive $(env | grep '^PIP_' | tr '\n' ' ') "$@"
}

build() {
  local root=$1 req=$2
  [ "$(id -u)" = 0 ] || die "building the Debian root needs root (chroot, mount)"
  [ -f "$root/.ready" ] && return 0
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
  local tmp="$root.tmp"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$root")"
  echo "ha_current_root: debootstrap $SUITE into $tmp (a few minutes)" >&2
  # No mirror named: debootstrap uses its default Debian mirror.
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip "$SUITE" "$tmp" \
    >"$(dirname "$root")/debootstrap.log" 2>&1 \
    || die "debootstrap failed, see $(dirname "$root")/debootstrap.log"
  enter "$tmp"
  in_root "$tmp" apt-get update -qq
  in_root "$tmp" apt-get install -y -qq --no-install-recommends gcc python3-dev libturbojpeg0 >/dev/null
  in_root "$tmp" apt-get clean
  cp "$req" "$tmp/requirements.txt"
  in_root "$tmp" python3 -m venv "$VENV"
  in_root "$tmp" "$VENV/bin/python" -m pip install -q -r /requirements.txt
  in_root "$tmp" "$VENV/bin/python" -c \
    'import homeassistant.const as c, sys; print("ha_current_root: Home Assistant", c.__version__, "on Python", sys.version.split()[0])' >&2
  cleanup
  touch "$tmp/.ready"
  rm -rf "$root"
  mv "$tmp" "$root"
}

run() {
  local root=$1 repo=$2; shift 2
  [ -f "$root/.ready" ] || die "$root is not built; run: $0 build $root REQUIREMENTS"
  enter "$root"
  bind "$(cd "$repo" && pwd -P)" "$root/repo"
  in_root "$root" PYTHONDONTWRITEBYTECODE=1 "$@"
}

case "${1:-}" in
  build) [ $# = 3 ] || die "usage: $0 build ROOT REQUIREMENTS"; build "$2" "$3" ;;
  run) [ $# -ge 4 ] || die "usage: $0 run ROOT REPO CMD..."; shift; run "$@" ;;
  *) die "usage: $0 build ROOT REQUIREMENTS | run ROOT REPO CMD..." ;;
esac
