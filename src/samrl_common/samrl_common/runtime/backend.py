"""Backend selection: rclpy on a ROS 2 machine, Cyclone DDS (ROS 2 wire protocol) elsewhere.

SAMRL_BACKEND=dds forces Cyclone DDS even where rclpy exists; =rclpy insists on rclpy.
"""

from __future__ import annotations

import importlib.util
import os

BACKEND_ENV = 'SAMRL_BACKEND'
BACKENDS = ('auto', 'rclpy', 'dds')


def selected_backend(environ=os.environ) -> str:
    choice = environ.get(BACKEND_ENV, 'auto').strip().lower() or 'auto'
    if choice not in BACKENDS:
        raise ValueError(f'{BACKEND_ENV} must be one of {", ".join(BACKENDS)}, got {choice!r}')
    if choice == 'auto':
        return 'rclpy' if importlib.util.find_spec('rclpy') is not None else 'dds'
    return choice


def make_backend(fqn: str):
    if selected_backend() == 'rclpy':
        from samrl_common.runtime.rclpy_backend import RclpyBackend
        return RclpyBackend(fqn)
    from samrl_common.runtime.dds import DdsBackend
    return DdsBackend()
