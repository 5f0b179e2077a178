"""CDR (XCDR1) encoding of generated messages, with strict checks on input.

A received buffer is decoded only if it is a plain-CDR encapsulation, is not
truncated and leaves no more than the 3 padding bytes DDS may append; anything
else raises MessageError, so a node can report and drop it.
"""

from __future__ import annotations

import struct

from cyclonedds.idl._support import Buffer, Endianness

ENCAPSULATION_BYTES = 4
MAX_PADDING_BYTES = 3
# Encapsulation identifiers of plain CDR (XCDR1), big and little endian.
PLAIN_CDR = (b'\x00\x00', b'\x00\x01')


class MessageError(ValueError):
    """A buffer that does not decode as the expected message type.

    `kind` (short, stable: 'header', 'encapsulation', 'decode', 'truncated', 'trailing')
    lets a node rate-limit its warnings per kind of fault without hiding a new kind.
    """

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def serialize(message) -> bytes:
    """XCDR1, little endian, with the 4-byte encapsulation header (no trailing padding)."""
    return message.__idl__.serialize(message, use_version_2=False, endianness=Endianness.Little)


def deserialize(cls: type, data: bytes | bytearray | memoryview):
    """Decode `data` as `cls`, raising MessageError with the reason if it does not fit."""
    name = getattr(cls, '__ros_type__', cls.__name__)
    if len(data) < ENCAPSULATION_BYTES:
        raise MessageError('header', f'{name}: {len(data)} bytes is shorter than the CDR header')
    if bytes(data[:2]) not in PLAIN_CDR:
        raise MessageError('encapsulation', f'{name}: unsupported encapsulation 0x{bytes(data[:2]).hex()} (expected plain CDR)')
    buffer = Buffer(bytes(data), align_offset=ENCAPSULATION_BYTES)
    try:
        message = cls.__idl__.deserialize(buffer, has_header=True)
    except (struct.error, UnicodeDecodeError, ValueError, IndexError, TypeError, OverflowError, MemoryError) as exc:
        raise MessageError('decode', f'{name}: cannot decode {len(data)} bytes ({exc})') from exc
    consumed = buffer.tell()
    if consumed > len(data):
        raise MessageError('truncated', f'{name}: truncated buffer ({len(data)} bytes, the message needs {consumed})')
    if len(data) - consumed > MAX_PADDING_BYTES:
        raise MessageError(
            'trailing', f'{name}: {len(data) - consumed} unread bytes after the message (wrong type on this topic?)')
    return message
