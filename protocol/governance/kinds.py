"""Every tx kind: its body struct, its handler, whether it takes co-signatures, and
its admission check."""

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
    # Mempool admission (app.check_tx): every check the handler makes before its first
    # write (the funds of its first debit included); raises TxFailed like the handler.
    check: Callable[[Ctx, Any], object] | None = None


KINDS: dict[str, Kind] = {
    "transfer": Kind(accounts.Transfer, accounts.transfer, check=accounts.check_transfer),
    "identity.register": Kind(identity.RegisterIdentity, identity.register, check=identity.check_register),
    "identity.rotate": Kind(identity.RotateKey, identity.rotate, check=identity.check_rotate),
    "residency.grant": Kind(identity.GrantResidency, identity.grant_residency, check=identity.check_grant),
    "residency.suspend": Kind(identity.ResidencyAction, identity.suspend_residency, check=identity.check_suspend),
    "residency.reinstate": Kind(
        identity.ResidencyAction, identity.reinstate_residency, check=identity.check_reinstate
    ),
    "residency.revoke": Kind(identity.ResidencyAction, identity.revoke_residency, check=identity.check_revoke),
    "proposal.submit": Kind(proposals.SubmitProposal, proposals.submit, check=proposals.check_submit),
    "proposal.cancel": Kind(proposals.ProposalRef, proposals.cancel, check=proposals.check_cancel),
    "proposal.vote": Kind(proposals.CastVote, proposals.vote, check=proposals.check_vote),
    "notary.notarise": Kind(notary.Notarise, notary.notarise),  # needs nothing: it cannot fail
    "union.create": Kind(unions.CreateUnion, unions.create, cosigned=True, check=unions.check_create),
    "union.dissolve": Kind(unions.UnionRef, unions.dissolve, cosigned=True, check=unions.check_dissolve),
    "union.notice": Kind(unions.UnionRef, unions.give_notice, check=unions.check_notice),
    "credential.issue": Kind(credentials.IssueCredential, credentials.issue, check=credentials.check_issue),
    "credential.revoke": Kind(credentials.RevokeCredential, credentials.revoke, check=credentials.check_revoke),
}
