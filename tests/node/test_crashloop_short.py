"""The short crash loop of `make test` (the full one is `make crashloop`): SIGKILL
validators of a loaded real testnet at random moments, restart them, and find no
conflicting signatures, no disagreement and no lost acknowledged transaction."""

import pytest
from rich.console import Console
from test_runtime_inprocess import free_base_port

from simulations.real.crashloop import run

pytestmark = pytest.mark.slow


def test_kill_nine_and_restart_loses_nothing(tmp_path):
    report = run(kills=3, seed=7, validators=4, base_port=free_base_port(), workdir=tmp_path,
                 console=Console(quiet=True))
    assert report.kills == 3
    assert report.acked, "the load generator got no transaction committed"
    assert report.problems == []
    # The chain keeps going while the heights are read, so they may differ by a block;
    # agreement is checked block by block up to the lowest of them (report.problems).
    assert min(report.heights.values()) >= 3
