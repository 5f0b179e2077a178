"""`samrl bench frames` on a small configuration: every frame the capture node publishes is accounted for."""

import pytest

from samrl_bringup.bench_frames import format_result, run

pytestmark = pytest.mark.processes
MAX_LOST_AT_STOP = 1            # frames are reliable: at most the one in flight when the nodes stop


def test_frames_reach_the_segmentation_node_and_every_loss_has_a_reason():
    result = run(6.0, width=160, height=120, rate_hz=4.0)
    print(format_result(result))
    assert result['capture_published'] > 5
    assert result['lost_in_transport'] <= MAX_LOST_AT_STOP, format_result(result)
    dropped = sum(result['segmentation_dropped'].values())
    in_flight = result['segmentation_received'] - result['segmentation_segmented'] - dropped
    assert 0 <= in_flight <= 1          # at most the frame being segmented when the node stopped
