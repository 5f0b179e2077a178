"""Safety pieces both arm adapters share: a latched stop, a motion budget (speed over time) and a
watchdog. No ROS: times are seconds of a monotonic clock that the caller passes in.

The per-step and workspace checks are the sim bridge's own (samrl_sim.safety); these add what a
real arm needs beyond one control step: a speed bound that holds whatever the timing of the
commands, a stop that stays until a person resets it, and a hold when commands stop coming.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

LIMIT_RELATIVE_TOLERANCE = 1e-9     # forgive floating-point rounding at a bound (as samrl_sim.safety)


def require_positive(limits, names: tuple[str, ...]) -> None:
    """ValueError naming the first of `names` (attributes of `limits`) that is not a finite positive number."""
    for name in names:
        value = getattr(limits, name)
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f'{name} must be a finite positive number, got {value}')


class ArmMode(str, Enum):
    IDLE = 'idle'                   # holding; the next command starts from the measured pose
    MOVING = 'moving'               # following commands (Franka) or executing a plan (Rizon)
    STOPPED = 'stopped'             # latched by the stop topic: everything refused until reset


def status_line(mode: ArmMode, note: str) -> str:
    """'idle', 'moving' or 'stopped', with what led there (why it stopped or held, how a motion ended)."""
    return mode.value + (f': {note}' if note and mode is not ArmMode.MOVING else '')


@dataclass(frozen=True)
class Verdict:
    """What an adapter did with one input: `accepted` (`reason` may add a note), or refused with a
    non-empty `reason`."""

    accepted: bool
    reason: str = ''

    @staticmethod
    def accept(note: str = '') -> Verdict:
        return Verdict(True, note)

    @staticmethod
    def refuse(reason: str) -> Verdict:
        if not reason:
            raise ValueError('a refusal must say why')
        return Verdict(False, reason)


class StopLatch:
    """A stop that stays until an explicit reset.

    A True on the stop topic latches the stop; a False only releases the topic, it does not resume
    anything. `reset()` then succeeds only while the topic is released, so the reset procedure is:
    publish False on the stop topic (the cause is cleared), then call the adapter's reset service.
    """

    def __init__(self) -> None:
        self.stopped = False
        self.reason = ''
        self.topic_holds_stop = False

    def on_stop_message(self, stop: bool, source: str) -> bool:
        """Record a stop-topic message; True when it newly stops the arm."""
        self.topic_holds_stop = bool(stop)
        return self.latch(f'stop requested on {source}') if stop else False

    def latch(self, reason: str) -> bool:
        """Stop (if not stopped already); True when this call stopped the arm."""
        if self.stopped:
            return False
        self.stopped, self.reason = True, reason
        return True

    def reset(self) -> Verdict:
        if not self.stopped:
            return Verdict.refuse('not stopped: nothing to reset')
        if self.topic_holds_stop:
            return Verdict.refuse('the stop topic still holds a stop: publish false on it first, then reset')
        self.stopped, self.reason = False, ''
        return Verdict.accept('stop reset: commands are accepted again')


class MotionBudget:
    """A token bucket on motion: over any interval of T seconds, the accepted motion adds up to at
    most `burst + rate * T`. This bounds speed whatever the timing of the commands (a burst of
    commands a millisecond apart is refused), while allowing the jitter of a steady stream.

    Args:
        rate_per_s: the sustained speed (m/s or rad/s).
        burst: what may be spent at once (m or rad); the bucket starts full.
    """

    def __init__(self, rate_per_s: float, burst: float) -> None:
        if not (rate_per_s > 0 and burst > 0 and math.isfinite(rate_per_s) and math.isfinite(burst)):
            raise ValueError(f'motion budget needs a finite positive rate and burst, got {rate_per_s}, {burst}')
        self.rate_per_s, self.burst = rate_per_s, burst
        self._available, self._time_s = burst, None

    def available(self, now_s: float) -> float:
        if self._time_s is None:
            return self.burst
        return min(self.burst, self._available + self.rate_per_s * max(0.0, now_s - self._time_s))

    def refusal(self, amount: float, now_s: float, what: str, unit: str) -> str:
        """Why `amount` may not be spent now ('' if it may)."""
        available = self.available(now_s)
        if amount <= available * (1.0 + LIMIT_RELATIVE_TOLERANCE) + 1e-12:
            return ''
        return (f'too fast: {what} {amount:.4g} {unit} exceeds the {available:.4g} {unit} the speed bound '
                f'{self.rate_per_s:.4g} {unit}/s allows now (at most {self.burst:.4g} {unit} at once)')

    def spend(self, amount: float, now_s: float) -> None:
        self._available = max(0.0, self.available(now_s) - amount)
        self._time_s = now_s


class Watchdog:
    """Expires when it has not been fed for `timeout_s`; armed only while something is expected."""

    def __init__(self, timeout_s: float) -> None:
        if not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise ValueError(f'watchdog timeout must be a finite positive number of seconds, got {timeout_s}')
        self.timeout_s = timeout_s
        self.deadline_s: float | None = None

    def feed(self, now_s: float, extra_s: float = 0.0) -> None:
        """Expect the next sign of life within timeout_s (+ extra_s) from now."""
        self.deadline_s = now_s + self.timeout_s + extra_s

    def disarm(self) -> None:
        self.deadline_s = None

    def expired(self, now_s: float) -> bool:
        return self.deadline_s is not None and now_s > self.deadline_s


class MonotonicClock:
    """Checks that the times an adapter is given are finite and never go back."""

    def __init__(self) -> None:
        self.last_s = -math.inf

    def refusal(self, now_s: float) -> str:
        if not isinstance(now_s, (int, float)) or not math.isfinite(now_s):
            return f'time {now_s!r} is not a finite number of seconds'
        if now_s < self.last_s:
            return f'time went back from {self.last_s:.6f} s to {now_s:.6f} s'
        self.last_s = now_s
        return ''
