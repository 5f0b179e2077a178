import pytest

from samrl_common.testing import NodeProcess, isolated_environment


@pytest.fixture
def dds_env():
    return isolated_environment()


@pytest.fixture
def start_node(dds_env, tmp_path):
    started = []

    def start(module: str, *args: str) -> NodeProcess:
        process = NodeProcess(module, list(args), dds_env, tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
