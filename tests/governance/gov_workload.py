"""Random governance workloads, driven by any source of choices (Hypothesis data or
a seeded `random.Random`), built against a live `Chain` so nonces and ids are real.

Run as a script (`python gov_workload.py <workload file>`) it applies the blocks
stored in the file to a fresh genesis state and prints one app hash per line: the
cross-process determinism test runs it under other PYTHONHASHSEEDs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from gov_helpers import OUTSIDER, PEOPLE, TREASURY, VALIDATORS, Chain, kp, person

from protocol.crypto import Keypair
from protocol.governance import apply_block, queries
from protocol.governance.accounts import Transfer
from protocol.governance.actions import (
    ActionType,
    ChangeParams,
    ChangeValidators,
    DissolveUnion,
    EnactLaw,
    ResidencyRuling,
    TreasurySpend,
    ValidatorUpdate,
)
from protocol.governance.identity import (
    GrantResidency,
    RegisterIdentity,
    Residency,
    ResidencyAction,
    RotateKey,
    key_digest,
)
from protocol.governance.notary import Notarise
from protocol.governance.proposals import CastVote, Choice, ProposalRef, Status, SubmitProposal
from protocol.governance.unions import CreateUnion, UnionKind, UnionRef
from protocol.types import Block, Tx
from protocol.wire import Struct

Pick = Callable[[int, int], int]  # inclusive integer range


class Workload:
    """Actors 0–5 are the genesis residents (0 a registrar), 6 the outsider, 7–9
    newcomers who may register. Each actor's current and next key are tracked, so
    rotations keep working."""

    def __init__(self, chain: Chain, pick: Pick) -> None:
        self.c = chain
        self.pick = pick
        newcomers = [person(80 + i) for i in range(3)]
        folks = [*PEOPLE, OUTSIDER, *newcomers]
        self.keys: list[Keypair] = [p.key for p in folks]
        self.next_keys: list[Keypair] = [p.next_key for p in folks]
        self.ids: list[bytes] = [p.id for p in folks]
        self.generation = [0] * len(folks)

    def choice(self, items: list[Any]) -> Any:
        return items[self.pick(0, len(items) - 1)]

    def actor(self) -> int:
        return self.pick(0, len(self.keys) - 1)

    def tx(self, who: int, kind: str, body: Struct, cosigners: tuple[Keypair, ...] = ()) -> Tx:
        return self.c.tx(self.keys[who], kind, body, cosigners=cosigners)

    def proposal_id(self) -> int:
        """Mostly a proposal open for votes, sometimes any id (even a missing one)."""
        props = queries.proposals(self.c.state)
        open_ = [p.id for p in props if p.status == Status.VOTING]
        if open_ and self.pick(0, 3):
            return int(self.choice(open_))
        return self.pick(1, len(props) + 1)

    def union_id(self) -> int:
        return self.pick(1, 4)

    def one(self) -> tuple[Tx, Callable[[bool], None] | None]:
        op = self.pick(0, 17)
        me = self.actor()
        if op <= 2:
            to = self.choice([*(k.address for k in self.keys), kp(12345).address])
            return self.tx(me, "transfer", Transfer(to, self.pick(0, 1_200_000), "")), None
        if op == 3:
            kind = self.pick(0, 4)
            if kind == 0:
                at, action = ActionType.ENACT_LAW, EnactLaw("law")
            elif kind == 1:
                at, action = ActionType.CHANGE_PARAMS, ChangeParams(self.pick(0, 3), None, None, None, None, ())
            elif kind == 2:
                at, action = ActionType.TREASURY_SPEND, TreasurySpend(
                    self.keys[self.actor()].address, self.pick(1, TREASURY + TREASURY // 10), "p"
                )
            elif kind == 3:
                v = VALIDATORS[self.pick(0, 3)].public_key
                at, action = ActionType.CHANGE_VALIDATORS, ChangeValidators((ValidatorUpdate(v, self.pick(0, 20)),))
            else:
                target = self.ids[self.pick(0, 5)]
                to = self.choice([Residency.SUSPENDED, Residency.ACTIVE, Residency.REVOKED])
                at, action = ActionType.RESIDENCY_RULING, ResidencyRuling(target, to, "")
            body = SubmitProposal("p", "", self.pick(50, 400), at, action.encode())
            return self.tx(me, "proposal.submit", body), None
        if op == 4:
            return self.tx(me, "proposal.cancel", ProposalRef(self.proposal_id())), None
        if op in (5, 6, 7, 14, 15, 16):
            return self.tx(me, "proposal.vote", CastVote(self.proposal_id(), Choice(self.pick(1, 4)))), None
        if op == 8:
            return self.tx(me, "notary.notarise", Notarise(bytes([self.pick(0, 3)]) * 32, "")), None
        if op == 9:
            if me >= 7:
                digest = key_digest(self.next_keys[me].public_key)
                return self.tx(me, "identity.register", RegisterIdentity(digest)), None
            registrar = self.choice([0, 0, 0, me])
            target = self.ids[self.pick(0, len(self.ids) - 1)]
            which = self.pick(0, 3)
            if which == 0:
                expiry = self.c.height + self.pick(1, 25)
                return self.tx(registrar, "residency.grant", GrantResidency(target, expiry)), None
            kind = ["residency.suspend", "residency.reinstate", "residency.revoke"][which - 1]
            return self.tx(registrar, kind, ResidencyAction(target, "")), None
        if op == 10:
            other = self.actor()
            cosigners = () if other == me else (self.keys[other],)
            kind = UnionKind(self.pick(1, 2))
            return self.tx(me, "union.create", CreateUnion(kind, "u", bytes(32), self.pick(3, 10)), cosigners), None
        if op == 11:
            if self.pick(0, 1):
                return self.tx(me, "union.notice", UnionRef(self.union_id())), None
            uid = self.union_id()
            u = queries.union(self.c.state, uid)
            parties = [] if u is None else [self.ids.index(p) for p in u.parties if p in self.ids]
            others = tuple(self.keys[i] for i in parties if i != me)
            return self.tx(me, "union.dissolve", UnionRef(uid), others), None
        if op == 12 and me in (2, 3, 4, 5):
            return self.rotation(me)
        if op != 13:
            return self.tx(me, "proposal.vote", CastVote(self.proposal_id(), Choice(self.pick(1, 4)))), None
        uid = self.union_id()
        body = SubmitProposal("d", "", 100, ActionType.DISSOLVE_UNION, DissolveUnion(uid, "").encode())
        return self.tx(me, "proposal.submit", body), None

    def rotation(self, me: int) -> tuple[Tx, Callable[[bool], None]]:
        g = self.generation[me] + 1
        nxt, after = self.next_keys[me], kp(1_000_000 * (g + 1) + me)
        tx = self.c.tx(nxt, "identity.rotate", RotateKey(self.ids[me], key_digest(after.public_key)))

        def done(success: bool) -> None:
            if success:
                self.keys[me], self.next_keys[me], self.generation[me] = nxt, after, g

        return tx, done

    def block(self, max_txs: int = 8) -> list[bool]:
        txs, hooks = [], []
        for _ in range(self.pick(0, max_txs)):
            tx, hook = self.one()
            if hook is not None and any(h is not None for h in hooks):
                continue  # one rotation per block keeps the key model simple
            txs.append(tx)
            hooks.append(hook)
        res = self.c.block(*txs, dt=self.pick(0, 5_000))
        for r, hook in zip(res.tx_results, hooks, strict=True):
            if hook is not None:
                hook(r.ok)
        return [r.ok for r in res.tx_results]


def replay(blocks: list[bytes]) -> list[str]:
    c = Chain()
    out = []
    for raw in blocks:
        blk = Block.decode(raw)
        res = apply_block(c.state, blk)
        c.state.apply(res.write_set)
        out.append(res.app_hash.hex())
    return out


if __name__ == "__main__":
    import codecs

    with open(sys.argv[1]) as f:
        encoded = [codecs.decode(line.strip(), "hex") for line in f if line.strip()]
    print("\n".join(replay(encoded)))
