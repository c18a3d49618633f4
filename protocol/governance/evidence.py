"""Validator accountability: duplicate-vote evidence included in a block.

Evidence that verifies, is not older than `max_evidence_age` heights, names a
validator of the set that signed its height, and was not punished before, cuts the
offender's power by `evidence_penalty` (default 1/1: removal) from height H+2.
A penalty that would leave no validator is recorded but not applied. Evidence that
fails a check is ignored with an event: the consensus engine decides which evidence
enters a block; the state machine only decides what it costs.
"""

from __future__ import annotations

from protocol.governance import keys
from protocol.governance.context import Ctx
from protocol.governance.validator_set import schedule_change, validators_for
from protocol.types import DuplicateVoteEvidence


def _problem(c: Ctx, ev: DuplicateVoteEvidence) -> str | None:
    if ev.height >= c.height:
        return f"evidence height {ev.height} is not below the block height {c.height}"
    if c.height - ev.height > c.params.max_evidence_age:
        return f"evidence from height {ev.height} is older than {c.params.max_evidence_age} heights"
    if ev.validator not in validators_for(c.kv, ev.height):
        return "the offender did not sign that height"
    if c.kv.get(keys.evidence(ev.validator, ev.height)) is not None:
        return "this offence was already punished"
    if not ev.verify(c.chain_id, c.cache):
        return "the evidence's signatures do not verify"
    return None


def process(c: Ctx, ev: DuplicateVoteEvidence) -> None:
    who = ev.validator.hex()
    reason = _problem(c, ev)
    if reason is not None:
        c.emit("evidence.ignored", validator=who, height=ev.height, reason=reason)
        return
    c.kv.put(keys.evidence(ev.validator, ev.height), b"")
    pending = validators_for(c.kv, c.height + 2)
    power = pending.power_of(ev.validator)
    if power == 0:
        c.emit("evidence.recorded", validator=who, height=ev.height, power=0)
        return
    new_power = power - max(1, c.params.evidence_penalty.of(power))
    if schedule_change(c.kv, c.height, {ev.validator: new_power}) is None:
        c.emit("evidence.recorded", validator=who, height=ev.height, power=power, applied="would empty the set")
        return
    c.emit("evidence.punished", validator=who, height=ev.height, power=new_power, effective=c.height + 2)
