"""Every tx kind: its body struct, its handler, and whether it takes co-signatures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocol.governance import accounts, credentials, identity, notary, proposals, unions
from protocol.governance.context import Ctx
from protocol.wire import Struct


@dataclass(frozen=True, slots=True)
class Kind:
    body: type[Struct]
    handler: Callable[[Ctx, Any], None]
    cosigned: bool = False  # only these kinds may carry co-signatures


KINDS: dict[str, Kind] = {
    "transfer": Kind(accounts.Transfer, accounts.transfer),
    "identity.register": Kind(identity.RegisterIdentity, identity.register),
    "identity.rotate": Kind(identity.RotateKey, identity.rotate),
    "residency.grant": Kind(identity.GrantResidency, identity.grant_residency),
    "residency.suspend": Kind(identity.ResidencyAction, identity.suspend_residency),
    "residency.reinstate": Kind(identity.ResidencyAction, identity.reinstate_residency),
    "residency.revoke": Kind(identity.ResidencyAction, identity.revoke_residency),
    "proposal.submit": Kind(proposals.SubmitProposal, proposals.submit),
    "proposal.cancel": Kind(proposals.ProposalRef, proposals.cancel),
    "proposal.vote": Kind(proposals.CastVote, proposals.vote),
    "notary.notarise": Kind(notary.Notarise, notary.notarise),
    "union.create": Kind(unions.CreateUnion, unions.create, cosigned=True),
    "union.dissolve": Kind(unions.UnionRef, unions.dissolve, cosigned=True),
    "union.notice": Kind(unions.UnionRef, unions.give_notice),
    "credential.issue": Kind(credentials.IssueCredential, credentials.issue),
    "credential.revoke": Kind(credentials.RevokeCredential, credentials.revoke),
}
