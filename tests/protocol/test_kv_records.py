"""An overlay may hold a record as a struct (`put_record`) and encode it only when
its bytes are read: every reader sees the same bytes as if it had been `put`."""

from __future__ import annotations

from protocol.governance.accounts import Account, get_account, put_account
from protocol.governance.keys import account as account_key
from protocol.kv import MemoryKV, Overlay

ADDR = bytes(range(20))
KEY = account_key(ADDR)


def _base() -> MemoryKV:
    kv = MemoryKV()
    kv.apply([(b"a/zz", b"x"), (b"m/other", b"y")])
    return kv


def test_record_reads_back_as_struct_and_as_its_encoding() -> None:
    ov = Overlay(_base())
    acct = Account(10, 0, 1, None)
    ov.put_record(KEY, acct)
    assert ov.get_record(KEY) is acct
    assert ov.get(KEY) == acct.encode()
    inner = Overlay(Overlay(ov))  # nested overlays see it too
    assert inner.get_record(KEY) is acct and inner.get(KEY) == acct.encode()


def test_write_set_and_scan_hold_bytes_only() -> None:
    ov = Overlay(_base())
    acct = Account(10, 0, 1, None)
    ov.put_record(KEY, acct)
    ws = ov.write_set()
    assert ws == [(KEY, acct.encode())]
    assert all(type(v) is bytes for _, v in ov.scan(b"a/"))
    assert dict(ov.scan(b"a/"))[KEY] == acct.encode()


def test_same_state_with_records_or_bytes() -> None:
    """put_account (records) leaves exactly the write set that encoded puts leave."""
    lazy, eager = Overlay(_base()), Overlay(_base())
    for i, acct in enumerate([Account(5, 0, 0, None), Account(7, 2, 1, None), Account(7, 2, 2, ADDR)]):
        put_account(lazy, ADDR, acct)
        eager.put(KEY, acct.encode())
        assert get_account(lazy, ADDR) == acct, i
    assert lazy.write_set() == eager.write_set()
    store = MemoryKV()
    store.apply(lazy.write_set())
    assert get_account(store, ADDR) == Account(7, 2, 2, ADDR)


def test_merge_and_records_list() -> None:
    parent = Overlay(_base())
    child = Overlay(parent)
    acct = Account(1, 0, 0, None)
    child.put_record(KEY, acct)
    child.put(b"m/raw", b"v")
    assert parent.get(KEY) is None
    child.merge_into_parent()
    assert parent.get_record(KEY) is acct
    assert parent.records() == [acct]
    parent.delete(KEY)
    assert parent.get_record(KEY) is None and parent.records() == []
