"""`ekklesia tx …`: build, sign and submit one governance transaction.

Every command signs with the keystore key ``--from NAME`` (``--keys-dir DIR``, else
``<home>/keys``; passphrase from ``--passphrase-file``, ``$EKKLESIA_PASSPHRASE`` or a
prompt), takes the chain id and the next nonce from the node (``--node URL`` /
``$EKKLESIA_NODE``), submits, and by default waits for the block (``--wait commit``).
It prints the result — hash, status, height, result code, info — and exits 1 when
the node refused the tx, it failed at execution, or it was not committed in time.

Bodies are the structs of `protocol.governance.kinds` (docs/governance.md); each is
checked against its wire bounds before signing, so an over-long memo is a usage
error (exit 2), not a rejected tx.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from node.cli import (
    _emit_json,
    _existing_passphrase,
    _Group,
    _home_option,
    _json_option,
    _passphrase_file_option,
    main,
)
from node.cli_query import (
    call,
    file_sha256,
    keys_dir_option,
    keystore,
    kv,
    need_hex,
    node_option,
    resolve_address,
    resolve_identity,
    resolve_pubkey,
)
from node.client import MAX_WAIT_S, Client, NotFound
from node.keys import Keystore
from protocol import crypto
from protocol.errors import DecodeError
from protocol.governance import actions
from protocol.governance.accounts import Transfer
from protocol.governance.actions import (
    AccreditIssuer,
    ActionType,
    AmendConstitution,
    ChangeParams,
    ChangeValidators,
    DissolveUnion,
    EnactLaw,
    IdentityRef,
    ResidencyRuling,
    TreasurySpend,
    ValidatorUpdate,
)
from protocol.governance.constitution import ArticleChange
from protocol.governance.credentials import IssueCredential, RevokeCredential
from protocol.governance.identity import (
    GrantResidency,
    RegisterIdentity,
    Residency,
    ResidencyAction,
    RotateKey,
    derive_id,
    key_digest,
)
from protocol.governance.kinds import KINDS
from protocol.governance.notary import Notarise
from protocol.governance.params import Electorate, Ratio, Track, TrackParams
from protocol.governance.proposals import CastVote, Choice, ProposalRef, SubmitProposal
from protocol.governance.unions import CreateUnion, UnionKind, UnionRef
from protocol.limits import MAX_TX_BYTES
from protocol.types import Tx
from protocol.wire import Struct

F = TypeVar("F", bound=Callable[..., Any])


class _U64(click.ParamType):
    """An unsigned 64-bit integer (help shows INTEGER, not the 20-digit range)."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            n = value
        else:
            text = str(value).strip()
            if not text.isdigit():
                self.fail(f"{value!r} is not a non-negative integer", param, ctx)
            n = int(text)
        if not 0 <= n < 2**64:
            self.fail(f"{value} is out of range (0 … 2^64-1)", param, ctx)
        return n


U64 = _U64()
JSON = dict[str, Any]


# ----------------------------------------------------------------------------- common options


@dataclass(frozen=True)
class TxOptions:
    sender: str
    keys_dir: Path | None
    home: Path | None
    passphrase_file: Path | None
    node_url: str
    wait: str
    timeout: float
    dry_run: bool
    as_json: bool

    @staticmethod
    def pop(kw: dict[str, Any]) -> TxOptions:
        names = [f.name for f in dataclasses.fields(TxOptions)]
        return TxOptions(**{n: kw.pop(n) for n in names})

    def keystore(self) -> Keystore:
        return keystore(self.keys_dir, self.home)


def tx_options(f: F) -> F:
    """The options every `tx` command shares (collected with `TxOptions.pop`)."""
    decorators = [
        click.option("--from", "sender", required=True, metavar="NAME", help="Sign with this keystore key."),
        keys_dir_option,
        _home_option,
        _passphrase_file_option,
        node_option,
        click.option("--wait", type=click.Choice(["commit", "none"]), default="commit", show_default=True,
                     help="commit: until the tx is in a block; none: after mempool admission."),
        click.option("--timeout", type=click.FloatRange(0, MAX_WAIT_S, min_open=True), default=30.0,
                     show_default=True, metavar="SECONDS", help="How long --wait commit waits (at most 60)."),
        click.option("--dry-run", is_flag=True, help="Sign and print the tx, do not submit it."),
        _json_option,
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def _load_key(ks: Keystore, name: str, passphrase_file: Path | None) -> crypto.Keypair:
    info = ks.show(name)
    passphrase = _existing_passphrase(passphrase_file, name) if info.encrypted else None
    return ks.keypair(name, passphrase)


def _checked(struct: Struct, what: str) -> bytes:
    """The struct's encoding, after checking every field's wire bounds (usage error if not)."""
    try:
        raw = struct.encode()
        type(struct).decode(raw)
    except (DecodeError, ValueError, OverflowError, TypeError) as exc:
        raise click.UsageError(f"invalid {what}: {exc}") from None
    return raw


Build = Callable[[Client], Awaitable[Struct]]
After = Callable[[Client, Tx, JSON], Awaitable[JSON]]


def send_tx(opts: TxOptions, kind: str, build: Build, *, cosigners: tuple[str, ...] = (),
            after: After | None = None) -> None:
    """Load the keys, build the body (it may query the node), sign, submit, report."""
    if KINDS[kind].cosigned is False and cosigners:
        raise click.UsageError(f"{kind} takes no co-signers")
    if opts.sender in cosigners or len(set(cosigners)) != len(cosigners):
        raise click.UsageError("each co-signer must be named once and differ from --from")
    ks = opts.keystore()
    key = _load_key(ks, opts.sender, opts.passphrase_file)
    cos = tuple(_load_key(ks, n, opts.passphrase_file) for n in cosigners)

    async def go(c: Client) -> JSON:
        body = _checked(await build(c), f"{kind} body")
        tx = await c.build(key, kind, body, cosigners=cos)
        encoded = tx.encode()
        if len(encoded) > MAX_TX_BYTES:
            raise click.UsageError(f"the tx is {len(encoded)} bytes; at most {MAX_TX_BYTES} are allowed")
        if opts.dry_run:
            return _dry_run_json(tx, encoded)
        result = await c.submit(tx, wait=opts.wait == "commit", timeout=opts.timeout, raise_rejected=False)
        if after is not None and result.get("status") == "committed" and result.get("code") == 0:
            result.update(await after(c, tx, result))
        return result

    _report(opts, call(opts.node_url, go))


def _dry_run_json(tx: Tx, encoded: bytes) -> JSON:
    from node.api.views import decoded_body, to_json

    body = decoded_body(tx)
    if tx.kind == "proposal.submit" and isinstance(body, dict):
        proposal = SubmitProposal.decode(tx.body)
        body["action_decoded"] = to_json(actions.decode(proposal.action_type, proposal.action))
    return {
        "dry_run": True,
        "hash": tx.hash.hex(),
        "chain_id": tx.chain_id,
        "sender": tx.sender.hex(),
        "sender_address": crypto.address(tx.sender).hex(),
        "nonce": tx.nonce,
        "kind": tx.kind,
        "body_decoded": body,
        "cosigners": [cs.signer.hex() for cs in tx.cosignatures],
        "tx": base64.b64encode(encoded).decode(),
    }


_STATUS_KEYS = ("hash", "status", "reason", "height", "index", "code", "code_name", "info", "error")


def _report(opts: TxOptions, r: JSON) -> None:
    ctx = click.get_current_context()
    if r.get("dry_run"):
        if opts.as_json:
            _emit_json(r)
        else:
            click.echo("\n".join(kv(r, skip=("dry_run",))))
            click.echo("not submitted (--dry-run); POST it as {\"tx\": \"<base64 above>\"} to /v1/txs", err=True)
        return
    status = r.get("status")
    if opts.as_json:
        _emit_json(r)
    else:
        shown: JSON = {"hash": r.get("hash"), "status": status}
        if status == "rejected":
            shown["reason"] = r.get("reason")
        if status == "committed":
            shown.update(height=r.get("height"), index=r.get("index"), result=f"{r.get('code_name')} ({r.get('code')})")
            if r.get("info"):
                shown["info"] = r.get("info")
        shown.update({k: v for k, v in r.items() if k not in _STATUS_KEYS})
        click.echo("\n".join(kv(shown)))
    if status == "committed" and r.get("code") == 0:
        return
    if status == "committed":
        click.echo(f"error: the tx failed at execution: {r.get('code_name')}: {r.get('info') or '-'}", err=True)
    elif status == "rejected":
        click.echo(f"error: the node refused the tx: {r.get('reason') or '-'}", err=True)
    elif opts.wait == "commit":
        click.echo(f"error: not committed within {opts.timeout:g} s (still pending); "
                   f"check later with: ekklesia query tx {r.get('hash')}", err=True)
    else:
        if not opts.as_json:
            click.echo(f"submitted; follow it with: ekklesia query tx {r.get('hash')}", err=True)
        return
    ctx.exit(1)


def _const(body: Struct) -> Build:
    async def build(_: Client) -> Struct:
        return body

    return build


def _one_of(what: str, **given: Any) -> None:
    present = [k for k, v in given.items() if v not in (None, ())]
    if len(present) != 1:
        names = " / ".join("--" + k.replace("_", "-") for k in given)
        raise click.UsageError(f"{what}: give exactly one of {names}")


def _digest_of_next_key(ks: Keystore, next_key: str | None, next_pubkey: str | None,
                        next_key_digest: str | None) -> bytes:
    _one_of("the next key", next_key=next_key, next_pubkey=next_pubkey, next_key_digest=next_key_digest)
    if next_key_digest is not None:
        return need_hex(next_key_digest, 32, "--next-key-digest")
    if next_pubkey is not None:
        return key_digest(need_hex(next_pubkey, 32, "--next-pubkey"))
    assert next_key is not None
    return key_digest(resolve_pubkey(next_key, ks, "--next-key"))


def _next_key_options(f: F) -> F:
    for d in reversed([
        click.option("--next-key", metavar="NAME", help="Commit to this keystore key as the next key."),
        click.option("--next-pubkey", metavar="HEX", help="Commit to this public key as the next key."),
        click.option("--next-key-digest", metavar="HEX", help="Commit to this next-key digest (docs/governance.md)."),
    ]):
        f = d(f)
    return f


def _hash_input(what: str, file: Path | None, hash_hex: str | None) -> bytes:
    _one_of(what, **{f"{what}_file": file, f"{what}_hash": hash_hex})
    if hash_hex is not None:
        return need_hex(hash_hex, 32, f"--{what}-hash")
    assert file is not None
    return file_sha256(file)


async def _current_height(c: Client) -> int:
    return int((await c.get("/v1/status"))["height"])


async def _own_identity(c: Client, pubkey: bytes) -> str | None:
    try:
        return str((await c.get(f"/v1/identities/by-key/{pubkey.hex()}"))["id"])
    except NotFound:
        return None


# ----------------------------------------------------------------------------- the group

TX_EPILOG = """\b
Examples:
  ekklesia tx transfer bob 100 --from alice --home testnet
  ekklesia tx identity register --from alice --next-key alice-next
  ekklesia tx residency grant alice --duration 100000 --from registrar
  ekklesia tx proposal submit law --title "Trees" --text "Plant trees." --from alice
  ekklesia tx proposal vote 1 yes --from alice
  ekklesia tx notarise ./deed.pdf --metadata "deed" --from bob
  ekklesia tx union create --title "A & B" --terms-file vows.txt --from alice --cosigner bob
\b
Every command: --from NAME (keystore key), --keys-dir DIR or --home DIR (keystore at
<home>/keys), --passphrase-file FILE or $EKKLESIA_PASSPHRASE (else a prompt),
--node URL or $EKKLESIA_NODE, --wait commit|none, --timeout SECONDS, --dry-run, --json.
Identities are given as an id (64 hex) or a key name (its current key); accounts
as an address (40 hex), a public key (64 hex) or a key name.
\b
Exit status: 0 committed (or admitted, with --wait none); 1 refused by the node,
failed at execution (code != ok), not committed within --timeout, or an error;
2 bad usage.
"""


@main.group(cls=_Group, epilog=TX_EPILOG)
def tx() -> None:
    """Sign and submit governance transactions."""


# -- transfer


@tx.command("transfer", epilog="\b\nExamples:\n  ekklesia tx transfer bob 100 --from alice --home testnet\n"
            "  ekklesia tx transfer 02ea…cf19 5000 --memo rent --from alice --json")
@click.argument("to")
@click.argument("amount", type=click.IntRange(1, 2**64 - 1))
@click.option("--memo", default="", help="Up to 128 bytes, public.")
@tx_options
def tx_transfer(to: str, amount: int, memo: str, **kw: Any) -> None:
    """Send AMOUNT tokens to TO (address, public key or key name)."""
    opts = TxOptions.pop(kw)
    recipient = resolve_address(to, opts.keystore(), "TO")
    send_tx(opts, "transfer", _const(Transfer(recipient, amount, memo)))


# -- identities and residency


@tx.group("identity", cls=_Group, epilog="\b\nExamples:\n  ekklesia tx identity register --from alice --next-key "
          "alice-next\n  ekklesia tx identity rotate alice --from alice-next --next-key alice-next2")
def tx_identity() -> None:
    """Register an identity, rotate its key."""


@tx_identity.command("register", epilog="\b\nExamples:\n  ekklesia keys add alice-next --home testnet\n"
                     "  ekklesia tx identity register --from alice --next-key alice-next --home testnet")
@_next_key_options
@tx_options
def tx_identity_register(next_key: str | None, next_pubkey: str | None, next_key_digest: str | None,
                         **kw: Any) -> None:
    """Create an identity whose key is --from and which commits to its next key.

    Keep the next key safe and apart: it alone can rotate the identity's key later
    (even if the current key is stolen or lost)."""
    opts = TxOptions.pop(kw)
    digest = _digest_of_next_key(opts.keystore(), next_key, next_pubkey, next_key_digest)

    async def after(c: Client, t: Tx, r: JSON) -> JSON:
        return {"identity": derive_id(t.sender, digest).hex()}

    send_tx(opts, "identity.register", _const(RegisterIdentity(digest)), after=after)


@tx_identity.command("rotate", epilog="\b\nExamples:\n"
                     "  ekklesia tx identity rotate alice --from alice-next --next-key alice-next2 --home testnet\n"
                     "  ekklesia tx identity rotate d0cf…7192 --from new --next-pubkey 9cbd…fc1a")
@click.argument("identity")
@_next_key_options
@tx_options
def tx_identity_rotate(identity: str, next_key: str | None, next_pubkey: str | None, next_key_digest: str | None,
                       **kw: Any) -> None:
    """Make --from (the committed next key) the current key of IDENTITY.

    IDENTITY is its id or the key name of its current key. The old key's account is
    retired and its tokens move to --from's. Commit to a new next key."""
    opts = TxOptions.pop(kw)
    ks = opts.keystore()
    digest = _digest_of_next_key(ks, next_key, next_pubkey, next_key_digest)

    async def build(c: Client) -> Struct:
        return RotateKey(await resolve_identity(c, identity, ks, "IDENTITY"), digest)

    send_tx(opts, "identity.rotate", build)


@tx.group("residency", cls=_Group, epilog="\b\nExamples:\n  ekklesia tx residency grant alice --duration 100000 "
          "--from registrar\n  ekklesia tx residency suspend alice --reason '…' --from registrar")
def tx_residency() -> None:
    """Grant, suspend, reinstate or revoke e-residency (registrars)."""


@tx_residency.command("grant", epilog="\b\nExamples:\n"
                      "  ekklesia tx residency grant alice --duration 100000 --from registrar --home testnet\n"
                      "  ekklesia tx residency grant d0cf…7192 --expires-at 5000000 --from registrar")
@click.argument("identity")
@click.option("--expires-at", type=U64, help="The last height at which the residency is active.")
@click.option("--duration", type=click.IntRange(1, 2**63), help="Active for this many heights from now.")
@tx_options
def tx_residency_grant(identity: str, expires_at: int | None, duration: int | None, **kw: Any) -> None:
    """Grant (or renew) IDENTITY's e-residency; --from must be an active registrar."""
    opts = TxOptions.pop(kw)
    _one_of("the expiry", expires_at=expires_at, duration=duration)
    ks = opts.keystore()

    async def build(c: Client) -> Struct:
        iid = await resolve_identity(c, identity, ks, "IDENTITY")
        until = expires_at if expires_at is not None else await _current_height(c) + (duration or 0)
        return GrantResidency(iid, until)

    send_tx(opts, "residency.grant", build)


def _residency_action(kind: str, verb: str) -> None:
    name = kind.split(".")[1]

    @tx_residency.command(name, help=f"{verb} IDENTITY's e-residency; --from must be an active registrar.",
                          epilog=f"\b\nExamples:\n  ekklesia tx residency {name} alice --reason '…' "
                          "--from registrar --home testnet")
    @click.argument("identity")
    @click.option("--reason", default="", help="Up to 256 bytes, public.")
    @tx_options
    def command(identity: str, reason: str, **kw: Any) -> None:
        opts = TxOptions.pop(kw)
        ks = opts.keystore()

        async def build(c: Client) -> Struct:
            return ResidencyAction(await resolve_identity(c, identity, ks, "IDENTITY"), reason)

        send_tx(opts, kind, build)


_residency_action("residency.suspend", "Suspend (reversibly)")
_residency_action("residency.reinstate", "Reinstate a suspended")
_residency_action("residency.revoke", "Revoke (for good)")


# -- proposals


@tx.group("proposal", cls=_Group, epilog="\b\nExamples:\n  ekklesia tx proposal submit law --title Trees --text "
          "'Plant trees.' --from alice\n  ekklesia tx proposal vote 1 yes --from bob\n"
          "  ekklesia tx proposal cancel 1 --from alice")
def tx_proposal() -> None:
    """Submit, vote on or cancel proposals."""


SUBMIT_EPILOG = """\b
Examples:
  ekklesia tx proposal submit treasury-spend --to carol --amount 250000 --purpose school \\
      --title "Fund the school" --from alice
  ekklesia tx proposal submit law --title "Trees" --text-file law.txt --from alice
  ekklesia tx proposal submit amend-constitution --article 5="New text" --repeal 3 --title … --from alice
  ekklesia tx proposal submit change-params --set fee=1 --set law.quorum=1/3 --title … --from alice
  ekklesia tx proposal submit appoint-registrar bob --title … --from alice
  ekklesia tx proposal submit change-validators --validator 2a20…220d=10 --title … --from alice
  ekklesia tx proposal submit residency-ruling bob --to suspend --reason … --title … --from alice
  ekklesia tx proposal submit dissolve-union 3 --reason … --title … --from alice
\b
Every action: --title (required), --summary, --deposit (default: the track's minimum
deposit, from the node). The track follows from the action (docs/governance.md).
"""


@tx_proposal.group("submit", cls=_Group, epilog=SUBMIT_EPILOG)
def tx_proposal_submit() -> None:
    """Submit a proposal: choose its action."""


def _proposal_options(f: F) -> F:
    for d in reversed([
        click.option("--title", required=True, help="Up to 200 bytes."),
        click.option("--summary", default="", help="Up to 2000 bytes."),
        click.option("--deposit", type=U64, help="Tokens put in escrow.  [default: the track's minimum]"),
    ]):
        f = d(f)
    return f


def submit_proposal(opts: TxOptions, title: str, summary: str, deposit: int | None, action_type: ActionType,
                    make_action: Build) -> None:
    async def build(c: Client) -> Struct:
        action = await make_action(c)
        raw = _checked(action, f"{action_type.name.lower()} action")
        amount = deposit
        if amount is None:
            track = actions.track_of(action_type, action).name.lower()
            amount = int((await c.get("/v1/params"))["tracks"][track]["min_deposit"])
        return SubmitProposal(title, summary, amount, action_type, raw)

    async def after(c: Client, t: Tx, r: JSON) -> JSON:
        pid = await _find_proposal(c, t.sender.hex(), int(r["height"]), title)
        return {"proposal_id": pid} if pid is not None else {}

    send_tx(opts, "proposal.submit", build, after=after)


async def _find_proposal(c: Client, proposer: str, height: int, title: str) -> int | None:
    first = await c.get("/v1/proposals", {"limit": 1})
    total = int(first["total"])
    page = await c.get("/v1/proposals", {"limit": 200, "offset": max(0, total - 200)})
    ids = [p["id"] for p in page["proposals"]
           if p["proposer"] == proposer and p["submitted_height"] == height and p["title"] == title]
    return max(ids) if ids else None


def _action_command(name: str, action_type: ActionType, help_text: str) -> Callable[[F], F]:
    """Register `tx proposal submit NAME`. The decorated function takes the keystore and
    its own click parameters, and returns the action's builder; the proposal and tx
    options are added here."""

    def deco(f: F) -> F:
        own_params = list(reversed(getattr(f, "__click_params__", [])))
        own_names = [p.name for p in own_params]

        @tx_proposal_submit.command(name, help=help_text, epilog=SUBMIT_EPILOG)
        @_proposal_options
        @tx_options
        def command(**kw: Any) -> None:
            own = {n: kw.pop(n) for n in own_names if n is not None}
            title, summary, deposit = kw.pop("title"), kw.pop("summary"), kw.pop("deposit")
            opts = TxOptions.pop(kw)
            submit_proposal(opts, title, summary, deposit, action_type, f(opts.keystore(), **own))

        command.params[0:0] = own_params
        return f

    return deco


@_action_command("treasury-spend", ActionType.TREASURY_SPEND, "Pay tokens from the treasury (treasury track).")
@click.option("--to", "recipient", required=True, help="Recipient: address, public key or key name.")
@click.option("--amount", type=click.IntRange(1, 2**64 - 1), required=True)
@click.option("--purpose", default="", help="Up to 256 bytes.")
def _treasury_spend(ks: Keystore, recipient: str, amount: int, purpose: str) -> Build:
    to = resolve_address(recipient, ks, "--to")
    return _const(TreasurySpend(to, amount, purpose))


@_action_command("law", ActionType.ENACT_LAW, "Enact a law: its text is recorded when the vote passes (law track).")
@click.option("--text", help="The law's text (up to 32 KiB).")
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the law's text from FILE (UTF-8).")
def _law(ks: Keystore, text: str | None, text_file: Path | None) -> Build:
    _one_of("the law's text", text=text, text_file=text_file)
    body = text if text is not None else text_file.read_text(encoding="utf-8")  # type: ignore[union-attr]
    return _const(EnactLaw(body))


def _article_number(text: str, what: str) -> int:
    if not text.isdigit() or not 1 <= int(text) < 2**32:
        raise click.BadParameter(f"{what}: article number must be 1 … 2^32-1, got {text!r}")
    return int(text)


@_action_command("amend-constitution", ActionType.AMEND_CONSTITUTION,
                 "Amend the constitution: set or repeal articles (constitutional track).")
@click.option("--article", "articles", multiple=True, metavar="N=TEXT", help="Set article N to TEXT (repeatable).")
@click.option("--article-file", "article_files", multiple=True, metavar="N=FILE",
              help="Set article N to the text of FILE (repeatable).")
@click.option("--repeal", "repeals", multiple=True, metavar="N", help="Repeal article N (repeatable).")
@click.option("--base-version", type=click.IntRange(0, 2**32 - 1),
              help="The version amended (the amendment fails if it is no longer current).  [default: current]")
def _amend(ks: Keystore, articles: tuple[str, ...], article_files: tuple[str, ...], repeals: tuple[str, ...],
           base_version: int | None) -> Build:
    changes: dict[int, str | None] = {}

    def put(n: int, text: str | None) -> None:
        if n in changes:
            raise click.BadParameter(f"article {n} is changed twice")
        changes[n] = text

    for spec in articles:
        n, sep, text = spec.partition("=")
        if not sep:
            raise click.BadParameter(f"--article expects N=TEXT, got {spec!r}")
        put(_article_number(n, "--article"), text)
    for spec in article_files:
        n, sep, file = spec.partition("=")
        if not sep:
            raise click.BadParameter(f"--article-file expects N=FILE, got {spec!r}")
        put(_article_number(n, "--article-file"), Path(file).read_text(encoding="utf-8"))
    for n in repeals:
        put(_article_number(n, "--repeal"), None)
    if not changes:
        raise click.UsageError("no change: give --article, --article-file or --repeal")
    ordered = tuple(ArticleChange(n, changes[n]) for n in sorted(changes))

    async def build(c: Client) -> Struct:
        base = base_version if base_version is not None else int((await c.get("/v1/constitution"))["version"])
        return AmendConstitution(base, ordered)

    return build


_TOP_PARAMS = {"fee": "int", "cancel_burn": "ratio", "min_notice_period": "int", "max_evidence_age": "int",
               "evidence_penalty": "ratio"}
_TRACK_FIELDS = {"min_deposit": "int", "voting_delay": "int", "voting_period": "int", "quorum": "ratio",
                 "threshold": "ratio", "veto": "ratio", "timelock": "int", "electorate": "electorate",
                 "allow_vote_change": "bool"}


def _param_value(kind: str, text: str, key: str) -> Any:
    try:
        if kind == "int":
            if not text.isdigit():
                raise ValueError("expected a non-negative integer")
            return int(text)
        if kind == "ratio":
            return Ratio.parse(text)
        if kind == "electorate":
            return Electorate[text.upper()]
        if kind == "bool":
            if text.lower() not in ("true", "false", "yes", "no", "1", "0"):
                raise ValueError("expected true or false")
            return text.lower() in ("true", "yes", "1")
    except (ValueError, KeyError) as exc:
        raise click.BadParameter(f"--set {key}={text}: {exc}") from None
    raise AssertionError(kind)


def _track_params_from_json(name: str, d: dict[str, Any]) -> TrackParams:
    return TrackParams(
        track=Track[name.upper()], min_deposit=d["min_deposit"], voting_delay=d["voting_delay"],
        voting_period=d["voting_period"], quorum=Ratio.parse(d["quorum"]), threshold=Ratio.parse(d["threshold"]),
        veto=Ratio.parse(d["veto"]), timelock=d["timelock"], electorate=Electorate[d["electorate"].upper()],
        allow_vote_change=bool(d["allow_vote_change"]),
    )


CHANGE_PARAMS_HELP = (
    "Change governance parameters (parameter track; constitutional if it touches that track). "
    "KEY is fee, cancel_burn, min_notice_period, max_evidence_age, evidence_penalty, or TRACK.FIELD with TRACK "
    "one of " + ", ".join(t.name.lower() for t in Track) + " and FIELD one of " + ", ".join(_TRACK_FIELDS) +
    " (ratios as 2/3, electorate residents|tokens). A changed track's other fields keep their current values.")


@_action_command("change-params", ActionType.CHANGE_PARAMS, CHANGE_PARAMS_HELP)
@click.option("--set", "settings", multiple=True, required=True, metavar="KEY=VALUE",
              help="A parameter to change (repeatable): fee=1, law.quorum=1/3, treasury.voting_period=1000.")
def _change_params(ks: Keystore, settings: tuple[str, ...]) -> Build:
    top: dict[str, Any] = {}
    tracks: dict[str, dict[str, Any]] = {}
    for spec in settings:
        key, sep, value = spec.partition("=")
        if not sep:
            raise click.BadParameter(f"--set expects KEY=VALUE, got {spec!r}")
        if key in _TOP_PARAMS:
            top[key] = _param_value(_TOP_PARAMS[key], value, key)
            continue
        track, dot, field = key.partition(".")
        if not dot or track.upper() not in Track.__members__ or field not in _TRACK_FIELDS:
            raise click.BadParameter(f"--set: unknown parameter {key!r} (see --help)")
        tracks.setdefault(track, {})[field] = _param_value(_TRACK_FIELDS[field], value, key)

    async def build(c: Client) -> Struct:
        current = (await c.get("/v1/params"))["tracks"] if tracks else {}
        changed = [dataclasses.replace(_track_params_from_json(name, current[name]), **fields)
                   for name, fields in tracks.items()]
        changed.sort(key=lambda t: t.track)
        return ChangeParams(fee=top.get("fee"), cancel_burn=top.get("cancel_burn"),
                            min_notice_period=top.get("min_notice_period"),
                            max_evidence_age=top.get("max_evidence_age"),
                            evidence_penalty=top.get("evidence_penalty"), tracks=tuple(changed))

    return build


def _identity_action(name: str, action_type: ActionType, help_text: str) -> None:
    @_action_command(name, action_type, help_text + " IDENTITY: an id or a key name.")
    @click.argument("identity")
    def _make(ks: Keystore, identity: str) -> Build:
        async def build(c: Client) -> Struct:
            return IdentityRef(await resolve_identity(c, identity, ks, "IDENTITY"))

        return build


_identity_action("appoint-registrar", ActionType.APPOINT_REGISTRAR, "Appoint a registrar (registrar track).")
_identity_action("remove-registrar", ActionType.REMOVE_REGISTRAR, "Remove a registrar (registrar track).")
_identity_action("revoke-issuer", ActionType.REVOKE_ISSUER, "Revoke an issuer's accreditation (issuer track).")


@_action_command("accredit-issuer", ActionType.ACCREDIT_ISSUER,
                 "Accredit IDENTITY (an id or a key name) as a credential issuer (issuer track).")
@click.argument("identity")
@click.option("--name", required=True, help="The issuer's public name (up to 128 bytes).")
def _accredit(ks: Keystore, identity: str, name: str) -> Build:
    async def build(c: Client) -> Struct:
        return AccreditIssuer(await resolve_identity(c, identity, ks, "IDENTITY"), name)

    return build


@_action_command("change-validators", ActionType.CHANGE_VALIDATORS,
                 "Change validators' voting power; power 0 removes one (validator track).")
@click.option("--validator", "updates", multiple=True, required=True, metavar="PUBKEY=POWER",
              help="A validator's consensus public key (ekklesia show-validator) and new power (repeatable).")
def _change_validators(ks: Keystore, updates: tuple[str, ...]) -> Build:
    powers: dict[bytes, int] = {}
    for spec in updates:
        who, sep, power = spec.rpartition("=")
        if not sep or not power.isdigit():
            raise click.BadParameter(f"--validator expects PUBKEY=POWER, got {spec!r}")
        pk = resolve_pubkey(who, ks, "--validator")
        if pk in powers:
            raise click.BadParameter(f"validator {pk.hex()} is given twice")
        powers[pk] = int(power)
    return _const(ChangeValidators(tuple(ValidatorUpdate(pk, p) for pk, p in sorted(powers.items()))))


RULINGS = {"suspend": Residency.SUSPENDED, "reinstate": Residency.ACTIVE, "revoke": Residency.REVOKED}


@_action_command("residency-ruling", ActionType.RESIDENCY_RULING,
                 "Suspend, reinstate or revoke IDENTITY's residency by vote (ruling track).")
@click.argument("identity")
@click.option("--to", "to", type=click.Choice(list(RULINGS)), required=True)
@click.option("--reason", default="", help="Up to 256 bytes.")
def _ruling(ks: Keystore, identity: str, to: str, reason: str) -> Build:
    async def build(c: Client) -> Struct:
        return ResidencyRuling(await resolve_identity(c, identity, ks, "IDENTITY"), RULINGS[to], reason)

    return build


@_action_command("dissolve-union", ActionType.DISSOLVE_UNION, "Dissolve a marriage or contract by vote (ruling track).")
@click.argument("union_id", type=U64)
@click.option("--reason", default="", help="Up to 256 bytes.")
def _dissolve_union(ks: Keystore, union_id: int, reason: str) -> Build:
    return _const(DissolveUnion(union_id, reason))


CHOICES = {c.name.lower(): c for c in Choice}


@tx_proposal.command("vote", epilog="\b\nExamples:\n  ekklesia tx proposal vote 1 yes --from alice --home testnet\n"
                     "  ekklesia tx proposal vote 1 veto --from bob --json")
@click.argument("proposal_id", type=U64)
@click.argument("choice", type=click.Choice(list(CHOICES), case_sensitive=False))
@tx_options
def tx_proposal_vote(proposal_id: int, choice: str, **kw: Any) -> None:
    """Vote on a proposal in its voting period: yes, no, abstain or veto."""
    send_tx(TxOptions.pop(kw), "proposal.vote", _const(CastVote(proposal_id, CHOICES[choice.lower()])))


@tx_proposal.command("cancel", epilog="\b\nExamples:\n  ekklesia tx proposal cancel 1 --from alice --home testnet")
@click.argument("proposal_id", type=U64)
@tx_options
def tx_proposal_cancel(proposal_id: int, **kw: Any) -> None:
    """Cancel your proposal before voting starts (part of the deposit is burned)."""
    send_tx(TxOptions.pop(kw), "proposal.cancel", _const(ProposalRef(proposal_id)))


# -- notary


@tx.command("notarise", epilog="\b\nExamples:\n  ekklesia tx notarise ./deed.pdf --metadata 'deed of the well' "
            "--from bob --home testnet\n  ekklesia tx notarise --hash ae9e…8f95 --from bob\n"
            "  ekklesia query notary ./deed.pdf --verify        then check its proof")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("--hash", "hash_hex", metavar="HEX", help="The document's SHA-256 (instead of FILE).")
@click.option("--metadata", default="", help="Up to 256 bytes, public.")
@tx_options
def tx_notarise(file: Path | None, hash_hex: str | None, metadata: str, **kw: Any) -> None:
    """Record on chain that a document (its SHA-256) existed. Only the hash leaves this machine."""
    opts = TxOptions.pop(kw)
    _one_of("the document", file=file, hash=hash_hex)
    doc = need_hex(hash_hex, 32, "--hash") if hash_hex is not None else file_sha256(file)  # type: ignore[arg-type]

    async def after(c: Client, t: Tx, r: JSON) -> JSON:
        return {"doc_hash": doc.hex()}

    send_tx(opts, "notary.notarise", _const(Notarise(doc, metadata)), after=after)


# -- unions


@tx.group("union", cls=_Group, epilog="\b\nExamples:\n  ekklesia tx union create --title 'A & B' --terms-file "
          "vows.txt --from alice --cosigner bob\n  ekklesia tx union notice 1 --from alice")
def tx_union() -> None:
    """Marriages and contracts: create, dissolve together, give notice."""


def _cosigner_option(f: F) -> F:
    return click.option("--cosigner", "cosigners", multiple=True, metavar="NAME",
                        help="Another party's keystore key (repeatable): every party signs.")(f)


@tx_union.command("create", epilog="\b\nExamples:\n  ekklesia tx union create --title 'Alice & Bob' --terms-file "
                  "vows.txt --from alice --cosigner bob --home testnet\n  ekklesia tx union create --kind contract "
                  "--title Coop --terms-hash 8213…e192 --notice-period 500 --from a --cosigner b --cosigner c")
@click.option("--kind", "union_kind", type=click.Choice(["marriage", "contract"]), default="marriage",
              show_default=True)
@click.option("--title", required=True, help="Up to 128 bytes, public.")
@click.option("--terms-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The terms document (only its SHA-256 is recorded).")
@click.option("--terms-hash", metavar="HEX", help="The terms' SHA-256 (instead of --terms-file).")
@click.option("--notice-period", type=click.IntRange(0, 10**7),
              help="Heights between a party's notice and dissolution.  [default: the minimum, from the node]")
@_cosigner_option
@tx_options
def tx_union_create(union_kind: str, title: str, terms_file: Path | None, terms_hash: str | None,
                    notice_period: int | None, cosigners: tuple[str, ...], **kw: Any) -> None:
    """Register a marriage (2 parties) or contract (2–17) between active residents."""
    opts = TxOptions.pop(kw)
    if not cosigners:
        raise click.UsageError("a union needs the other parties: give --cosigner NAME for each")
    terms = _hash_input("terms", terms_file, terms_hash)

    async def build(c: Client) -> Struct:
        period = notice_period if notice_period is not None else \
            int((await c.get("/v1/params"))["min_notice_period"])
        return CreateUnion(UnionKind[union_kind.upper()], title, terms, period)

    async def after(c: Client, t: Tx, r: JSON) -> JSON:
        ident = await _own_identity(c, t.sender)
        if ident is None:
            return {}
        unions = (await c.get(f"/v1/identities/{ident}/unions"))["unions"]
        ids = [u["id"] for u in unions if u["history"] and u["history"][0].get("tx_hash") == r["hash"]]
        return {"union_id": ids[0]} if ids else {}

    send_tx(opts, "union.create", build, cosigners=cosigners, after=after)


@tx_union.command("dissolve", epilog="\b\nExamples:\n"
                  "  ekklesia tx union dissolve 1 --from alice --cosigner bob --home testnet")
@click.argument("union_id", type=U64)
@_cosigner_option
@tx_options
def tx_union_dissolve(union_id: int, cosigners: tuple[str, ...], **kw: Any) -> None:
    """Dissolve a union by mutual consent: signed by exactly all its parties."""
    opts = TxOptions.pop(kw)
    if not cosigners:
        raise click.UsageError("dissolving needs every other party: give --cosigner NAME for each")
    send_tx(opts, "union.dissolve", _const(UnionRef(union_id)), cosigners=cosigners)


@tx_union.command("notice", epilog="\b\nExamples:\n  ekklesia tx union notice 1 --from alice --home testnet")
@click.argument("union_id", type=U64)
@tx_options
def tx_union_notice(union_id: int, **kw: Any) -> None:
    """Give notice: the union dissolves after its notice period (one party suffices)."""
    send_tx(TxOptions.pop(kw), "union.notice", _const(UnionRef(union_id)))


# -- credentials


@tx.group("credential", cls=_Group, epilog="\b\nExamples:\n  ekklesia tx credential issue alice --schema degree/v1 "
          "--claims-file diploma.json --from university\n  ekklesia tx credential revoke 7 --from university")
def tx_credential() -> None:
    """Issue or revoke credentials (accredited issuers)."""


@tx_credential.command("issue", epilog="\b\nExamples:\n  ekklesia tx credential issue alice --schema degree/v1 "
                       "--claims-file diploma.json --from university --home testnet\n"
                       "  ekklesia tx credential issue d0cf…7192 --schema member/v1 --claims-hash 3223…bdc0 "
                       "--expires-at 900000 --from university")
@click.argument("subject")
@click.option("--schema", required=True, help="The credential's schema name (up to 64 bytes).")
@click.option("--claims-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The claims document (only its SHA-256 is recorded).")
@click.option("--claims-hash", metavar="HEX", help="The claims' SHA-256 (instead of --claims-file).")
@click.option("--expires-at", type=U64, help="The last height at which it is valid.  [default: no expiry]")
@tx_options
def tx_credential_issue(subject: str, schema: str, claims_file: Path | None, claims_hash: str | None,
                        expires_at: int | None, **kw: Any) -> None:
    """Issue a credential to SUBJECT (an identity id or key name); --from must be an accredited issuer."""
    opts = TxOptions.pop(kw)
    ks = opts.keystore()
    claims = _hash_input("claims", claims_file, claims_hash)
    holder: list[bytes] = []

    async def build(c: Client) -> Struct:
        sid = await resolve_identity(c, subject, ks, "SUBJECT")
        holder.append(sid)
        return IssueCredential(sid, schema, claims, expires_at)

    async def after(c: Client, t: Tx, r: JSON) -> JSON:
        ident = await _own_identity(c, t.sender)
        if ident is None:
            return {}
        creds = (await c.get(f"/v1/issuers/{ident}/credentials"))["credentials"]
        ids = [x["id"] for x in creds if x["issued_height"] == r["height"] and x["subject"] == holder[0].hex()
               and x["claims_hash"] == claims.hex() and x["schema"] == schema]
        return {"credential_id": max(ids)} if ids else {}

    send_tx(opts, "credential.issue", build, after=after)


@tx_credential.command("revoke", epilog="\b\nExamples:\n"
                       "  ekklesia tx credential revoke 7 --reason 'issued in error' --from university")
@click.argument("credential_id", type=U64)
@click.option("--reason", default="", help="Up to 256 bytes, public.")
@tx_options
def tx_credential_revoke(credential_id: int, reason: str, **kw: Any) -> None:
    """Revoke a credential you issued."""
    send_tx(TxOptions.pop(kw), "credential.revoke", _const(RevokeCredential(credential_id, reason)))

