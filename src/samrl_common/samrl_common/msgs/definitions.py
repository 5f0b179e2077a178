"""Where message and service definitions come from.

One machine-readable source per family, never hand-written Python classes:
- the standard ROS 2 Jazzy messages: the type store shipped by `rosbags`;
- std_srvs (rosbags stores messages only): the upstream .srv texts kept beside this file;
- samrl_interfaces: its own msg/ and srv/ files, the single source of truth for our types.

A definition is rosbags' field description: (constants, fields), each field
(name, (Nodetype, details)). Services are split into `<pkg>/srv/<Name>_Request`
and `_Response` message definitions, as rosidl does.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from rosbags.interfaces import Nodetype
from rosbags.typesys import Stores, get_types_from_msg
from rosbags.typesys.stores import get_typestore

ROS_DISTRO_STORE = Stores.ROS2_JAZZY
INTERFACES_PACKAGE = 'samrl_interfaces'
_HERE = Path(__file__).resolve().parent
SRV_SEPARATOR = '\n---\n'

Definition = tuple[list, list]
# rosidl gives an empty structure one uint8 member, since IDL forbids empty structs.
EMPTY_PLACEHOLDER = ('structure_needs_at_least_one_member', (Nodetype.BASE, ('uint8', 0)))


class UnknownTypeError(KeyError):
    """A message or service name that no definition source knows."""

    def __str__(self) -> str:
        return str(self.args[0])


def interfaces_dir() -> Path:
    """Locate samrl_interfaces' msg/ and srv/ files.

    Order: $SAMRL_INTERFACES_DIR, an installed ament share directory on
    $AMENT_PREFIX_PATH, then the source tree beside this package.
    """
    explicit = os.environ.get('SAMRL_INTERFACES_DIR')
    candidates = [Path(explicit)] if explicit else []
    for prefix in filter(None, os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)):
        candidates.append(Path(prefix) / 'share' / INTERFACES_PACKAGE)
    candidates.append(_HERE.parents[2] / INTERFACES_PACKAGE)
    for path in candidates:
        if (path / 'msg').is_dir() or (path / 'srv').is_dir():
            return path
    raise FileNotFoundError(
        f'cannot find {INTERFACES_PACKAGE} definitions; looked in: '
        + ', '.join(str(c) for c in candidates)
        + ' (set SAMRL_INTERFACES_DIR)')


def _parse_srv(text: str, srv_name: str) -> dict[str, Definition]:
    if SRV_SEPARATOR.strip() not in text.split('\n'):
        raise ValueError(f'{srv_name}: a .srv file needs a "---" line between request and response')
    request, response = ('\n' + text).split(SRV_SEPARATOR, 1)
    # rosbags parses messages only: parse each half as pkg/msg/..., then name it pkg/srv/...
    package, _, name = srv_name.split('/')
    defs = {}
    for part, body in (('Request', request), ('Response', response)):
        parsed = _parse_msg(body, f'{package}/msg/{name}_{part}')
        defs[f'{srv_name}_{part}'] = parsed.pop(f'{package}/msg/{name}_{part}')
        defs.update(parsed)
    return defs


def _parse_msg(text: str, name: str) -> dict[str, Definition]:
    defs = get_types_from_msg(text, name)
    return {k: (consts, fields or [EMPTY_PLACEHOLDER]) for k, (consts, fields) in defs.items()}


def _package_files(root: Path, package: str) -> dict[str, Definition]:
    defs: dict[str, Definition] = {}
    for path in sorted((root / 'msg').glob('*.msg')):
        defs.update(_parse_msg(path.read_text(), f'{package}/msg/{path.stem}'))
    for path in sorted((root / 'srv').glob('*.srv')):
        defs.update(_parse_srv(path.read_text(), f'{package}/srv/{path.stem}'))
    return defs


@cache
def all_definitions() -> dict[str, Definition]:
    """Every known type name (e.g. 'sensor_msgs/msg/Image') -> its definition."""
    defs: dict[str, Definition] = dict(get_typestore(ROS_DISTRO_STORE).fielddefs)
    defs.update(_package_files(_HERE / 'std_srvs', 'std_srvs'))
    defs.update(_package_files(interfaces_dir(), INTERFACES_PACKAGE))
    return defs


def definition(name: str) -> Definition:
    """The definition of one message type, with a clear error for unknown names."""
    defs = all_definitions()
    if name not in defs:
        package = name.split('/')[0]
        known = sorted(k.rsplit('/', 1)[-1] for k in defs if k.startswith(package + '/'))
        hint = f'; {package} has: {", ".join(known)}' if known else ''
        raise UnknownTypeError(f'unknown message type {name!r}{hint}')
    return defs[name]


def service_names() -> list[str]:
    """All known service names ('pkg/srv/Name')."""
    return sorted({k.rsplit('_', 1)[0] for k in all_definitions() if '/srv/' in k and k.endswith('_Request')})
