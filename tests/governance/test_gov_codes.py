"""Every result code is documented and exercised by at least one test."""

from __future__ import annotations

import pathlib

from protocol.governance import KINDS, Code

HERE = pathlib.Path(__file__).resolve().parent
DOCS = HERE.parents[1] / "docs" / "governance.md"


def test_every_code_is_exercised_by_a_test() -> None:
    sources = "".join(p.read_text() for p in sorted(HERE.glob("test_gov_*.py")) if p.name != "test_gov_codes.py")
    missing = [c.name for c in Code if c != Code.OK and f"Code.{c.name}" not in sources]
    assert missing == []


def test_every_code_is_documented() -> None:
    text = DOCS.read_text()
    missing = [c.name for c in Code if f"| {int(c)} | `{c.name}`" not in text]
    assert missing == []


def test_every_kind_is_exercised_by_a_test_and_documented() -> None:
    files = [*sorted(HERE.glob("test_gov_*.py")), HERE / "gov_helpers.py"]
    sources = "".join(p.read_text() for p in files if p.name != "test_gov_codes.py")
    text = DOCS.read_text()
    assert [k for k in KINDS if f'"{k}"' not in sources] == []
    assert [k for k in KINDS if f"| `{k}` |" not in text] == []
