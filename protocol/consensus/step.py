"""The steps of a height, in the order a validator passes through them."""

from __future__ import annotations

import enum


class Step(enum.IntEnum):
    """Where a validator is inside a height. Integer order is progress order, which
    the paper's ``step_p ≥ prevote`` (line 36) relies on."""

    NEW_HEIGHT = 0  # waiting to start round 0: minimum block interval, or no empty blocks
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3
    COMMITTED = 4  # decided; waiting for the host to store the block and start the next height


SIGNED_STEPS = (Step.PROPOSE, Step.PREVOTE, Step.PRECOMMIT)
