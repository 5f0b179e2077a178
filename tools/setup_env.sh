#!/usr/bin/env bash
# Sets up everything samrl needs on a fresh Debian 12 / Python 3.11 machine.
#
#  1. Debian packages: libllvm19 (drjit's LLVM backend; Debian's 14/15 crash) and
#     libusb-1.0-0 (open3d's wheel links it).
#  2. A base virtual environment with the pinned requirements, cached outside the
#     checkout under $SAMRL_CACHE (default ~/.cache/samrl), keyed by a hash of
#     requirements.txt, so a second run installs nothing.
#  3. A thin per-checkout .venv that layers on the base one and holds editable
#     installs of this checkout's packages (so several clones share one base).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${SAMRL_CACHE:-$HOME/.cache/samrl}
python=${PYTHON:-python3}
llvm_lib=/usr/lib/x86_64-linux-gnu/libLLVM-19.so

# This machine's pip configuration names local indexes that may be absent; their warnings are noise.
quiet_pip() { "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); }
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

install_debian_packages() {
  local missing=() sudo=""
  [ -e "$llvm_lib" ] || missing+=(libllvm19)
  # grep reads all of ldconfig's output: with -q it would exit early, and pipefail would count ldconfig's SIGPIPE
  ldconfig -p | grep 'libusb-1.0.so.0' >/dev/null || missing+=(libusb-1.0-0)
  [ ${#missing[@]} -eq 0 ] && return
  log "installing Debian packages: ${missing[*]}"
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

build_base_venv() {
  local key
  key=$(cat "$root/requirements.txt" <("$python" -VV) | sha256sum | cut -c1-16)
  base="$cache/venv-$key"
  if [ -f "$base/.complete" ]; then log "base environment cached: $base"; return; fi
  log "creating base environment $base (first run only; several GB)"
  rm -rf "$base"; mkdir -p "$cache"
  "$python" -m venv "$base"
  quiet_pip "$base/bin/pip" install -q --upgrade pip==24.3.1 wheel
  quiet_pip "$base/bin/pip" install --progress-bar off -r "$root/requirements.txt"
  touch "$base/.complete"
}

build_checkout_venv() {
  local venv="$root/.venv" site
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.base" 2>/dev/null)" != "$base" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    echo "$base" > "$venv/.base"
  fi
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  base_site=$("$base/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  # addsitedir (not a plain path line) so the base's own .pth files are honoured too.
  # One line, run at every interpreter start: the base packages, and drjit's libLLVM (FACTS.md:
  # Debian's LLVM 14/15 abort in drjit; libllvm19 works but is not found by its default name).
  echo "import os, site; site.addsitedir('$base_site'); os.path.exists('$llvm_lib') and os.environ.setdefault('DRJIT_LIBLLVM_PATH', '$llvm_lib')" > "$site/_samrl_base.pth"
  local stamp="$venv/.editable" pkgs=()
  for p in "$root"/src/*/setup.py; do pkgs+=(-e "$(dirname "$p")"); done
  if [ -f "$stamp" ] && [ -z "$(find "$root/src" -name setup.py -newer "$stamp")" ]; then
    return
  fi
  log "installing this checkout's packages (editable)"
  quiet_pip "$venv/bin/pip" install -q --no-deps --no-build-isolation "${pkgs[@]}"
  # setup.cfg puts console scripts in lib/<package>/ (where `ros2 run` looks); link them onto PATH too.
  for script in "$venv"/lib/samrl_*/*; do ln -sf "$script" "$venv/bin/$(basename "$script")"; done
  # Cyclone DDS' own inspection tool (`cyclonedds ls/typeof/subscribe`), independent of our code.
  ln -sf "$base/bin/cyclonedds" "$venv/bin/cyclonedds"
  touch "$stamp"
}

install_debian_packages
build_base_venv
build_checkout_venv
log "ready: $root/.venv (base $base)"
