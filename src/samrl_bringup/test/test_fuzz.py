"""`samrl fuzz`: its input generators, and every node of the task graph fuzzed briefly as a process."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from samrl_bringup import fuzz
from samrl_bringup.cli import build_parser, cmd_fuzz, main
from samrl_common import msgs
from samrl_description.tasks import TASK_NAMES

SMALL_COUNT = 30                 # per input topic and per service
TIME_LIMIT_S = 120.0
STAMP_NS = 1_700_000_000_123_456_789
SERVICE_NODES = ('sim_bridge', 'model_node', 'model_tracker')
def _reset_request(seed: int, guid: int = 77, sequence: int = 1):
    """A ResetEpisode request as it goes on the wire, with rmw_cyclonedds' header."""
    service = msgs.get_service('samrl_interfaces/srv/ResetEpisode')
    return service.RequestWire(_client_guid=guid, _sequence=sequence, **vars(service.Request(seed=seed)))


GOOD_INPUTS = {
    'sensor_msgs/msg/Image': lambda rng, stamp: fuzz._camera_images(stamp, rng=rng)[0],
    'sensor_msgs/msg/CameraInfo': lambda rng, stamp: fuzz._camera_info(stamp),
    'samrl_interfaces/msg/RGBDFrame': lambda rng, stamp: fuzz._rgbd_frame(stamp, rng),
    'samrl_interfaces/msg/EndEffectorCommand': lambda rng, stamp: fuzz._ee_command((0.001, 0.0, 0.0), stamp),
    'tf2_msgs/msg/TFMessage': fuzz.CaptureRun._dynamic_tf,
    'samrl_interfaces/msg/ObjectMasks': lambda rng, stamp: fuzz._object_masks(
        stamp, 'hole_block', (rng.random((48, 64)) > 0.5).astype(np.uint8) * 255),
    'samrl_interfaces/msg/ModelState': fuzz._model_state,
    'samrl_interfaces/msg/TaskState': lambda rng, stamp: fuzz._task_state(stamp, int(rng.integers(1000))),
    'ResetEpisode request': lambda rng, stamp: _reset_request(int(rng.integers(1000))),
}


@pytest.mark.parametrize('name', GOOD_INPUTS)
def test_adversarial_messages_keep_their_type_serialize_and_differ(name):
    rng = np.random.default_rng(0)
    good = GOOD_INPUTS[name](rng, STAMP_NS)
    before = msgs.serialize(good)
    changed = 0
    for _ in range(60):
        message = fuzz.adversarial_message(good, rng, frozenset(msgs.REQUEST_HEADER), now_s=STAMP_NS / 1e9)
        assert type(message) is type(good)
        data = msgs.serialize(message)
        assert len(data) <= fuzz.MAX_FUZZ_BYTES
        assert msgs.deserialize(type(good), data) is not None
        changed += data != before
        if hasattr(message, '_client_guid'):    # a request's header is never mutated: its answer must come back
            assert (message._client_guid, message._sequence) == (good._client_guid, good._sequence)
    assert changed >= 50
    assert msgs.serialize(good) == before        # the good message itself is left alone


def test_adversarial_values_reach_the_extremes():
    rng = np.random.default_rng(1)
    command = fuzz._ee_command((0.001, 0.0, 0.0), STAMP_NS)
    floats, widths, encodings, quaternion_norms = set(), set(), set(), set()
    for _ in range(300):
        mutated = fuzz.adversarial_message(command, rng, now_s=STAMP_NS / 1e9)
        floats.update(repr(v) for v in (mutated.translation.x, mutated.rotation.z, mutated.gripper_width))
    image = fuzz._camera_images(STAMP_NS)[0]
    for _ in range(300):
        mutated = fuzz.adversarial_message(image, rng, now_s=STAMP_NS / 1e9)
        widths.add(mutated.width)
        encodings.add(mutated.encoding)
    pose = msgs.geometry_msgs.msg.Pose()
    for _ in range(100):
        q = fuzz.adversarial_message(pose, rng).orientation
        quaternion_norms.add(round(math.hypot(q.x, q.y, q.z, q.w), 3))
    assert {'nan', 'inf', '-inf', '1e+308'} <= floats
    assert {0, 100_000} <= widths and max(widths) >= 2 ** 31
    assert {'', 'yuv422'} & encodings and len(encodings) >= 4
    assert 0.0 in quaternion_norms and any(n > 1.5 for n in quaternion_norms if not math.isnan(n))


def test_malformed_bytes_cover_every_kind_and_leave_a_request_header_alone():
    request = _reset_request(5, guid=12345, sequence=9)
    data = msgs.serialize(request)
    wrong = [msgs.serialize(msgs.std_msgs.msg.String(data='other type'))]
    rng = np.random.default_rng(2)
    header = fuzz.CDR_HEADER + fuzz.REQUEST_HEADER_BYTES
    kinds = set()
    for _ in range(400):
        how, out = fuzz.malformed_bytes(data, rng, wrong, protect=fuzz.REQUEST_HEADER_BYTES)
        kinds.add(how)
        if how in ('bitflip', 'word', 'trailing', 'empty', 'truncated'):
            assert out[:fuzz.CDR_HEADER] == data[:fuzz.CDR_HEADER]
        if how in ('bitflip', 'word', 'trailing'):
            assert out[:header] == data[:header]
        if how == 'truncated':
            assert fuzz.CDR_HEADER < len(out) < len(data)
        if how == 'trailing':
            assert len(out) > len(data) and fuzz.decodes(type(request), out) is None
        if how == 'wrong_type':
            assert out in wrong
        if how == 'encapsulation':
            assert out[:2] in fuzz.ENCAPSULATIONS and fuzz.decodes(type(request), out) is None
    assert kinds == set(fuzz.MALFORMED_KINDS)


def _fuzzer(seed) -> fuzz.MessageFuzzer:
    cls = msgs.get_message('sensor_msgs/msg/Image')
    return fuzz.MessageFuzzer(cls, GOOD_INPUTS['sensor_msgs/msg/Image'], seed,
                              [msgs.serialize(msgs.std_msgs.msg.String(data='x'))])


def test_a_fuzzer_is_deterministic_for_a_seed():
    first, again, other = _fuzzer([0, 1]), _fuzzer([0, 1]), _fuzzer([1, 1])
    items = [first.item(i, STAMP_NS) for i in range(150)]
    assert items == [again.item(i, STAMP_NS) for i in range(150)]
    assert items != [other.item(i, STAMP_NS) for i in range(150)]


def test_every_nth_sample_is_good_and_the_mix_has_every_family():
    fuzzer = _fuzzer(3)
    items = [fuzzer.item(i, STAMP_NS) for i in range(300)]
    good = items[::fuzz.GOOD_EVERY]
    assert all(item.kind == 'good' for item in good)
    assert all(fuzz.decodes(fuzzer.cls, item.data) is not None for item in good)
    assert {item.family for item in items} == {'good', 'typed', 'malformed'}
    assert sum(item.kind == 'good' for item in items) == len(good)
    assert len({item.kind for item in items if item.family == 'malformed'}) >= 5


def test_decodes_is_the_runtimes_verdict():
    image = fuzz._camera_images(STAMP_NS)[0]
    data = msgs.serialize(image)
    assert fuzz.decodes(type(image), data) == image
    assert fuzz.decodes(type(image), data + bytes(-len(data) % 4)) == image   # DDS pads to 4 bytes
    assert fuzz.decodes(type(image), data + bytes(8)) is None             # trailing bytes: another type?
    assert fuzz.decodes(type(image), data[:40]) is None
    assert fuzz.decodes(type(image), b'\x00\x07' + data[2:]) is None      # XCDR2 is not what ROS 2 sends


def test_read_log_counts_tracebacks_errors_and_failed_frames():
    log = '\n'.join([
        '[INFO] [1.0] [n]: up',
        '[ERROR] [2.0] [n]: subscription /a callback failed: bad 3',
        'Traceback (most recent call last):',
        '  File "x.py", line 1, in f',
        'ValueError: bad 3',
        '[WARN] [3.0] [n]: dropped frame (failed, 4 so far): processing it failed: TypeError: t',
        '[WARN] [4.0] [n]: dropped frame (failed, 9 so far): processing it failed: TypeError: t',
    ])
    read = fuzz.read_log(log)
    assert read['tracebacks'] == 1 and read['error_lines'] == 1
    assert read['exceptions'] == {'ValueError: bad 3': 1}
    assert read['processing_failures'] == {'processing it failed: TypeError: t': 9}


def test_node_names_and_the_cli():
    assert fuzz.resolve_nodes('all') == fuzz.NODE_NAMES
    assert fuzz.resolve_nodes('model_node') == ('model_node',)
    with pytest.raises(ValueError, match='unknown node'):
        fuzz.resolve_nodes('talker')
    args = build_parser().parse_args(['fuzz', 'all', '--count', '5', '--time-limit', '9', '--seed', '3',
                                      '--json', 'out/f.json'])
    assert (args.node, args.count, args.time_limit, args.seed, args.json) == ('all', 5, 9.0, 3, 'out/f.json')
    assert args.run is cmd_fuzz
    defaults = build_parser().parse_args(['fuzz', 'oracle_controller'])
    assert (defaults.count, defaults.time_limit) == (fuzz.DEFAULT_COUNT, fuzz.DEFAULT_TIME_LIMIT_S)
    with pytest.raises(SystemExit):
        build_parser().parse_args(['fuzz', 'talker'])


def test_format_table_says_why_a_node_failed():
    node = {'node': 'model_node', 'passed': False, 'failures': ['3 requests unanswered'], 'topics': {},
            'services': {'/s': {'sent': 9, 'answered': 6, 'busy': 1, 'refused': 2, 'internal_error': 0,
                                'burst': {'sent': 30, 'answered': 30}}},
            'unanswered': 3, 'hangs': 3, 'job_before': {'ok': True}, 'job_after': {'ok': True},
            'rss_mb_start': 1000.0, 'rss_mb_peak': 1010.0, 'rss_mb_end': 1005.0, 'duration_s': 12.0,
            'log_read': {'exceptions': {'ValueError: x': 2}}}
    table = fuzz.format_table({'passed': False, 'rss_growth_bound_mb': 500.0, 'nodes': [node]})
    assert 'model_node' in table and 'FAIL' in table and '30/30' in table and '1000/1010/1005' in table
    assert 'model_node: 3 requests unanswered' in table and 'handled error x2: ValueError: x' in table


# -- the nodes, fuzzed as processes over DDS ---------------------------------------------------------------

@pytest.fixture(scope='module')
def fuzzed(tmp_path_factory):
    """name -> that node's fuzz summary; each node is fuzzed once for all the tests that look at it."""
    summaries: dict[str, dict] = {}

    def get(name: str) -> dict:
        if name not in summaries:
            summaries[name] = fuzz.fuzz_node(name, count=SMALL_COUNT, time_limit_s=TIME_LIMIT_S, seed=0,
                                             log_dir=tmp_path_factory.mktemp(f'fuzz_{name}'))
        return summaries[name]
    return get


@pytest.mark.processes
@pytest.mark.parametrize('name', fuzz.NODE_NAMES)
def test_node_survives_fuzzing_and_still_does_its_job(name, fuzzed):
    summary = fuzzed(name)
    failures = [f for f in summary['failures'] if not f.startswith(fuzz.BURST_FAILURE)]
    log = summary['log_read']
    assert not failures, (failures, log)
    assert summary['started'] and not summary['crashed'] and not summary['stopped_early']
    assert summary['job_before']['ok'] and summary['job_after']['ok']
    assert summary['exit_code'] == 0 and summary['stopped_by'] == 'SIGINT'
    assert summary['unanswered'] == 0
    assert summary['rss_mb_growth'] < fuzz.RSS_GROWTH_BOUND_MB
    for topic, sent in summary['topics'].items():
        assert sent['sent'] + sent['refused_by_dds'] == SMALL_COUNT, topic
        assert sent['good'] == SMALL_COUNT // fuzz.GOOD_EVERY and sent['typed'] > 0, topic
    for service, sent in summary['services'].items():
        assert sent['sent'] + sent['kinds']['refused_by_dds'] == SMALL_COUNT, service
        assert sent['answered'] == sent['expect_answer'] and sent['answered'] > 0, service
        assert sent['unexpected_replies'] == 0 and sent['duplicate_replies'] == 0, service
    assert (name in SERVICE_NODES) == bool(summary['services'])


@pytest.mark.processes
@pytest.mark.parametrize('name', SERVICE_NODES)
def test_a_burst_of_requests_is_answered_in_full(name, fuzzed):
    """The runtime's promise: every request is answered, "busy" beyond its queue bound (the server's
    request inbox is deeper than the wire default of 10, so a burst is not cut in the DDS history)."""
    for service, summary in fuzzed(name)['services'].items():
        burst = summary['burst']
        assert burst['sent'] == fuzz.BURST_REQUESTS and burst['unanswered'] == 0, (service, burst)


def test_fuzz_motion_reports_every_task_and_interface(tmp_path, capsys):
    out = tmp_path / 'motion.json'
    assert main(['fuzz', 'motion', '--count', '20', '--json', str(out)]) == 0
    reports = json.loads(out.read_text())['results']
    assert set(reports) == {f'{task}/{side}' for task in TASK_NAMES for side in ('world', 'env')}
    assert all(r['commands'] == 20 and r['violations'] == 0 and r['empty_reasons'] == 0 for r in reports.values())
    assert '| spatula_flipping/env | 20 |' in capsys.readouterr().out
