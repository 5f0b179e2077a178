#!/usr/bin/env bash
# `make check-py312`: the pinned requirements.txt installs into a fresh Python 3.12 virtual
# environment (the Python of ROS 2 Jazzy / Ubuntu 24.04, which docker/Dockerfile builds on), this
# checkout's packages install into it, and the ROS-free unit tests below pass there.
#
# Not part of `make test`: the first run downloads several GB (torch's CUDA wheels) and builds
# pybullet from source (no Python 3.12 wheel); pip's cache makes later runs quicker.
#   PYTHON312=/path/to/python3.12   the interpreter (default: pyenv's newest 3.12, else python3.12)
#   PY312_VENV=DIR                  where the venv goes (default ~/.cache/samrl/py312-check; recreated)
#   TORCH_INDEX=URL                 extra index for torch (e.g. https://download.pytorch.org/whl/cpu)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${PY312_VENV:-${SAMRL_CACHE:-$HOME/.cache/samrl}/py312-check}
llvm_lib=/usr/lib/x86_64-linux-gnu/libLLVM-19.so
# ROS-free unit tests (processes-marked tests are deselected): the runtime's parameters, messages and tf,
# the description, launch descriptions, parameter file and Docker files, the hardware adapters' cores,
# and the heavy wheels at work (PyBullet world, nimblephysics, Mitsuba, RGB-D maths).
tests=(
  src/samrl_common/test
  src/samrl_description/test
  src/samrl_bringup/test/test_graph.py
  src/samrl_bringup/test/test_launch_description.py
  src/samrl_bringup/test/test_parameters_file.py
  src/samrl_bringup/test/test_docker.py
  src/samrl_hardware/test
  src/samrl_sim/test/test_safety.py
  src/samrl_sim/test/test_tasks.py
  src/samrl_model/test/test_physics.py
  src/samrl_model/test/test_render.py
  src/samrl_perception/test/test_rgbd.py
  src/samrl_perception/test/test_pointcloud.py
)

log() { printf '\033[1m[check-py312]\033[0m %s\n' "$*"; }
# This machine's pip configuration names local indexes that may be absent; their warnings are noise.
quiet_pip() { "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); }

find_python312() {
  if [ -n "${PYTHON312:-}" ]; then echo "$PYTHON312"; return; fi
  local pyenv_root candidate
  pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  candidate=$(ls -d "$pyenv_root"/versions/3.12.* 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$candidate" ] && [ -x "$candidate/bin/python3.12" ]; then echo "$candidate/bin/python3.12"; return; fi
  command -v python3.12 || { echo "no Python 3.12: set PYTHON312 or install it (pyenv install 3.12)" >&2; exit 2; }
}

python=$(find_python312)
log "$("$python" -VV) -> fresh venv $venv"
rm -rf "$venv"
"$python" -m venv "$venv"
quiet_pip "$venv/bin/pip" install -q --upgrade pip==24.3.1 wheel   # setuptools: pinned in requirements.txt
log "installing requirements.txt"
quiet_pip "$venv/bin/pip" install --progress-bar off ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} \
  -r "$root/requirements.txt"
pkgs=()
for setup in "$root"/src/*/setup.py; do pkgs+=(-e "$(dirname "$setup")"); done
log "installing this checkout's packages"
quiet_pip "$venv/bin/pip" install -q --no-deps --no-build-isolation "${pkgs[@]}"
"$venv/bin/pip" check

# drjit's LLVM backend: the same library tools/setup_env.sh points it at.
[ -e "$llvm_lib" ] && export DRJIT_LIBLLVM_PATH=${DRJIT_LIBLLVM_PATH:-$llvm_lib}
present=()
for path in "${tests[@]}"; do [ -e "$root/$path" ] && present+=("$path"); done
log "running the ROS-free unit tests"
cd "$root"
"$venv/bin/python" -m pytest -q -m 'not processes' -p no:cacheprovider "${present[@]}"
log "passed on $("$venv/bin/python" -V)"
