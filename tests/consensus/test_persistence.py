"""Sign state, WAL records and restart: persistence precedes every signature that
leaves, and a restarted engine re-broadcasts instead of signing again."""

from __future__ import annotations

from dataclasses import replace

import pytest

from protocol.consensus import (
    Action,
    Broadcast,
    Engine,
    Input,
    PersistSignState,
    SignState,
    Step,
    WalAppend,
    WalRecord,
)
from protocol.consensus.signer import Signer
from protocol.consensus.signstate import signed_hash
from protocol.errors import DecodeError
from protocol.types import Proposal, Vote, VoteType

from .harness import CHAIN_ID
from .rig import Rig

PROPOSE, PREVOTE, PRECOMMIT = Step.PROPOSE, Step.PREVOTE, Step.PRECOMMIT


class Disk:
    """What a host would have persisted from an engine's actions."""

    def __init__(self) -> None:
        self.sign_state: SignState | None = None
        self.wal: list[WalRecord] = []

    def take(self, actions: list[Action]) -> list[Action]:
        for a in actions:
            if isinstance(a, PersistSignState):
                self.sign_state = a.state
            elif isinstance(a, WalAppend):
                self.wal.append(a.record)
        return actions


def restart(rig: Rig, disk: Disk) -> list[Action]:
    rig.engine = rig.fresh_engine(disk.sign_state)
    return disk.take(rig.engine.restore(rig.start(), list(disk.wal)))


def locking_inputs(rig: Rig) -> list[Input]:
    p0, p1, p2 = rig.proposers[:3]
    rig.block("B1", 0)
    rig.block("B2", 1)
    return [
        rig.start(),
        rig.proposal(0, "B1"),
        rig.validity("B1"),
        rig.prevote(p0, 0, "B1"),
        rig.prevote(p1, 0, "B1"),
        rig.precommit(p0, 0, None),
        rig.precommit(p1, 0, None),
        rig.timeout(PRECOMMIT, 0),
        rig.proposal(1, "B2"),
        rig.validity("B2"),
        rig.prevote(p0, 1, "B2"),
        rig.prevote(p1, 1, "B2"),
        rig.prevote(p2, 1, "B2"),
    ]


def test_every_signature_is_persisted_then_logged_then_broadcast() -> None:
    rig = Rig()
    actions: list[Action] = []
    for inp in locking_inputs(rig):
        actions.extend(rig.step(inp))
    broadcasts = [i for i, a in enumerate(actions) if isinstance(a, Broadcast)]
    assert len(broadcasts) == 4  # prevote r0, precommit r0, prevote r1, precommit r1
    for i in broadcasts:
        persist, wal, sent = actions[i - 2], actions[i - 1], actions[i]
        assert isinstance(persist, PersistSignState) and isinstance(wal, WalAppend) and isinstance(sent, Broadcast)
        assert persist.state.message == sent.message == wal.record.message
        assert persist.state.signed_hash == signed_hash(CHAIN_ID, sent.message)


def test_sign_state_carries_the_lock() -> None:
    rig = Rig()
    disk = Disk()
    for inp in locking_inputs(rig):
        disk.take(rig.step(inp))
    state = disk.sign_state
    assert state is not None and state.step == Step.PRECOMMIT and state.round == 1
    assert (state.locked_round, state.locked_hash) == (1, rig.blocks["B2"].hash)


def test_restore_after_every_input_rebuilds_the_lock_and_signs_nothing_new() -> None:
    """Restart after each input of the paper's locking run: the restored engine
    holds the same lock, re-broadcasts exactly what it had signed, and makes no
    new signature (the original had already reached every rule's conclusion)."""
    rig = Rig()
    inputs = locking_inputs(rig)
    for cut in range(1, len(inputs) + 1):
        rig.engine = rig.fresh_engine()
        disk = Disk()
        signed: list[Proposal | Vote] = []
        for inp in inputs[:cut]:
            signed.extend(a.message for a in disk.take(rig.step(inp)) if isinstance(a, Broadcast))
        before = rig.engine.state
        assert before is not None
        out = restart(rig, disk)
        after = rig.engine.state
        assert after is not None
        assert (after.locked_round, after.locked_hash) == (before.locked_round, before.locked_hash)
        assert not [a for a in out if isinstance(a, PersistSignState)], f"cut {cut}: signed again"
        assert [a.message for a in out if isinstance(a, Broadcast)] == signed, f"cut {cut}"
        assert after.round <= before.round


def test_restart_never_prevotes_twice_in_a_round() -> None:
    rig = Rig()
    p0, p1, _ = rig.proposers[:3]
    rig.block("B1", 0)
    disk = Disk()
    disk.take(rig.step(rig.start()))
    disk.take(rig.step(rig.timeout(PROPOSE, 0)))  # prevote nil
    out = restart(rig, disk)
    assert [rig.render(a) for a in out if not isinstance(a, WalAppend)] == ["prevote r0 nil"]
    assert rig.render_state() == "r0 prevote lock=- valid=-"
    # The proposal turns up after the restart: L22 no longer applies, nothing is signed.
    out = disk.take(rig.step(rig.proposal(0, "B1")))
    out += disk.take(rig.step(rig.validity("B1")))
    assert [rig.render(a) for a in out if not isinstance(a, WalAppend)] == ["validate B1"]
    # The round goes on normally from there.
    disk.take(rig.step(rig.prevote(p0, 0, "B1")))
    out = disk.take(rig.step(rig.prevote(p1, 0, "B1")))
    assert [rig.render(a) for a in out if rig.render(a)] == ["timeout prevote r0 1000"]
    out = disk.take(rig.step(rig.prevote(rig.proposers[2], 0, "B1")))
    assert [rig.render(a) for a in out if rig.render(a)] == ["persist precommit r0", "precommit r0 B1"]


def test_lock_survives_a_restart_from_the_sign_state_alone() -> None:
    rig = Rig()
    p0, p1, _ = rig.proposers[:3]
    rig.block("B1", 0)
    rig.block("B2", 1)
    disk = Disk()
    for inp in [rig.start(), rig.proposal(0, "B1"), rig.validity("B1")]:
        disk.take(rig.step(inp))
    for inp in [rig.prevote(p0, 0, "B1"), rig.prevote(p1, 0, "B1")]:
        disk.take(rig.step(inp))
    disk.wal.clear()  # the WAL is lost; the sign state is not
    out = restart(rig, disk)
    assert [rig.render(a) for a in out if rig.render(a)] == ["precommit r0 B1"]
    assert rig.render_state() == "r0 precommit lock=B1@0 valid=B1@0"
    rig.play([
        (rig.precommit(p0, 0, None), [], None),
        (rig.precommit(p1, 0, None), ["timeout precommit r0 1000"], None),
        (rig.timeout(PRECOMMIT, 0), ["timeout propose r1 3500"], None),
        (
            rig.proposal(1, "B2"),
            ["validate B2", "persist prevote r1", "prevote r1 nil"],
            "r1 prevote lock=B1@0 valid=B1@0",
        ),
    ])


def test_proposer_restarted_after_proposing_does_not_build_again() -> None:
    rig = Rig()
    rig = Rig(me=rig.proposers[0])
    rig.block("B1", 0)
    disk = Disk()
    disk.take(rig.step(rig.start()))
    actions = rig.step(rig.built(0, "B1"))
    # Crash right after the proposal's sign state was written: nothing else happened.
    disk.take(actions[:1])
    out = restart(rig, disk)
    rendered = [rig.render(a) for a in out if rig.render(a)]
    assert rendered == ["propose r0 B1 pol=-1", "timeout propose r0 3000", "persist prevote r0", "prevote r0 B1"]


def test_proposer_restarted_before_proposing_builds_again() -> None:
    rig = Rig()
    rig = Rig(me=rig.proposers[0])
    disk = Disk()
    disk.take(rig.step(rig.start()))
    out = restart(rig, disk)
    assert [rig.render(a) for a in out] == ["build r0", "timeout propose r0 3000"]


def test_sign_state_of_a_later_height_silences_the_engine() -> None:
    """A host whose chain is behind its sign state (e.g. a restored backup) must not sign."""
    rig = Rig()
    later = Vote.create(rig.keys[rig.me_i], CHAIN_ID, VoteType.PREVOTE, 5, 0, None, rig.now)
    rig.engine = rig.fresh_engine(SignState.of(CHAIN_ID, later, -1, None))
    rig.block("B1", 0)
    rig.engine.restore(rig.start(), [])
    out = rig.step(rig.proposal(0, "B1")) + rig.step(rig.validity("B1"))
    assert not [a for a in out if isinstance(a, PersistSignState | Broadcast)]
    assert rig.render_state() == "r0 prevote lock=- valid=-"


def test_own_vote_found_only_in_the_wal_is_not_signed_again() -> None:
    rig = Rig()
    own = Vote.create(rig.keys[rig.me_i], CHAIN_ID, VoteType.PREVOTE, 1, 0, None, rig.now)
    rig.engine = rig.fresh_engine(None)
    out = rig.engine.restore(rig.start(), [WalRecord.of(own)])
    assert [rig.render(a) for a in out] == ["prevote r0 nil"]
    rig.block("B1", 0)
    out = rig.step(rig.proposal(0, "B1")) + rig.step(rig.validity("B1"))
    assert not [a for a in out if isinstance(a, PersistSignState)]


def test_observer_without_a_key_follows_and_decides_without_signing() -> None:
    rig = Rig()
    p0, p1, p2 = rig.proposers[:3]
    rig.block("B1", 0)
    rig.engine = Engine(chain_id=CHAIN_ID, key=None, config=rig.config)
    out: list[Action] = []
    for inp in [
        rig.start(),
        rig.proposal(0, "B1"),
        rig.validity("B1"),
        *(rig.prevote(v, 0, "B1") for v in (p0, p1, p2)),
        *(rig.precommit(v, 0, "B1") for v in (p0, p1, p2)),
    ]:
        out.extend(rig.step(inp))
    assert not [a for a in out if isinstance(a, PersistSignState | Broadcast)]
    assert [rig.render(a) for a in out if rig.render(a).startswith("decide")] == ["decide r0 B1"]


def test_signer_signs_each_step_once_in_increasing_order() -> None:
    rig = Rig()
    key = rig.keys[0]
    signer = Signer(CHAIN_ID, key, None)
    lock = (-1, None)
    v1, a1 = signer.sign_vote(VoteType.PREVOTE, 1, 0, None, 10, lock)
    assert v1 is not None and [type(a) for a in a1] == [PersistSignState, WalAppend, Broadcast]
    again, a2 = signer.sign_vote(VoteType.PREVOTE, 1, 0, b"\x01" * 32, 11, lock)
    assert again == v1 and a2 == [Broadcast(v1)]  # the stored vote, not a new one
    v2, _ = signer.sign_vote(VoteType.PRECOMMIT, 1, 0, None, 12, lock)
    assert v2 is not None and v2.type == VoteType.PRECOMMIT
    late, a3 = signer.sign_vote(VoteType.PREVOTE, 1, 0, None, 13, lock)
    assert late is None and a3 == []
    block = rig.block("B1", 0)
    proposal, a4 = signer.sign_proposal(1, 0, -1, block, 14, lock)
    assert proposal is None and a4 == []  # below the last signed step
    proposal, a5 = signer.sign_proposal(1, 1, -1, block, 15, lock)
    assert proposal is not None and isinstance(a5[0], PersistSignState)
    assert Signer(CHAIN_ID, None, None).sign_vote(VoteType.PREVOTE, 1, 0, None, 1, lock) == (None, [])


def test_sign_state_and_wal_records_round_trip_and_reject_inconsistency() -> None:
    rig = Rig()
    block = rig.block("B1", 0)
    p = Proposal.create(rig.keys[rig.proposers[0]], CHAIN_ID, 1, 0, -1, block, 7)
    v = Vote.create(rig.keys[0], CHAIN_ID, VoteType.PRECOMMIT, 1, 0, block.hash, 8)
    for state in (SignState.of(CHAIN_ID, p, -1, None), SignState.of(CHAIN_ID, v, 0, block.hash)):
        assert SignState.decode(state.encode()) == state
    for record in (WalRecord.of(p), WalRecord.of(v), WalRecord.of(block)):
        assert WalRecord.decode(record.encode()) == record
    state = SignState.of(CHAIN_ID, v, 0, block.hash)
    with pytest.raises(ValueError):
        replace(state, step=Step.PREVOTE)
    with pytest.raises(ValueError):
        replace(state, locked_hash=None)
    with pytest.raises(ValueError):
        replace(state, proposal=p)
    with pytest.raises(ValueError):
        WalRecord(2, None, v, None)
    with pytest.raises(DecodeError):
        WalRecord.decode(WalRecord(1, None, v, None).encode()[:-1])
