#!/usr/bin/env bash
# Every command in the samrl image runs with ROS 2, the workspace and the pinned Python packages.
set -eo pipefail

source /opt/ros/jazzy/setup.bash
source "$WS/install/setup.bash"
# ros2 launch runs under the system Python and imports our launch descriptions: it needs the pinned
# packages (scipy, ...) too, after ROS's own paths.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export PYTHONPATH="$PYTHONPATH:$site"
export PATH="$VENV/bin:$PATH"
# drjit's LLVM backend looks for libLLVM by a name Ubuntu does not use (as in tools/setup_env.sh).
llvm=$(ls /usr/lib/x86_64-linux-gnu/libLLVM-18.so* /usr/lib/llvm-18/lib/libLLVM*.so* 2>/dev/null | head -n 1 || true)
[ -n "$llvm" ] && export DRJIT_LIBLLVM_PATH="${DRJIT_LIBLLVM_PATH:-$llvm}"

exec "$@"
