"""Yamux receive-window credit with hysteresis, as go-yamux gives it.

py-libp2p 0.8.1's `YamuxStream` sends a WINDOW_UPDATE frame after every read that
leaves any credit owed. Pubsub reads each message as one-byte reads of its varint
length and then the body, so every message received cost three or four extra frames
back: each one encrypted, written and, by the peer, read, decrypted and handled, in
the same trio thread as consensus. go-yamux (and the yamux spec's advice) credits
only once half the window has been consumed; that is what this installs.

The credit owed on a stream is `target − (recv_window + buffered)`: what the
application has read and the sender has not been told about. When it reaches half
the target window, it is given back in one update (with py-libp2p's own window
auto-tuning); below that, reads send nothing. A sender is never blocked by this
while the receiver keeps reading: it still has at least half a window of credit.

The patch replaces one method of py-libp2p 0.8.1's `YamuxStream` (process-wide,
idempotent; `uninstall()` restores it). Its collaborators are checked first, so a
py-libp2p that renamed them fails loudly here rather than misbehaving on the wire.
"""

from __future__ import annotations

from typing import Any

from libp2p.stream_muxer.yamux import yamux as _yamux

_NEEDS = ("_auto_tune_and_send_window_update", "_grow_to_delta", "_apply_autotune_epoch", "send_window_update")
_original = _yamux.YamuxStream._auto_tune_and_send_window_update

_updates = 0  # window updates sent (process-wide)
_deferred = 0  # reads that owed less than half a window and sent nothing


async def _credit_with_hysteresis(self: Any, *, bytes_read: int = 0) -> None:
    global _updates, _deferred
    increment = 0
    async with self.window_lock:
        buffered = len(self.conn.stream_buffers.get(self.stream_id, b""))
        owed = self.target_recv_window - (self.recv_window + buffered)
        if owed > 0 and owed >= self.target_recv_window // 2:
            increment = self._grow_to_delta(buffered) + self._apply_autotune_epoch(buffered)
    if increment > 0:
        _updates += 1
        await self.send_window_update(increment, skip_lock=True)
    elif bytes_read > 0:
        _deferred += 1


def install() -> None:
    """Replace py-libp2p's per-read credit with the hysteresis rule (idempotent)."""
    cls = _yamux.YamuxStream
    missing = [m for m in _NEEDS if not hasattr(cls, m)]
    if missing or "target_recv_window" not in getattr(cls, "__annotations__", {}):
        raise RuntimeError(f"py-libp2p's YamuxStream is not the one yamux_credit was written for (lacks {missing})")
    cls._auto_tune_and_send_window_update = _credit_with_hysteresis  # type: ignore[method-assign]


def uninstall() -> None:
    _yamux.YamuxStream._auto_tune_and_send_window_update = _original  # type: ignore[method-assign]


def counts() -> tuple[int, int]:
    """(window updates sent, reads that sent none) since the process started."""
    return _updates, _deferred
