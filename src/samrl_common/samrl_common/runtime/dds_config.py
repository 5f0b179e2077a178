"""Cyclone DDS configuration: a deterministic loopback-only domain for tests and single-host runs."""

from __future__ import annotations

import os

LOOPBACK_ENV = 'SAMRL_DDS_LOOPBACK'
# 32 participants on one host is ample for a node graph plus test probes.
MAX_AUTO_PARTICIPANT_INDEX = 32
# Loopback's MTU is 64 KiB: large datagrams cut an image into ~15 fragments instead of
# ~700 at Cyclone's defaults (14720 B messages, 1344 B fragments).
MAX_MESSAGE_BYTES = 65000
FRAGMENT_BYTES = 62000

LOOPBACK_XML = f"""<CycloneDDS><Domain Id="any">
<General><Interfaces><NetworkInterface name="lo"/></Interfaces><AllowMulticast>false</AllowMulticast>
<MaxMessageSize>{MAX_MESSAGE_BYTES}B</MaxMessageSize><FragmentSize>{FRAGMENT_BYTES}B</FragmentSize></General>
<Discovery><ParticipantIndex>auto</ParticipantIndex>
<MaxAutoParticipantIndex>{MAX_AUTO_PARTICIPANT_INDEX}</MaxAutoParticipantIndex>
<Peers><Peer address="127.0.0.1"/></Peers></Discovery>
</Domain></CycloneDDS>"""


def domain_id(environ=os.environ) -> int:
    """ROS_DOMAIN_ID as ROS 2 reads it (0 when unset), with a clear error when malformed."""
    raw = environ.get('ROS_DOMAIN_ID', '').strip() or '0'
    if not raw.isdigit() or not 0 <= int(raw) <= 232:
        raise ValueError(f'ROS_DOMAIN_ID must be an integer in 0..232, got {raw!r}')
    return int(raw)


def loopback_environment(environ=os.environ) -> dict[str, str]:
    """Environment that confines Cyclone DDS to loopback (used by the launcher and tests)."""
    env = dict(environ)
    env['CYCLONEDDS_URI'] = LOOPBACK_XML
    env[LOOPBACK_ENV] = '1'
    return env
