"""Walks the README quickstart as a user would: `ekklesia testnet init`, then
`ekklesia testnet run --demo` — four node processes, the live table, the governance
demo — and checks every node stops cleanly."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_runtime_inprocess import free_base_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def ekklesia(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_the_readme_names_the_commands_this_test_runs():
    assert "make run" in README and "make test" in README
    assert "ekklesia testnet init --validators 4 --out testnet" in README
    assert "ekklesia testnet run testnet --demo" in README
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and "testnet run $(TESTNET) --demo" in makefile


def test_quickstart_testnet_with_the_governance_demo(tmp_path):
    out = tmp_path / "testnet"
    init = ekklesia("testnet", "init", "--validators", "4", "--out", str(out), "--base-port", str(free_base_port()),
                    timeout=60)
    assert init.returncode == 0, init.stderr
    assert "testnet with 4 validators" in init.stdout
    run = ekklesia("testnet", "run", str(out), "--demo", "--duration", "240", timeout=300)
    text = run.stdout + run.stderr
    assert run.returncode == 0, text[-3000:]
    for step in ("registered identity", "granted e-residency", "proposed #1", "executed", "notarised document",
                 "registered their marriage", "demo complete", "all nodes stopped"):
        assert step in text, f"{step!r} missing from the run's output:\n{text[-3000:]}"
    assert "killed" not in text  # every node stopped on SIGTERM within the grace period
