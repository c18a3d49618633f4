"""Which validators sign which height, as the consensus engine reads it from state.

`vs/ H` holds the set that signs from height H until the next entry. Genesis writes
`vs/ 1`. A change decided while executing block H (a governance decision or an
evidence penalty) is written to `vs/ H+2`: block H+1 is already being agreed on by
the set that was known when H was committed, so H+2 is the first height whose
signers every node can know in advance.
"""

from __future__ import annotations

from protocol.errors import InvariantViolation
from protocol.governance import keys
from protocol.kv import KVReader, Overlay
from protocol.validators import ValidatorSet

DELAY = 2


def validators_for(state: KVReader, height: int) -> ValidatorSet:
    """The set that signs `height` (heights below 1 read the genesis set)."""
    found: bytes | None = None
    for k, v in state.scan(keys.VALIDATORS):
        if keys.read_u64(k[len(keys.VALIDATORS) :]) > max(height, 1):
            break
        found = v
    if found is None:
        raise InvariantViolation("no validator set is stored")
    return ValidatorSet.decode(found)


def schedule_change(kv: Overlay, height: int, powers: dict[bytes, int]) -> ValidatorSet | None:
    """Apply {pubkey: power (0 removes)} to the set for `height + 2` and store it.
    Returns the new set, or None (changing nothing) if it would be empty."""
    effective = height + DELAY
    current = {v.pubkey: v.power for v in validators_for(kv, effective).validators}
    for pk in sorted(powers):
        if powers[pk] == 0:
            current.pop(pk, None)
        else:
            current[pk] = powers[pk]
    if not current:
        return None
    new = ValidatorSet.of(sorted(current.items()))
    kv.put(keys.validators(effective), new.encode())
    return new
