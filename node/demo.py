"""The governance demo `make run` shows against a local testnet: residents register
and receive e-residency, a treasury-funding proposal is submitted, voted on and
executed, a document is notarised and a marriage registered."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import trio

from node.client import ApiError, Client
from node.keys import Keystore
from node.testnet import next_key_seed
from protocol import crypto
from protocol.governance.actions import ActionType, TreasurySpend
from protocol.governance.identity import GrantResidency, RegisterIdentity, derive_id, key_digest
from protocol.governance.notary import Notarise
from protocol.governance.proposals import CastVote, Choice, SubmitProposal
from protocol.governance.unions import CreateUnion, UnionKind

RESIDENTS = ("alice", "bob", "carol", "dave")
GRANT = 1_000_000  # residency lasts this many heights
FUNDING = 250_000


def _identity(key: crypto.Keypair, keys: Keystore, name: str) -> tuple[bytes, bytes]:
    """(identity id, committed next-key digest) of a demo key."""
    digest = key_digest(crypto.Keypair(next_key_seed(keys.seed(name, None))).public_key)
    return derive_id(key.public_key, digest), digest


def _check(result: dict[str, object], what: str) -> None:
    if result.get("status") != "committed" or result.get("code") not in (0, None):
        raise ApiError(f"{what}: {result.get('status')} {result.get('info') or result.get('reason') or ''}")


async def run_demo(out: Path, api: str, say: Callable[[str], None]) -> None:
    keys = Keystore(out / "keys")
    k = {name: keys.keypair(name, None) for name in ("registrar", *RESIDENTS)}
    c = Client(api)
    try:
        height = (await c.get("/v1/status"))["height"]
        ids = {}
        for name in RESIDENTS:
            ident, digest = _identity(k[name], keys, name)
            ids[name] = ident
            _check(await c.send(k[name], "identity.register", RegisterIdentity(digest)), f"{name} registers")
            say(f"{name} registered identity {ident.hex()[:16]}…")
        for name in RESIDENTS:
            _check(await c.send(k["registrar"], "residency.grant", GrantResidency(ids[name], height + GRANT)),
                   f"e-residency for {name}")
            say(f"registrar granted e-residency to {name}")

        spend = TreasurySpend(crypto.address(k["carol"].public_key), FUNDING, "community school in the commons")
        proposal = SubmitProposal("Fund the commons school", "Treasury grant for a year of classes.", 1_000,
                                  ActionType.TREASURY_SPEND, spend.encode())
        _check(await c.send(k["alice"], "proposal.submit", proposal), "proposal")
        pid = max(p["id"] for p in (await c.get("/v1/proposals"))["proposals"])
        say(f"alice proposed #{pid}: fund the commons school with {FUNDING} from the treasury")
        while (await c.get(f"/v1/proposals/{pid}"))["status"] != "voting":
            await trio.sleep(0.5)
        for name in RESIDENTS:
            _check(await c.send(k[name], "proposal.vote", CastVote(pid, Choice.YES)), f"{name} votes")
            say(f"{name} voted yes on #{pid}")
        while (status := (await c.get(f"/v1/proposals/{pid}"))["status"]) not in (
            "executed", "execution_failed", "rejected", "vetoed", "no_quorum", "cancelled",
        ):
            await trio.sleep(1)
        carol = await c.get(f"/v1/accounts/{crypto.address_hex(k['carol'].public_key)}")
        say(f"proposal #{pid} {status}; carol's balance is now {carol['balance']}")

        doc = crypto.sha256(b"Charter of the commons school, version 1")
        _check(await c.send(k["bob"], "notary.notarise", Notarise(doc, "school charter")), "notarise")
        say(f"bob notarised document {doc.hex()[:16]}…")

        terms = crypto.sha256(b"We promise each other care and honesty.")
        union = CreateUnion(UnionKind.MARRIAGE, "Alice & Bob", terms, 100)
        _check(await c.send(k["alice"], "union.create", union, cosigners=(k["bob"],)), "marriage")
        say("alice and bob registered their marriage (co-signed by both)")
        say("demo complete")
    finally:
        await c.close()
