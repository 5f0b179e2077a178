"""Node logging in the ROS 2 console format: `[LEVEL] [time] [node]: message`."""

from __future__ import annotations

import logging
import sys
import time

ROS_LEVELS = {'debug': logging.DEBUG, 'info': logging.INFO, 'warn': logging.WARNING,
              'error': logging.ERROR, 'fatal': logging.CRITICAL}


class _RosFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = {'WARNING': 'WARN', 'CRITICAL': 'FATAL'}.get(record.levelname, record.levelname)
        return f'[{level}] [{record.created:.6f}] [{record.name.lstrip("/").replace("/", ".")}]: {record.getMessage()}'


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (tests and tools may replace it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def make_logger(fqn: str, level: str | None) -> logging.Logger:
    if level is not None and level.lower() not in ROS_LEVELS:
        raise ValueError(f'--log-level must be one of {", ".join(ROS_LEVELS)}, got {level!r}')
    logger = logging.getLogger(f'samrl{fqn}')
    logger.name = fqn
    logger.propagate = False
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(_RosFormatter())
        logger.addHandler(handler)
    logger.setLevel(ROS_LEVELS[(level or 'info').lower()])
    return logger


class ThrottledLogger:
    """A logger with rclpy-like methods plus `warn_throttled`, which says each thing at most once a period."""

    def __init__(self, logger: logging.Logger):
        self._logger = logger
        self._last: dict[str, float] = {}

    def debug(self, msg: str) -> None:
        self._logger.debug(msg)

    def info(self, msg: str) -> None:
        self._logger.info(msg)

    def warning(self, msg: str) -> None:
        self._logger.warning(msg)

    warn = warning

    def error(self, msg: str) -> None:
        self._logger.error(msg)

    def fatal(self, msg: str) -> None:
        self._logger.critical(msg)

    def warn_throttled(self, key: str, msg: str, period_s: float = 5.0) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -float('inf')) < period_s:
            return False
        self._last[key] = now
        self._logger.warning(msg)
        return True
