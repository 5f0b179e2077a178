"""EpisodeLedger: a collection resumed after its process was killed skips the episode it died in."""
import subprocess
import sys
import textwrap

import pytest

from samrl_policy.training import EpisodeLedger

ABORTING_COLLECTION = textwrap.dedent('''
    import os, sys
    from samrl_policy.training import EpisodeLedger
    ledger = EpisodeLedger(sys.argv[1])
    for seed in ledger.pending([10, 11, 12]):
        with ledger.episode(seed):
            if seed == 11:
                os.abort()          # as nimble's LCP assertion ends the process: no Python handler runs
''')


def test_an_aborted_episode_is_skipped_by_the_next_process(tmp_path):
    path = tmp_path / 'round_000.running'
    first = subprocess.run([sys.executable, '-c', ABORTING_COLLECTION, str(path)], timeout=60)
    assert first.returncode < 0                               # killed by SIGABRT
    ledger = EpisodeLedger(path)
    assert ledger.skipped == [11] and ledger.pending([10, 11, 12]) == [10, 12]
    with ledger.episode(12):
        pass
    assert EpisodeLedger(path).skipped == [11]                # remembered until the shard is saved
    ledger.close()
    assert not path.exists() and EpisodeLedger(path).pending([10, 11, 12]) == [10, 11, 12]


def test_an_exception_in_python_does_not_skip_the_episode(tmp_path):
    path = tmp_path / 'shard.running'
    with pytest.raises(KeyboardInterrupt):
        with EpisodeLedger(path).episode(7):
            raise KeyboardInterrupt       # Ctrl-C: the episode is redone on resume, not skipped
    assert EpisodeLedger(path).pending([7]) == [7]
