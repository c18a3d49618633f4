"""`ekklesia status` and `ekklesia query …`: read a node's HTTP API (docs/api.md).

Every command takes ``--node URL`` (default ``http://127.0.0.1:26657``, or
``$EKKLESIA_NODE``) and ``--json`` (the API's JSON, passed through). The text output
is for people; scripts should use ``--json``. Also home to the helpers `cli_tx`
shares: the ``--node`` option, running a client call, resolving key names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import trio

from node.cli import CliError, _emit_json, _Group, _home_option, _json_option, main
from node.client import DEFAULT_NODE, Client, NotFound
from node.errors import KeystoreError
from node.home import Home
from node.keys import Keystore

NODE_ENV = "EKKLESIA_NODE"
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_HEX = re.compile(r"(0x)?[0-9a-fA-F]*")


# ----------------------------------------------------------------------------- shared options and helpers


def node_option(f: F) -> F:
    return click.option(
        "--node",
        "node_url",
        envvar=NODE_ENV,
        default=DEFAULT_NODE,
        show_default=True,
        show_envvar=True,
        metavar="URL",
        help="The node's API (host:port is enough).",
    )(f)


def keys_dir_option(f: F) -> F:
    return click.option(
        "--keys-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        metavar="DIR",
        help="Client keystore directory.  [default: <home>/keys]",
    )(f)


def keystore(keys_dir: Path | None, home: Path | None) -> Keystore:
    return Keystore(keys_dir if keys_dir is not None else Home.resolve(home).keys_dir)


def call(node_url: str, fn: Callable[[Client], Awaitable[T]]) -> T:
    """Run `fn` with a client of the node at `node_url` (its own trio loop)."""

    async def go() -> T:
        async with Client(node_url) as client:
            return await fn(client)

    try:
        return trio.run(go)
    except BaseExceptionGroup as group:  # an error raised inside a library's task group
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


def hex_arg(text: str, sizes: Sequence[int], what: str) -> bytes | None:
    """`text` as bytes if it is hex of one of `sizes` (bytes), optional 0x; else None."""
    if not _HEX.fullmatch(text):
        return None
    raw = text.removeprefix("0x")
    if len(raw) % 2 or len(raw) // 2 not in sizes:
        return None
    return bytes.fromhex(raw)


def need_hex(text: str, size: int, what: str) -> bytes:
    raw = hex_arg(text, (size,), what)
    if raw is None:
        raise click.BadParameter(f"{what} must be {2 * size} hex digits, got {text!r}")
    return raw


def key_pubkey(ks: Keystore, name: str, what: str) -> bytes:
    """The public key of keystore key `name` (no passphrase needed)."""
    try:
        return bytes.fromhex(ks.show(name).pubkey)
    except KeystoreError as exc:
        raise click.BadParameter(f"{what}: {name!r} is not hex of the right size, and not a usable key name "
                                 f"({exc.message})") from None


def resolve_address(text: str, ks: Keystore, what: str = "address") -> bytes:
    """An address (40 hex), a public key (64 hex, its address) or a keystore key name."""
    from protocol import crypto

    raw = hex_arg(text, (20, 32), what)
    if raw is not None:
        return raw if len(raw) == 20 else crypto.address(raw)
    return crypto.address(key_pubkey(ks, text, what))


def resolve_pubkey(text: str, ks: Keystore, what: str = "public key") -> bytes:
    raw = hex_arg(text, (32,), what)
    return raw if raw is not None else key_pubkey(ks, text, what)


async def resolve_identity(client: Client, text: str, ks: Keystore, what: str = "identity") -> bytes:
    """An identity id (64 hex), or the identity whose current key is keystore key `text`."""
    raw = hex_arg(text, (32,), what)
    if raw is not None:
        return raw
    pk = key_pubkey(ks, text, what)
    try:
        ident = await client.get(f"/v1/identities/by-key/{pk.hex()}")
    except NotFound:
        raise CliError(f"{what}: key {text!r} is not the current key of any identity") from None
    return bytes.fromhex(ident["id"])


def file_sha256(path: Path) -> bytes:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


# ----------------------------------------------------------------------------- text output


def _scalar(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, dict | list):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: int = 0) -> list[str]:
    """Aligned columns (nothing is truncated: hex must stay copyable)."""
    cells = [[_scalar(c) for c in r] for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    pad = " " * indent
    fmt = lambda r: pad + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return [fmt(list(headers)), *(fmt(r) for r in cells)]


def _is_table(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def kv(data: dict[str, Any], indent: int = 0, skip: Sequence[str] = ()) -> list[str]:
    """`key  value` lines; nested objects indented, lists of objects as tables."""
    pad = " " * indent
    keys = [k for k in data if k not in skip]
    width = max((len(k) for k in keys), default=0)
    out: list[str] = []
    for k in keys:
        v = data[k]
        if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            cols = list(dict.fromkeys(c for x in v.values() for c in x))
            out.append(f"{pad}{k}:")
            out += table(["", *cols], [[name, *(x.get(c) for c in cols)] for name, x in v.items()], indent + 2)
        elif isinstance(v, dict) and v:
            out.append(f"{pad}{k}:")
            out += kv(v, indent + 2)
        elif _is_table(v):
            cols = list(dict.fromkeys(c for x in v for c in x))
            out.append(f"{pad}{k}: ({len(v)})")
            out += table(cols, [[x.get(c) for c in cols] for x in v], indent + 2)
        elif isinstance(v, list):
            out.append(f"{pad}{k.ljust(width)}  {', '.join(_scalar(x) for x in v) if v else '-'}")
        else:
            out.append(f"{pad}{k.ljust(width)}  {_scalar(v)}")
    return out


def echo_lines(lines: Sequence[str]) -> None:
    click.echo("\n".join(lines))


def show(data: Any, as_json: bool, render: Callable[[Any], Sequence[str]] | None = None) -> None:
    if as_json:
        _emit_json(data)
    else:
        echo_lines(render(data) if render is not None else kv(data))


# ----------------------------------------------------------------------------- status


STATUS_EPILOG = """\b
Examples:
  ekklesia status
  ekklesia status --node http://10.0.0.5:26657 --json | jq .height
  EKKLESIA_NODE=127.0.0.1:26667 ekklesia status
"""


@main.command("status", epilog=STATUS_EPILOG)
@node_option
@_json_option
def status(node_url: str, as_json: bool) -> None:
    """Show the node's status: chain, height, sync state, peers, consensus step."""
    show(call(node_url, lambda c: c.get("/v1/status")), as_json)


# ----------------------------------------------------------------------------- query group

QUERY_EPILOG = """\b
Examples:
  ekklesia query account alice --home testnet      a keystore key name, an address or a pubkey
  ekklesia query proposals --status voting
  ekklesia query proposal 3 --json | jq .tally
  ekklesia query notary ./deed.pdf --verify         file or hash; checks the proof offline
  ekklesia query block                               the latest block
\b
Every command: --node URL (or $EKKLESIA_NODE), --json (the API's JSON as is).
Exit status: 0 found, 1 not found or node error, 2 bad usage.
"""


@main.group(cls=_Group, epilog=QUERY_EPILOG)
def query() -> None:
    """Read the chain's state from a node (accounts, identities, proposals, …)."""


def _get(node_url: str, path: str, params: dict[str, Any] | None = None) -> Any:
    return call(node_url, lambda c: c.get(path, params))


# -- accounts and identities


@query.command("account", epilog="\b\nExamples:\n  ekklesia query account alice --home testnet\n"
               "  ekklesia query account 02ea…cf19 --json")
@click.argument("who")
@keys_dir_option
@_home_option
@node_option
@_json_option
def query_account(who: str, keys_dir: Path | None, home: Path | None, node_url: str, as_json: bool) -> None:
    """Balance, nonce and vote locks of WHO: an address, a public key or a key name."""
    address = resolve_address(who, keystore(keys_dir, home), "account")
    show(_get(node_url, f"/v1/accounts/{address.hex()}"), as_json)


IDENTITY_EPILOG = """\b
Examples:
  ekklesia query identity d0cf…7192                  by identity id
  ekklesia query identity alice --home testnet        the identity whose current key is alice
  ekklesia query identity --key 9cbd…fc1a             by current public key
"""


@query.command("identity", epilog=IDENTITY_EPILOG)
@click.argument("who", required=False)
@click.option("--key", "key", metavar="PUBKEY|NAME", help="Look up the identity whose current key this is.")
@keys_dir_option
@_home_option
@node_option
@_json_option
def query_identity(who: str | None, key: str | None, keys_dir: Path | None, home: Path | None, node_url: str,
                   as_json: bool) -> None:
    """An identity: by id (64 hex), or by its current key (a key name or --key)."""
    if (who is None) == (key is None):
        raise click.UsageError("give an identity id (or key name), or --key PUBKEY, not both")
    ks = keystore(keys_dir, home)
    if key is not None:
        path = f"/v1/identities/by-key/{resolve_pubkey(key, ks).hex()}"
    else:
        assert who is not None
        raw = hex_arg(who, (32,), "identity")
        path = f"/v1/identities/{raw.hex()}" if raw is not None else \
            f"/v1/identities/by-key/{key_pubkey(ks, who, 'identity').hex()}"
    show(_get(node_url, path), as_json)


@query.command("unions", epilog="\b\nExamples:\n  ekklesia query unions alice --home testnet")
@click.argument("who")
@keys_dir_option
@_home_option
@node_option
@_json_option
def query_unions(who: str, keys_dir: Path | None, home: Path | None, node_url: str, as_json: bool) -> None:
    """The marriages and contracts of an identity (id or key name)."""
    ks = keystore(keys_dir, home)

    async def go(c: Client) -> Any:
        return await c.get(f"/v1/identities/{(await resolve_identity(c, who, ks)).hex()}/unions")

    show(call(node_url, go), as_json,
         lambda d: table(["id", "kind", "status", "title", "created", "parties"],
                         [[u["id"], u["kind"], u["status"], u["title"], u["created_height"], len(u["parties"])]
                          for u in d["unions"]]))


@query.command("credentials", epilog="\b\nExamples:\n  ekklesia query credentials alice --home testnet\n"
               "  ekklesia query credentials d0cf…7192 --issued")
@click.argument("who")
@click.option("--issued", is_flag=True, help="The credentials WHO issued (as an issuer), not those it holds.")
@keys_dir_option
@_home_option
@node_option
@_json_option
def query_credentials(who: str, issued: bool, keys_dir: Path | None, home: Path | None, node_url: str,
                      as_json: bool) -> None:
    """Credentials held (or, with --issued, issued) by an identity (id or key name)."""
    ks = keystore(keys_dir, home)

    async def go(c: Client) -> Any:
        iid = (await resolve_identity(c, who, ks)).hex()
        return await c.get(f"/v1/issuers/{iid}/credentials" if issued else f"/v1/identities/{iid}/credentials")

    show(call(node_url, go), as_json,
         lambda d: table(["id", "schema", "status", "issuer", "subject", "issued", "expires"],
                         [[x["id"], x["schema"], x["status"], x["issuer"], x["subject"], x["issued_height"],
                           x["expires_at"]] for x in d["credentials"]]))


@query.command("registrars", epilog="\b\nExamples:\n  ekklesia query registrars")
@node_option
@_json_option
def query_registrars(node_url: str, as_json: bool) -> None:
    """The registrars (who grant e-residency)."""
    show(_get(node_url, "/v1/registrars"), as_json)


@query.command("issuers", epilog="\b\nExamples:\n  ekklesia query issuers")
@node_option
@_json_option
def query_issuers(node_url: str, as_json: bool) -> None:
    """The credential issuers and whether they are accredited."""
    show(_get(node_url, "/v1/issuers"), as_json)


# -- proposals


def _tally_line(t: dict[str, Any] | None) -> str:
    if t is None:
        return "- (voting has not started)"
    outcome = t["outcome"] or "-"
    state = "final" if t["final"] else "if voting ended now"
    return (f"yes {t['yes']}  no {t['no']}  abstain {t['abstain']}  veto {t['veto']}  "
            f"(cast {t['cast']} of {t['eligible']} eligible)  → {outcome} ({state})")


def render_proposal(p: dict[str, Any]) -> list[str]:
    lines = kv(p, skip=("rules", "action", "action_decoded", "tally"))
    lines.append(f"tally: {_tally_line(p.get('tally'))}")
    if p.get("action_decoded") is not None:
        lines.append(f"action ({p['action_type']}):")
        lines += kv(p["action_decoded"], 2)
    lines.append("rules:")
    lines += kv(p["rules"], 2)
    return lines


PROPOSAL_EPILOG = """\b
Examples:
  ekklesia query proposal 1
  ekklesia query proposal 1 --json | jq .tally.outcome
"""


@query.command("proposal", epilog=PROPOSAL_EPILOG)
@click.argument("proposal_id", type=click.IntRange(0, 2**64 - 1))
@node_option
@_json_option
def query_proposal(proposal_id: int, node_url: str, as_json: bool) -> None:
    """A proposal with its live tally (what voting would decide if it ended now)."""
    show(_get(node_url, f"/v1/proposals/{proposal_id}"), as_json, render_proposal)


STATUSES = ("pending", "voting", "queued", "executed", "execution_failed", "rejected", "vetoed", "no_quorum",
            "cancelled")


@query.command("proposals", epilog="\b\nExamples:\n  ekklesia query proposals\n"
               "  ekklesia query proposals --status voting --json")
@click.option("--status", "status_", type=click.Choice(STATUSES), help="Only proposals with this status.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@node_option
@_json_option
def query_proposals(status_: str | None, limit: int, offset: int, node_url: str, as_json: bool) -> None:
    """List proposals, in id order."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if status_:
        params["status"] = status_
    data = _get(node_url, "/v1/proposals", params)

    def render(d: Any) -> list[str]:
        rows = [[p["id"], p["track"], p["status"], p["voting_start"], p["voting_end"],
                 (p["tally"] or {}).get("outcome"), p["title"]] for p in d["proposals"]]
        shown = f"{d['offset'] + 1}-{d['offset'] + len(rows)}" if rows else "none"
        return [*table(["id", "track", "status", "start", "end", "outcome", "title"], rows),
                f"({shown} of {d['total']})"]

    show(data, as_json, render)


@query.command("votes", epilog="\b\nExamples:\n  ekklesia query votes 1\n  ekklesia query votes 1 --limit 10 --json")
@click.argument("proposal_id", type=click.IntRange(0, 2**64 - 1))
@click.option("--limit", type=click.IntRange(1, 10_000), default=1000, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@node_option
@_json_option
def query_votes(proposal_id: int, limit: int, offset: int, node_url: str, as_json: bool) -> None:
    """The votes cast on a proposal."""
    data = _get(node_url, f"/v1/proposals/{proposal_id}/votes", {"limit": limit, "offset": offset})
    show(data, as_json, lambda d: [
        *table(["voter", "kind", "choice", "weight", "height"],
               [[v["voter"], v["voter_kind"], v["choice"], v["weight"], v["height"]] for v in d["votes"]]),
        f"({len(d['votes'])} of {d['total']} votes)"])


# -- constitution


def _articles(arts: list[dict[str, Any]]) -> list[str]:
    return [f"Article {a['number']}. {a['text']}" for a in arts]


def _history(d: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for v in d["versions"]:
        by = f"proposal {v['proposal_id']}" if v["proposal_id"] is not None else "genesis"
        out.append(f"version {v['version']}  height {v['height']}  ({by})  hash {v['hash']}")
        for ch in v["changes"]:
            out.append(f"  article {ch['number']}: " + ("repealed" if ch["text"] is None else ch["text"]))
    return out


CONSTITUTION_EPILOG = """\b
Examples:
  ekklesia query constitution                  the current text
  ekklesia query constitution --history        every version and its changes
  ekklesia query constitution --version 1      the text as of version 1
"""


@query.command("constitution", epilog=CONSTITUTION_EPILOG)
@click.option("--history", is_flag=True, help="Every version with its changes.")
@click.option("--version", "version", type=click.IntRange(1, 2**32 - 1), help="The full text as of this version.")
@node_option
@_json_option
def query_constitution(history: bool, version: int | None, node_url: str, as_json: bool) -> None:
    """The constitution: current text, history, or a past version."""
    if history and version is not None:
        raise click.UsageError("--history and --version exclude each other")
    if history:
        show(_get(node_url, "/v1/constitution/history"), as_json, _history)
    elif version is not None:
        show(_get(node_url, f"/v1/constitution/versions/{version}"), as_json,
             lambda d: [f"Constitution, version {d['version']}", *_articles(d["articles"])])
    else:
        show(_get(node_url, "/v1/constitution"), as_json,
             lambda d: [f"Constitution, version {d['version']} (hash {d['hash']})", *_articles(d["articles"])])


# -- services


NOTARY_EPILOG = """\b
Examples:
  ekklesia query notary ./deed.pdf                    hash the file, show its records
  ekklesia query notary ae9e…8f95 --json
  ekklesia query notary ./deed.pdf --verify           check each record's proof offline
  ekklesia query notary ./deed.pdf --verify --trusted-node http://other-node:26657
  ekklesia query notary ./deed.pdf --verify --genesis genesis.json
\b
--verify rebuilds the notarising tx and the block header from their fields and
checks: tx hash, signature and content; the Merkle path to the header's tx root;
the header hash; the validator set against the header; +2/3 of its power in valid
precommit signatures. Block, tx and validators come from --trusted-node (default:
--node); with --genesis the validator set is genesis's instead of the node's (fails
if the set has changed since). Exit status 1 if any record fails to verify.
"""


@query.command("notary", epilog=NOTARY_EPILOG)
@click.argument("document")
@click.option("--verify", is_flag=True, help="Verify each record's inclusion and commit proof (exit 1 if not).")
@click.option("--trusted-node", metavar="URL", help="Fetch blocks, txs and validators for --verify from this node.")
@click.option("--genesis", "genesis_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Take the validator set for --verify from this genesis file.")
@node_option
@_json_option
@click.pass_context
def query_notary(ctx: click.Context, document: str, verify: bool, trusted_node: str | None,
                 genesis_file: Path | None, node_url: str, as_json: bool) -> None:
    """Notary records of DOCUMENT: a file (hashed with SHA-256) or a 64-hex hash."""
    doc = hex_arg(document, (32,), "document")
    if doc is None:
        path = Path(document)
        if not path.is_file():
            raise click.BadParameter(f"{document!r} is neither a 64-hex SHA-256 hash nor a file",
                                     param_hint="DOCUMENT")
        doc = file_sha256(path)
    if (trusted_node or genesis_file) and not verify:
        raise click.UsageError("--trusted-node and --genesis only apply with --verify")
    data = _get(node_url, f"/v1/notary/{doc.hex()}")
    if not verify:
        show(data, as_json, _render_notary)
        return

    from node.proofs import verify_notary_record

    trusted_vals, chain_id = None, None
    if genesis_file is not None:
        trusted_vals, chain_id = _genesis_validators(genesis_file)

    async def fetch(c: Client) -> list[Any]:
        results = []
        for rec in data["records"]:
            tx = block = vals = None
            with contextlib.suppress(NotFound):
                tx = (await c.get(f"/v1/txs/{rec['tx_hash']}")).get("tx")
            with contextlib.suppress(NotFound):
                block = await c.get(f"/v1/blocks/{rec['height']}")
            if trusted_vals is None:
                vals = await c.get("/v1/validators", {"height": rec["height"]})
            results.append(verify_notary_record(doc, rec, tx=tx, block=block, validators=vals,
                                                trusted_validators=trusted_vals, chain_id=chain_id))
        return results

    results = call(trusted_node or node_url, fetch)
    ok = bool(results) and all(r.ok for r in results)
    for rec, res in zip(data["records"], results, strict=True):
        rec["verification"] = res.to_json()
    data["verified"] = ok
    data["validator_set_source"] = f"genesis {genesis_file}" if genesis_file is not None else \
        f"node {trusted_node or node_url}"
    show(data, as_json, _render_notary)
    if not ok:
        if not as_json:
            click.echo("error: verification failed", err=True)
        ctx.exit(1)


def _genesis_validators(path: Path) -> tuple[Any, str]:
    from protocol.errors import ValidationError
    from protocol.governance.genesis import Genesis
    from protocol.validators import ValidatorSet

    try:
        g = Genesis.from_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError) as exc:
        raise CliError(f"{path}: not a valid genesis: {exc}") from None
    return ValidatorSet.of((v.pubkey, v.power) for v in g.validators), g.chain_id


_MARK = {True: "ok  ", False: "FAIL", None: "n/a "}


def _render_notary(d: dict[str, Any]) -> list[str]:
    out = [f"document {d['doc_hash']}: {len(d['records'])} record(s)"]
    for i, rec in enumerate(d["records"], 1):
        out.append(f"record {i}:")
        out += kv(rec, 2, skip=("doc_hash", "proof", "verification"))
        proof = rec.get("proof")
        if proof is None:
            out.append("  proof     - (the node no longer holds the block)")
        else:
            inc = proof["inclusion"]
            out.append(f"  proof     block {proof['height']} {proof['block_hash']}")
            out.append(f"            tx root {proof['tx_root']}, leaf {inc['index']} of {inc['tree_size']}, "
                       f"{len(inc['path'])} path hashes")
        ver = rec.get("verification")
        if ver is not None:
            out.append(f"  verification: {'VERIFIED' if ver['verified'] else 'FAILED'}")
            out += [f"    {_MARK[c['ok']]} {c['check']}: {c['detail']}" for c in ver["checks"]]
    if "verified" in d:
        out.append("all records verified" if d["verified"] else "verification FAILED")
        source = str(d.get("validator_set_source", ""))
        if source.startswith("node"):
            out.append(f"note: the validator set came from the {source}; anchor it with --genesis or cross-check "
                       "with --trusted-node")
    return out


@query.command("union", epilog="\b\nExamples:\n  ekklesia query union 1\n  ekklesia query union 1 --json")
@click.argument("union_id", type=click.IntRange(0, 2**64 - 1))
@node_option
@_json_option
def query_union(union_id: int, node_url: str, as_json: bool) -> None:
    """A marriage or contract with its history."""
    show(_get(node_url, f"/v1/unions/{union_id}"), as_json)


@query.command("credential", epilog="\b\nExamples:\n  ekklesia query credential 1")
@click.argument("credential_id", type=click.IntRange(0, 2**64 - 1))
@node_option
@_json_option
def query_credential(credential_id: int, node_url: str, as_json: bool) -> None:
    """A credential and its status (valid, expired, revoked, issuer_revoked)."""
    show(_get(node_url, f"/v1/credentials/{credential_id}"), as_json)


# -- chain


@query.command("params", epilog="\b\nExamples:\n  ekklesia query params\n"
               "  ekklesia query params --json | jq .tracks.law")
@node_option
@_json_option
def query_params(node_url: str, as_json: bool) -> None:
    """Governance parameters: fee, notice period, every track's voting rules."""
    show(_get(node_url, "/v1/params"), as_json)


@query.command("validators", epilog="\b\nExamples:\n  ekklesia query validators\n"
               "  ekklesia query validators --height 10 --json")
@click.option("--height", type=click.IntRange(1, 2**64 - 1), help="The set that signs this height.  "
              "[default: the next height]")
@node_option
@_json_option
def query_validators(height: int | None, node_url: str, as_json: bool) -> None:
    """The validator set of a height."""
    data = _get(node_url, "/v1/validators", {"height": height} if height is not None else None)
    show(data, as_json, lambda d: [
        f"validators of height {d['height']} (total power {d['total_power']})",
        *table(["address", "pubkey", "power"], [[v["address"], v["pubkey"], v["power"]] for v in d["validators"]]),
    ])


def _render_block(b: dict[str, Any]) -> list[str]:
    lines = kv(b, skip=("txs", "evidence", "signers", "commit", "last_commit"))
    lines.append(f"txs: ({len(b['txs'])})")
    lines += [f"  {h}" for h in b["txs"]]
    if b["evidence"]:
        lines.append(f"evidence: ({len(b['evidence'])})")
        lines += table(list(b["evidence"][0]), [list(e.values()) for e in b["evidence"]], 2)
    c = b["commit"]
    lines.append(f"commit: round {c['round']}, {len(c['signatures'])} signatures")
    lines += [f"  {s['address']}  {s['signature'][:16]}…" for s in c["signatures"]]
    return lines


@query.command("block", epilog="\b\nExamples:\n  ekklesia query block            the latest\n"
               "  ekklesia query block 42 --json")
@click.argument("height", type=click.IntRange(1, 2**64 - 1), required=False)
@node_option
@_json_option
def query_block(height: int | None, node_url: str, as_json: bool) -> None:
    """A block with its commit (the latest without HEIGHT)."""
    show(_get(node_url, f"/v1/blocks/{height if height is not None else 'latest'}"), as_json, _render_block)


@query.command("tx", epilog="\b\nExamples:\n  ekklesia query tx 19fc…ee8a\n  ekklesia query tx 19fc…ee8a --json")
@click.argument("tx_hash")
@node_option
@_json_option
def query_tx(tx_hash: str, node_url: str, as_json: bool) -> None:
    """A transaction's status, result and content."""
    h = need_hex(tx_hash, 32, "TX_HASH")
    show(_get(node_url, f"/v1/txs/{h.hex()}"), as_json)


@query.command("supply", epilog="\b\nExamples:\n  ekklesia query supply")
@node_option
@_json_option
def query_supply(node_url: str, as_json: bool) -> None:
    """Token supply: total, treasury, escrow (proposal deposits), burned."""
    show(_get(node_url, "/v1/supply"), as_json)


@query.command("chain", epilog="\b\nExamples:\n  ekklesia query chain")
@node_option
@_json_option
def query_chain(node_url: str, as_json: bool) -> None:
    """Chain id, genesis hash, head height and time, number of residents."""
    show(_get(node_url, "/v1/chain"), as_json)


@query.command("peers", epilog="\b\nExamples:\n  ekklesia query peers")
@node_option
@_json_option
def query_peers(node_url: str, as_json: bool) -> None:
    """The node's connected peers."""
    show(_get(node_url, "/v1/peers"), as_json)
