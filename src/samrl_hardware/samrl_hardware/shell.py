"""What both adapter nodes share on the ROS side: the latched stop topic, the reset service, the
status topic and the logging of refusals. The decisions themselves are the cores'."""
from __future__ import annotations

from collections.abc import Callable

from samrl_common import msgs
from samrl_common.runtime import QOS_LATCHED
from samrl_hardware.guards import Verdict

STOP_TOPIC = '/samrl/stop'          # std_msgs/Bool, latched: true stops both arms; false releases the topic
RESET_SERVICE = '~/reset_stop'      # std_srvs/Trigger: the explicit reset after a stop
STATUS_TOPIC = '~/status'           # std_msgs/String, latched: idle | moving | stopped, with the reason
REFUSAL_LOG_PERIOD_S = 1.0


class AdapterShell:
    """Creates the stop subscription, the reset service and the status publisher on `node`.

    Args:
        on_stop(stop, source): the core's reaction to a stop-topic message.
        on_reset(): the core's reset, returning its Verdict.
        status(): the core's status line.
    """

    def __init__(self, node, stop_topic: str, on_stop: Callable[[bool, str], None], on_reset: Callable[[], Verdict],
                 status: Callable[[], str]):
        self.node, self.status = node, status
        self.refused = 0
        self._published = None
        self._status_pub = node.create_publisher('std_msgs/msg/String', STATUS_TOPIC, QOS_LATCHED)
        self._stop_topic = node.resolve(stop_topic)
        node.create_subscription('std_msgs/msg/Bool', stop_topic, lambda m: on_stop(bool(m.data), self._stop_topic),
                                 QOS_LATCHED)
        node.create_service('std_srvs/srv/Trigger', RESET_SERVICE, lambda _request: self._reset(on_reset))
        self.publish_status()

    def publish_status(self) -> None:
        """Publish the status when it changed (latched: a late subscriber gets the current one)."""
        text = self.status()
        if text != self._published:
            self._published = text
            self._status_pub.publish(msgs.get_message('std_msgs/msg/String')(data=text))
            self.node.logger.info(f'status: {text}')

    def refuse(self, what: str, verdict: Verdict) -> None:
        """Log a refusal (each kind at most once a second, with the running count)."""
        self.refused += 1
        key = ' '.join(verdict.reason.split()[:2])           # one throttle per kind, not per number
        self.node.logger.warn_throttled(f'refused:{key}', f'refused {what} ({self.refused} so far): {verdict.reason}',
                                        REFUSAL_LOG_PERIOD_S)

    def _reset(self, on_reset: Callable[[], Verdict]):
        verdict = on_reset()
        self.node.logger.info(f'reset: {verdict.reason}')
        self.publish_status()
        return msgs.get_service('std_srvs/srv/Trigger').Response(success=verdict.accepted, message=verdict.reason)
