"""`protocol` is sans-IO: it must not reach a clock, randomness, sockets or the IO stack."""

import ast
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROTOCOL = ROOT / "protocol"

FORBIDDEN = {
    "trio", "libp2p", "plyvel", "structlog", "time", "random", "socket",
    "os", "threading", "asyncio", "subprocess", "datetime", "secrets", "uuid",
}
# `time` is imported by the interpreter itself at start-up, so at run time only the
# modules the interpreter does not preload can be checked; the static scan covers all.
RUNTIME_CHECKABLE = FORBIDDEN - {"time", "os"}


def _imported_roots(path: pathlib.Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            roots.add("__import__")
    return roots


def test_no_protocol_module_imports_io_or_clock():
    files = sorted(PROTOCOL.rglob("*.py"))
    assert files, "protocol/ has no modules?"
    offenders = {
        str(f.relative_to(ROOT)): sorted(_imported_roots(f) & (FORBIDDEN | {"__import__"}))
        for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_all_of_protocol_loads_no_forbidden_module():
    script = """
import importlib, json, pkgutil, sys
import msgpack, nacl.signing  # allowed dependencies; msgpack itself loads datetime
before = set(sys.modules)
import protocol
for m in pkgutil.walk_packages(protocol.__path__, "protocol."):
    importlib.import_module(m.name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in json.loads(out.stdout)}
    assert "protocol" in loaded
    assert loaded & RUNTIME_CHECKABLE == set()


def test_the_static_scan_would_catch_an_offender(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom random import choice\nimport msgpack\n")
    assert _imported_roots(bad) & FORBIDDEN == {"time", "random"}
