"""node.p2p.yamux_credit: a yamux stream gives receive-window credit back once half
the window is consumed (go-yamux's rule), not after every read as py-libp2p 0.8.1
did (three or four frames back per pubsub message)."""

from __future__ import annotations

import struct
from typing import Any

import pytest
import trio
from libp2p.stream_muxer.yamux import yamux as Y

from node.p2p import yamux_credit


class _Conn:
    """What a YamuxStream asks of its connection when it gives credit."""

    def __init__(self) -> None:
        self.stream_buffers: dict[int, bytearray] = {}
        self.frames: list[bytes] = []

    def rtt(self) -> float:
        return 0.0

    async def _write_frame(self, frame: bytes) -> None:
        self.frames.append(frame)


def _increments(conn: _Conn) -> list[int]:
    out = []
    for f in conn.frames:
        _, kind, _, _, length = struct.unpack(Y.YAMUX_HEADER_FORMAT, f[:12])
        assert kind == Y.TYPE_WINDOW_UPDATE
        out.append(length)
    return out


async def _receive_and_read(stream: Any, conn: _Conn, sizes: list[int]) -> None:
    """Data arrives (as Yamux.handle_incoming books it), then the app reads all of it."""
    for n in sizes:
        stream.recv_window -= n
        conn.stream_buffers.setdefault(stream.stream_id, bytearray()).extend(b"x" * n)
        buf = conn.stream_buffers[stream.stream_id]
        del buf[:n]
        await stream._auto_tune_and_send_window_update(bytes_read=n)


@pytest.fixture
def installed():
    yamux_credit.install()
    yield
    yamux_credit.uninstall()


def _run(sizes: list[int]) -> tuple[Any, _Conn]:
    conn = _Conn()
    stream = Y.YamuxStream(1, conn, True)  # type: ignore[arg-type]

    async def main() -> None:
        await _receive_and_read(stream, conn, sizes)

    trio.run(main)
    return stream, conn


def test_small_reads_send_no_credit_until_half_the_window(installed) -> None:
    half = Y.DEFAULT_WINDOW_SIZE // 2
    # A pubsub message as py-libp2p reads it: 2 varint bytes, then a 300-byte body.
    per_message = [1, 1, 300]
    messages = half // 302
    stream, conn = _run(per_message * messages)
    assert conn.frames == []  # 1,300+ reads, no frame back
    consumed = 302 * messages
    assert stream.recv_window == Y.DEFAULT_WINDOW_SIZE - consumed

    stream2, conn2 = _run(per_message * (messages + 1))  # crosses half the window
    assert len(conn2.frames) == 1
    # Credit restores the window (auto-tuning may add to it, never less).
    assert _increments(conn2)[0] >= 302 * (messages + 1)
    assert stream2.recv_window >= Y.DEFAULT_WINDOW_SIZE


def test_a_sender_keeps_at_least_half_a_window_while_the_reader_reads(installed) -> None:
    stream, conn = _run([4096] * 1000)  # 4 MB through a 256 KiB window
    credited = sum(_increments(conn))
    consumed = 4096 * 1000
    # What the sender may still send: its window minus what it has sent, plus credit.
    assert Y.DEFAULT_WINDOW_SIZE - consumed + credited >= Y.DEFAULT_WINDOW_SIZE // 2
    assert len(conn.frames) <= consumed // (Y.DEFAULT_WINDOW_SIZE // 2)
    assert stream.recv_window >= Y.DEFAULT_WINDOW_SIZE // 2  # what the receiver grants matches


def test_unpatched_py_libp2p_credits_every_read() -> None:
    """What the patch is for (and a check that this test can tell the two apart)."""
    yamux_credit.uninstall()
    _, conn = _run([1, 1, 300] * 10)
    assert len(conn.frames) == 30


def test_install_is_idempotent_and_reversible() -> None:
    yamux_credit.install()
    yamux_credit.install()
    assert Y.YamuxStream._auto_tune_and_send_window_update is yamux_credit._credit_with_hysteresis
    yamux_credit.uninstall()
    assert Y.YamuxStream._auto_tune_and_send_window_update is yamux_credit._original
    assert yamux_credit._original.__module__ == Y.__name__  # py-libp2p's own
