"""The node configuration: ``<home>/config/config.toml`` plus ``EKKLESIA_*`` overrides.

One frozen dataclass per TOML section, gathered in `Config`. Each field carries its
documentation; from it come the comments of the generated config file (`render`,
`render_default`) and the reference table in docs/config.md (`reference_markdown`),
so the three cannot drift apart.

Precedence: built-in default < config.toml < environment. Any key can be set from the
environment as ``EKKLESIA_<SECTION>_<KEY>`` (upper case), e.g. ``EKKLESIA_P2P_LISTEN``.
Environment values are parsed by the key's type: integers in decimal (``1_000`` is
fine), booleans as true/false/1/0/yes/no/on/off, lists as comma-separated items or
a TOML array (``["a", "b"]``).

Strictness: an unknown section or key, in the file or in an ``EKKLESIA_<SECTION>_*``
variable, is an error (with a "did you mean" hint) — a typo must never silently
leave a default in force. Values are type-checked (no coercion of "50" to 50 in the
file) and range-checked; `load` reports every problem at once in one `ConfigError`
whose `problems` name the dotted key, the problem and where the value came from.
Environment variables that do not start with ``EKKLESIA_<a section name>_`` (such as
``EKKLESIA_HOME`` or ``EKKLESIA_PASSPHRASE``) are not config and are ignored here.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import textwrap
import tomllib
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from node.errors import ConfigError, ConfigProblem, HomeError
from node.home import Home
from protocol.limits import MAX_BLOCK_BYTES, MAX_TX_BYTES
from protocol.messages import MAX_SYNC_RESPONSE_BYTES, MAX_TX_BATCH_BYTES

__all__ = [
    "ENV_PREFIX",
    "HARD_GOSSIP_LIMIT",
    "SECTIONS",
    "ApiSection",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "ConsensusSection",
    "MempoolSection",
    "MetricsSection",
    "NodeSection",
    "P2PSection",
    "StorageSection",
    "SyncSection",
    "env_overrides",
    "env_var",
    "host_port_problem",
    "is_loopback",
    "moniker_problem",
    "multiaddr_problem",
    "reference_markdown",
    "render",
    "render_default",
    "toml_string",
    "toml_value",
    "with_reference",
]

ENV_PREFIX = "EKKLESIA_"

# py-libp2p 0.8.1 silently drops pubsub RPCs of 1 MiB or more; pubsub adds signature,
# key, sender record and topic to the payload. Same value as
# node.p2p.config.HARD_GOSSIP_LIMIT (not imported: that package pulls in libp2p).
HARD_GOSSIP_LIMIT = 1024 * 1024 - 16 * 1024
# A tx batch must be able to carry one maximal transaction plus the batch framing.
MIN_BATCH_BYTES = MAX_TX_BYTES + 1024
# A sync response must be able to carry one maximal block with its commit.
MIN_SYNC_RESPONSE_BYTES = MAX_BLOCK_BYTES + 256 * 1024

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("auto", "json", "console")

Check = Callable[[Any], str | None]  # None: fine; else the problem, e.g. "must be at least 1"


# ----------------------------------------------------------------------------- checks


def _int_range(lo: int, hi: int | None = None) -> Check:
    def check(v: int) -> str | None:
        if v < lo or (hi is not None and v > hi):
            return f"must be between {lo} and {hi}, got {v}" if hi is not None else f"must be at least {lo}, got {v}"
        return None

    return check


def _one_of(*choices: str) -> Check:
    def check(v: str) -> str | None:
        return None if v in choices else f"must be one of {', '.join(choices)}; got {v!r}"

    return check


_MONIKER_MAX = 64


def moniker_problem(v: str) -> str | None:
    if not v.strip():
        return "must not be empty"
    if len(v) > _MONIKER_MAX:
        return f"must be at most {_MONIKER_MAX} characters, got {len(v)}"
    if not v.isprintable():
        return "must contain only printable characters"
    return None


_HOSTNAME = re.compile(r"(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
_BASE58 = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,128}")


def _port(text: str, *, allow_zero: bool) -> str | None:
    if not text.isdigit() or not (0 if allow_zero else 1) <= int(text) <= 65535:
        return f"bad TCP port {text!r} (need {'0' if allow_zero else '1'}-65535)"
    return None


def multiaddr_problem(addr: str, *, peer_id: bool | None, allow_port_zero: bool = True) -> str | None:
    """Why `addr` is not a TCP multiaddr this node can use, or None.

    Accepted: ``/ip4/<a>/tcp/<port>``, ``/ip6/<a>/tcp/<port>``, ``/dns|dns4|dns6/<name>/tcp/<port>``,
    followed by ``/p2p/<peer id>`` when `peer_id` is True (required) or None (optional);
    `peer_id` False forbids it."""
    if not addr.startswith("/"):
        return f"{addr!r} is not a multiaddr (it must start with '/', e.g. /ip4/127.0.0.1/tcp/26656)"
    parts = addr[1:].split("/")
    if len(parts) % 2 or len(parts) < 4:
        return f"{addr!r} is not a multiaddr of the form /ip4/<address>/tcp/<port>[/p2p/<peer id>]"
    proto, host, tcp, port, *rest = parts
    if proto == "ip4" or proto == "ip6":
        try:
            (ipaddress.IPv4Address if proto == "ip4" else ipaddress.IPv6Address)(host)
        except ValueError:
            return f"{addr!r}: {host!r} is not an {'IPv4' if proto == 'ip4' else 'IPv6'} address"
    elif proto in ("dns", "dns4", "dns6"):
        if not _HOSTNAME.fullmatch(host):
            return f"{addr!r}: {host!r} is not a DNS name"
    else:
        return f"{addr!r}: unsupported protocol /{proto} (use /ip4, /ip6, /dns, /dns4 or /dns6)"
    if tcp != "tcp":
        return f"{addr!r}: only /tcp transports are supported, got /{tcp}"
    if problem := _port(port, allow_zero=allow_port_zero):
        return f"{addr!r}: {problem}"
    if rest:
        if rest[0] != "p2p" or len(rest) != 2:
            return f"{addr!r}: unexpected /{'/'.join(rest)} (only /p2p/<peer id> may follow the port)"
        if peer_id is False:
            return f"{addr!r}: must not contain /p2p/<peer id>"
        if not _BASE58.fullmatch(rest[1]):
            return f"{addr!r}: {rest[1]!r} is not a base58 peer id"
    elif peer_id is True:
        return f"{addr!r}: must end with /p2p/<peer id> (e.g. .../tcp/26656/p2p/12D3KooW...)"
    return None


def _multiaddr(*, peer_id: bool | None, allow_port_zero: bool = True, allow_empty: bool = False) -> Check:
    def check(v: str) -> str | None:
        if allow_empty and v == "":
            return None
        return multiaddr_problem(v, peer_id=peer_id, allow_port_zero=allow_port_zero)

    return check


def host_port_problem(value: str) -> str | None:
    """Why `value` is not ``host:port`` (host: IPv4, ``[IPv6]`` or DNS name), or None."""
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        return f"{value!r} is not host:port (e.g. 127.0.0.1:26657)"
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"{value!r}: {host!r} is not an IPv6 address"
    elif ":" in host:
        return f"{value!r}: write an IPv6 address in brackets, e.g. [::1]:26657"
    elif not _HOSTNAME.fullmatch(host):
        return f"{value!r}: {host!r} is not an IP address or host name"
    return _port(port, allow_zero=True)


def _host_port(*, allow_empty: bool = False) -> Check:
    def check(v: str) -> str | None:
        return None if allow_empty and v == "" else host_port_problem(v)

    return check


def _each(check: Check) -> Check:
    def each(v: tuple[Any, ...]) -> str | None:
        for item in v:
            if problem := check(item):
                return problem
        return None

    return each


def _unique(v: tuple[Any, ...]) -> str | None:
    dupes = sorted({x for x in v if v.count(x) > 1})
    return f"lists {', '.join(map(repr, dupes))} more than once" if dupes else None


def is_loopback(host_port: str) -> bool:
    host = host_port.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ----------------------------------------------------------------------------- sections


def _opt(default: Any, doc: str, *checks: Check) -> Any:
    """A config key: its default, its documentation (one paragraph) and its checks."""
    return field(default=default, metadata={"doc": doc, "checks": checks})


class _Section:
    """Behaviour shared by the section dataclasses (each is a frozen dataclass)."""

    NAME: ClassVar[str]
    DOC: ClassVar[str]

    def __post_init__(self) -> None:
        problems = [ConfigProblem(f"{self.NAME}.{key}", problem) for key, problem in self.problems()]
        if problems:
            raise ConfigError(problems)

    def problems(self) -> list[tuple[str, str]]:
        """(key, problem) for every field check that fails, then the cross-field checks."""
        found: list[tuple[str, str]] = []
        types = _field_types(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if problem := _type_problem(value, types[f.name]):
                found.append((f.name, problem))
                continue
            for check in f.metadata["checks"]:
                if problem := check(value):
                    found.append((f.name, problem))
                    break
        if not found:
            found.extend(self.cross_problems())
        return found

    def cross_problems(self) -> list[tuple[str, str]]:
        return []


AUTO_VERIFY_WORKERS = -1
MAX_AUTO_VERIFY_WORKERS = 4


def spare_cores(cores: int | None, nodes: int) -> int:
    """Verify workers each of `nodes` nodes sharing `cores` cores can use: the cores
    left after one per node, shared out, at most MAX_AUTO_VERIFY_WORKERS."""
    return max(0, min(MAX_AUTO_VERIFY_WORKERS, ((cores or 1) - nodes) // nodes))


@dataclass(frozen=True)
class NodeSection(_Section):
    NAME: ClassVar[str] = "node"
    DOC: ClassVar[str] = "This node: its name and logging."

    moniker: str = _opt(
        "node",
        "A human-readable name for this node, shown in logs and status output; not unique, not "
        "secret. `ekklesia init` sets it to the host name unless --moniker is given.",
        moniker_problem,
    )
    log_level: str = _opt("info", "Lowest level logged: " + ", ".join(LOG_LEVELS) + ".", _one_of(*LOG_LEVELS))
    log_format: str = _opt(
        "auto",
        "Log format: json (one JSON object per line), console (readable, coloured) or auto "
        "(console when stderr is a terminal, json otherwise).",
        _one_of(*LOG_FORMATS),
    )
    verify_workers: int = _opt(
        AUTO_VERIFY_WORKERS,
        "Worker processes that check transaction signatures beside the node's own thread "
        "(ed25519 is about a third of the CPU a transaction costs). -1: one per spare core "
        "(cores − 1, at most 4); 0: none, every check on the node's thread. `ekklesia testnet "
        "init` writes the spare cores per node, as its nodes share one machine.",
        _int_range(AUTO_VERIFY_WORKERS, 64),
    )

    def verify_worker_count(self, cores: int | None) -> int:
        """How many verify workers to run on a machine with `cores` cores."""
        if self.verify_workers != AUTO_VERIFY_WORKERS:
            return self.verify_workers
        return spare_cores(cores, 1)


@dataclass(frozen=True)
class P2PSection(_Section):
    NAME: ClassVar[str] = "p2p"
    DOC: ClassVar[str] = "Peer-to-peer network (libp2p): gossip of transactions and consensus messages, sync."

    listen: str = _opt(
        "/ip4/127.0.0.1/tcp/26656",
        "Multiaddr the libp2p host listens on. The default accepts connections from this machine "
        "only; use /ip4/0.0.0.0/tcp/26656 to accept peers from the network. Port 0 picks a free port.",
        _multiaddr(peer_id=False),
    )
    external_address: str = _opt(
        "",
        "Multiaddr to advertise to peers instead of the listen address (e.g. the public address "
        "behind NAT), without /p2p/. Empty: advertise the listen address.",
        _multiaddr(peer_id=False, allow_port_zero=False, allow_empty=True),
    )
    peers: tuple[str, ...] = _opt(
        (),
        "Peers to connect to at start and keep connected (re-dialled with backoff), as "
        "multiaddrs ending in /p2p/<peer id>, e.g. /dns4/seed.example.org/tcp/26656/p2p/12D3KooW...",
        _each(_multiaddr(peer_id=True, allow_port_zero=False)),
        _unique,
    )
    min_peers: int = _opt(4, "Dial known peers while connected to fewer than this many.", _int_range(0, 1000))
    max_peers: int = _opt(
        50,
        "Refuse inbound connections beyond this many peers (the peers listed in `peers` are always accepted).",
        _int_range(1, 1000),
    )
    max_message_bytes: int = _opt(
        512 * 1024,
        f"Largest gossip message this node publishes or accepts, in bytes. At most {HARD_GOSSIP_LIMIT} "
        "(py-libp2p silently drops pubsub frames of 1 MiB or more). Proposals are gossiped with their "
        "transactions named by hash (34 bytes each), so this bounds a block to "
        "(max_message_bytes − 80 KiB) / 34 transactions, at most 5,000 (reached at the default). "
        "Larger messages cost a loaded network more than they bring (measured before proposals were "
        "compact: 4 validators at 4,000 tx/s offered committed less, with more memory).",
        _int_range(MIN_BATCH_BYTES, HARD_GOSSIP_LIMIT),
    )

    mesh_degree: int = _opt(
        3,
        "Gossipsub mesh degree D: how many peers each gossip message is forwarded to. A node receives "
        "about D copies of every message and each copy costs it milliseconds of py-libp2p CPU, so this "
        "is the largest gossip cost: 7 validators on one 2-core host committed 22 tx/s of 300 offered "
        "at D=6 (gossipsub's default) and 303 tx/s at D=3. Below 3 the mesh may split into parts "
        "that hear each other only through heartbeat gossip (seconds).",
        _int_range(1, 12),
    )
    mesh_degree_low: int = _opt(2, "Graft more mesh peers when a topic has fewer than this.", _int_range(1, 12))
    mesh_degree_high: int = _opt(4, "Prune mesh peers when a topic has more than this.", _int_range(1, 24))

    # Per-peer limits. Same defaults as node.p2p.ratelimit (not imported: it pulls in libp2p).
    peer_txs_msgs_per_s: int = _opt(
        200,
        "Transaction batches per second accepted from one peer (each forwarding peer has its own "
        "budget); the excess is dropped unvalidated, and a peer that keeps sending its own batches "
        "over it is penalised and in the end banned. 0: no limit.",
        _int_range(0, 1_000_000),
    )
    peer_txs_bytes_per_s: int = _opt(
        1024 * 1024,
        "Bytes of transaction batches per second accepted from one peer, as peer_txs_msgs_per_s. 0: no limit.",
        _int_range(0, 1 << 40),
    )
    peer_consensus_msgs_per_s: int = _opt(
        200,
        "Consensus messages (proposals, votes, evidence) per second accepted from one peer, as "
        "peer_txs_msgs_per_s. 0: no limit.",
        _int_range(0, 1_000_000),
    )
    peer_consensus_bytes_per_s: int = _opt(
        4 * 1024 * 1024,
        "Bytes of consensus messages per second accepted from one peer, as peer_txs_msgs_per_s. 0: no limit.",
        _int_range(0, 1 << 40),
    )
    peer_requests_per_s: int = _opt(
        200,
        "Sync requests per second served to one peer; the excess is answered \"busy\" and a peer "
        "that stays over it is penalised and in the end banned. 0: no limit.",
        _int_range(0, 1_000_000),
    )
    peer_burst_s: int = _opt(
        5,
        "A peer may send this many seconds' worth of each per-peer rate at once, after being quiet.",
        _int_range(1, 3600),
    )

    def cross_problems(self) -> list[tuple[str, str]]:
        found = []
        if self.min_peers > self.max_peers:
            found.append(("min_peers", f"must not exceed p2p.max_peers ({self.max_peers}), got {self.min_peers}"))
        if not self.mesh_degree_low <= self.mesh_degree <= self.mesh_degree_high:
            bounds = f"[{self.mesh_degree_low}, {self.mesh_degree_high}]"
            found.append(("mesh_degree", f"must lie in [p2p.mesh_degree_low, p2p.mesh_degree_high] ({bounds}), "
                                         f"got {self.mesh_degree}"))
        for key in ("peer_txs_bytes_per_s", "peer_consensus_bytes_per_s"):
            rate = getattr(self, key)
            if rate and rate * self.peer_burst_s < self.max_message_bytes:
                found.append((
                    key,
                    f"times p2p.peer_burst_s ({self.peer_burst_s}) must be at least p2p.max_message_bytes "
                    f"({self.max_message_bytes}), or the largest messages could never pass; got {rate}",
                ))
        return found


@dataclass(frozen=True)
class ApiSection(_Section):
    NAME: ClassVar[str] = "api"
    DOC: ClassVar[str] = "HTTP API for clients (submit transactions, queries, status)."

    listen: str = _opt(
        "127.0.0.1:26657",
        "host:port the HTTP API listens on. Loopback by default: expose it deliberately "
        "(0.0.0.0:26657), preferably behind a reverse proxy. IPv6: [::1]:26657.",
        _host_port(),
    )
    max_body_bytes: int = _opt(
        1024 * 1024,
        "Largest HTTP request body accepted, in bytes.",
        _int_range(1024, 64 * 1024 * 1024),
    )
    max_connections: int = _opt(
        900, "Most simultaneous client connections; further ones wait to be accepted.", _int_range(1, 100_000)
    )
    admin_enabled: bool = _opt(
        False,
        "Serve the administrative endpoints (peer management, unsafe operations). Never enable "
        "them on an API listening beyond loopback.",
    )


@dataclass(frozen=True)
class ConsensusSection(_Section):
    NAME: ClassVar[str] = "consensus"
    DOC: ClassVar[str] = (
        "Consensus timing, in milliseconds. A step's timeout in round r is base + delta * r. "
        "All validators should use similar values."
    )

    timeout_propose_ms: int = _opt(3000, "How long to wait for a proposal in round 0.", _int_range(1, 600_000))
    timeout_propose_delta_ms: int = _opt(500, "Added to the propose timeout per round.", _int_range(0, 600_000))
    timeout_prevote_ms: int = _opt(
        1000, "How long to wait for more prevotes after seeing +2/3 of any, in round 0.", _int_range(1, 600_000)
    )
    timeout_prevote_delta_ms: int = _opt(500, "Added to the prevote timeout per round.", _int_range(0, 600_000))
    timeout_precommit_ms: int = _opt(
        1000, "How long to wait for more precommits after seeing +2/3 of any, in round 0.", _int_range(1, 600_000)
    )
    timeout_precommit_delta_ms: int = _opt(500, "Added to the precommit timeout per round.", _int_range(0, 600_000))
    min_block_interval_ms: int = _opt(
        1000,
        "Round 0 of a height starts no earlier than this long after the previous height was decided "
        "(the time of the block that decision makes: the median of its precommits' timestamps).",
        _int_range(0, 3_600_000),
    )
    create_empty_blocks: bool = _opt(
        True,
        "Propose blocks without transactions. false: after an empty block, wait for transactions "
        "(or create_empty_blocks_interval_ms) before the next height.",
    )
    create_empty_blocks_interval_ms: int = _opt(
        0,
        "With create_empty_blocks = false: start the next height anyway this long after the previous "
        "decision. 0: wait for transactions indefinitely.",
        _int_range(0, 86_400_000),
    )


@dataclass(frozen=True)
class MempoolSection(_Section):
    NAME: ClassVar[str] = "mempool"
    DOC: ClassVar[str] = "Pending transactions, and how they are batched for gossip."

    max_txs: int = _opt(20_000, "Most transactions held.", _int_range(1, 10_000_000))
    max_bytes: int = _opt(
        64 * 1024 * 1024, "Most bytes of transactions held.", _int_range(MAX_TX_BYTES, 16 * 1024 * 1024 * 1024)
    )
    max_per_sender: int = _opt(256, "Most pending transactions of one sender.", _int_range(1, 1_000_000))
    high_water_txs: int = _opt(
        8_000,
        "Backpressure: while the mempool holds this many transactions, client submissions are refused "
        "with HTTP 429 (retry later); peers' gossip is still admitted up to max_txs. At most max_txs.",
        _int_range(1, 10_000_000),
    )
    batch_ms: int = _opt(
        200,
        "Collect newly admitted transactions this long before gossiping them as one batch, in a network of "
        "4 nodes; with more connected peers the interval grows in proportion (N/4), so the tx messages each "
        "node receives per second stay level. Each batch costs every node milliseconds of py-libp2p CPU "
        "(three copies arrive in a 4-node mesh): 200 rather than 100 took 8 % off the validators' CPU "
        "at 2,000 tx/s. 0: send at once.",
        _int_range(0, 10_000),
    )
    batch_max_bytes: int = _opt(
        256 * 1024,
        f"Largest gossiped transaction batch, in bytes: between {MIN_BATCH_BYTES} (one maximal "
        f"transaction) and {MAX_TX_BATCH_BYTES}, and at most p2p.max_message_bytes.",
        _int_range(MIN_BATCH_BYTES, MAX_TX_BATCH_BYTES),
    )

    def cross_problems(self) -> list[tuple[str, str]]:
        problems = []
        if self.max_per_sender > self.max_txs:
            problems.append(("max_per_sender", f"must not exceed mempool.max_txs ({self.max_txs})"))
        if self.high_water_txs > self.max_txs:
            problems.append(("high_water_txs", f"must not exceed mempool.max_txs ({self.max_txs})"))
        return problems


@dataclass(frozen=True)
class SyncSection(_Section):
    NAME: ClassVar[str] = "sync"
    DOC: ClassVar[str] = "Catching up with the chain by downloading blocks from peers."

    enabled: bool = _opt(
        True, "Download missing blocks from peers when behind. false: follow the chain through consensus only."
    )
    behind_threshold: int = _opt(
        5,
        "Switch from consensus to block download when a peer reports a height at least this many blocks ahead.",
        _int_range(1, 1_000_000),
    )
    parallel_requests: int = _opt(4, "Block requests in flight at once, across peers.", _int_range(1, 64))
    max_response_bytes: int = _opt(
        MAX_SYNC_RESPONSE_BYTES,
        f"Largest sync response accepted or served, in bytes: between {MIN_SYNC_RESPONSE_BYTES} (one "
        f"maximal block with its commit) and {MAX_SYNC_RESPONSE_BYTES}.",
        _int_range(MIN_SYNC_RESPONSE_BYTES, MAX_SYNC_RESPONSE_BYTES),
    )


@dataclass(frozen=True)
class StorageSection(_Section):
    NAME: ClassVar[str] = "storage"
    DOC: ClassVar[str] = "The LevelDB store in <home>/data."

    prune_keep_last: int = _opt(
        0,
        "Keep only the blocks of the last N heights (state is never pruned). 0: keep every block. "
        "A pruned node cannot serve older blocks to syncing peers.",
        _int_range(0),
    )
    sync_writes: bool = _opt(
        True,
        "fsync every commit. Turning this off risks losing the last blocks, and a validator's "
        "sign-state, in a power failure; only for throwaway test networks.",
    )


@dataclass(frozen=True)
class MetricsSection(_Section):
    NAME: ClassVar[str] = "metrics"
    DOC: ClassVar[str] = "Prometheus metrics."

    enabled: bool = _opt(False, "Serve Prometheus metrics at /metrics.")
    listen: str = _opt(
        "",
        "host:port of a separate metrics listener (e.g. 127.0.0.1:26660). Empty: serve /metrics on the API listener.",
        _host_port(allow_empty=True),
    )


SECTIONS: tuple[type[_Section], ...] = (
    NodeSection,
    P2PSection,
    ApiSection,
    ConsensusSection,
    MempoolSection,
    SyncSection,
    StorageSection,
    MetricsSection,
)
_BY_NAME: dict[str, type[_Section]] = {s.NAME: s for s in SECTIONS}


@dataclass(frozen=True)
class Config:
    """The whole node configuration. `Config()` is the built-in defaults."""

    node: NodeSection = field(default_factory=NodeSection)
    p2p: P2PSection = field(default_factory=P2PSection)
    api: ApiSection = field(default_factory=ApiSection)
    consensus: ConsensusSection = field(default_factory=ConsensusSection)
    mempool: MempoolSection = field(default_factory=MempoolSection)
    sync: SyncSection = field(default_factory=SyncSection)
    storage: StorageSection = field(default_factory=StorageSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)

    def __post_init__(self) -> None:
        problems = [ConfigProblem(key, problem) for key, problem in self.cross_problems()]
        if problems:
            raise ConfigError(problems)

    def cross_problems(self) -> list[tuple[str, str]]:
        """Problems between sections (dotted keys)."""
        found = []
        if self.mempool.batch_max_bytes > self.p2p.max_message_bytes:
            found.append(
                (
                    "mempool.batch_max_bytes",
                    f"must not exceed p2p.max_message_bytes ({self.p2p.max_message_bytes}), "
                    f"got {self.mempool.batch_max_bytes}",
                )
            )
        if self.metrics.enabled and self.metrics.listen and self.metrics.listen == self.api.listen:
            found.append(
                (
                    "metrics.listen",
                    "is the same address as api.listen; leave it empty to serve /metrics on the API listener",
                )
            )
        return found

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, home: Home | str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
        """Read ``<home>/config/config.toml``, apply ``EKKLESIA_*`` overrides from `env`
        (default: ``os.environ``), validate. Raises `ConfigError` listing every problem,
        or `HomeError` when there is no config file."""
        home = home if isinstance(home, Home) else Home(Path(home))
        return cls.load_file(home.config_file, env)

    @classmethod
    def load_file(cls, path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise HomeError(f"no config file at {path}", "create one with `ekklesia init`") from None
        except UnicodeDecodeError as exc:
            raise ConfigError.single(None, f"not UTF-8 text: {exc}", str(path)) from None
        except OSError as exc:
            raise ConfigError.single(None, f"cannot read: {exc.strerror}", str(path)) from None
        return cls.from_toml(text, env=env, source=str(path))

    @classmethod
    def from_toml(cls, text: str, *, env: Mapping[str, str] | None = None, source: str | None = None) -> Config:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError.single(None, f"not valid TOML: {exc}", source) from None
        return cls.from_mapping(data, env=env, source=source)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, env: Mapping[str, str] | None = None, source: str | None = None
    ) -> Config:
        """Build from parsed TOML (`data`) and environment overrides (`env`; None means
        ``os.environ``, pass ``{}`` for none). `source` names the file in problems."""
        env = os.environ if env is None else env
        problems: list[ConfigProblem] = []
        values: dict[str, dict[str, Any]] = {s.NAME: {} for s in SECTIONS}
        sources: dict[str, str | None] = {}

        for section_name, table in data.items():
            section = _BY_NAME.get(section_name)
            if section is None:
                problems.append(ConfigProblem(section_name, _unknown_section(section_name, table), source))
                continue
            if not isinstance(table, dict):
                problems.append(ConfigProblem(section_name, f"must be a table ([{section_name}])", source))
                continue
            for key, value in table.items():
                dotted = f"{section_name}.{key}"
                ftype = _field_types(section).get(key)
                if ftype is None:
                    problems.append(ConfigProblem(dotted, _unknown_key(section, key), source))
                    continue
                typed, problem = _from_toml(value, ftype)
                if problem:
                    problems.append(ConfigProblem(dotted, problem, source))
                else:
                    values[section_name][key] = typed
                    sources[dotted] = source

        for var in sorted(env):
            parsed = _parse_env_name(var)
            if parsed is None:
                continue
            section, key = parsed
            dotted = f"{section.NAME}.{key}"
            ftype = _field_types(section).get(key)
            if ftype is None:
                problems.append(ConfigProblem(dotted, _unknown_key(section, key), var))
                continue
            typed, problem = _from_env(env[var], ftype)
            if problem:
                problems.append(ConfigProblem(dotted, problem, var))
            else:
                values[section.NAME][key] = typed
                sources[dotted] = var

        sections: dict[str, _Section] = {}
        for section in SECTIONS:
            try:
                sections[section.NAME] = section(**values[section.NAME])
            except ConfigError as exc:
                problems.extend(dataclasses.replace(p, source=sources.get(p.key or "")) for p in exc.problems)
        if problems:
            raise ConfigError(problems)
        try:
            return cls(**sections)  # type: ignore[arg-type]
        except ConfigError as exc:
            raise ConfigError([dataclasses.replace(p, source=sources.get(p.key or "")) for p in exc.problems]) from None

    # ------------------------------------------------------------------ output

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain JSON-able data: {section: {key: value}}, lists for tuples."""
        out: dict[str, dict[str, Any]] = {}
        for s in SECTIONS:
            values = dataclasses.asdict(getattr(self, s.NAME))
            out[s.NAME] = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        return out

    def warnings(self) -> list[str]:
        """Legal but risky settings, for `ekklesia config validate` and the start-up log."""
        found = []
        if self.api.admin_enabled and not is_loopback(self.api.listen):
            found.append(
                f"api.admin_enabled is true while api.listen ({self.api.listen}) is not a loopback "
                "address: anyone who can reach it can administer this node"
            )
        if not self.storage.sync_writes:
            found.append(
                "storage.sync_writes is false: a power failure can lose recent blocks and the "
                "validator sign-state (risk of double signing after a crash)"
            )
        if self.metrics.enabled and self.metrics.listen and not is_loopback(self.metrics.listen):
            found.append(f"metrics.listen ({self.metrics.listen}) is reachable beyond this machine")
        return found


def env_overrides(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """{dotted key: variable name} for the ``EKKLESIA_<SECTION>_<KEY>`` variables set in
    `env` (default ``os.environ``) that name a known key."""
    env = os.environ if env is None else env
    found = {}
    for var in sorted(env):
        parsed = _parse_env_name(var)
        if parsed is not None and parsed[1] in _field_types(parsed[0]):
            found[f"{parsed[0].NAME}.{parsed[1]}"] = var
    return found


def env_var(section: str, key: str) -> str:
    """The environment variable that overrides `section`.`key`."""
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


# ----------------------------------------------------------------------------- parsing


_TYPE_CACHE: dict[type, dict[str, Any]] = {}


def _field_types(section: type[_Section]) -> dict[str, Any]:
    """{key: type} of a section (str, int, bool or tuple[str, ...])."""
    if section not in _TYPE_CACHE:
        hints = typing.get_type_hints(section)
        _TYPE_CACHE[section] = {f.name: hints[f.name] for f in dataclasses.fields(section)}  # type: ignore[arg-type]
    return _TYPE_CACHE[section]


def _parse_env_name(var: str) -> tuple[type[_Section], str] | None:
    if not var.startswith(ENV_PREFIX):
        return None
    section_name, sep, key = var[len(ENV_PREFIX) :].partition("_")
    section = _BY_NAME.get(section_name.lower())
    if section is None or not sep:
        return None
    return section, key.lower()


def _is_str_tuple(ftype: Any) -> bool:
    return typing.get_origin(ftype) is tuple


def _describe(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array", dict: "a table"}
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind.get(type(value), type(value).__name__)} ({text})"


def _type_problem(value: Any, ftype: Any) -> str | None:
    """For values given in Python: tuple fields take a tuple of str, others the exact type."""
    if _is_str_tuple(ftype):
        if isinstance(value, tuple) and all(isinstance(x, str) for x in value):
            return None
        return f"expected a tuple of strings, got {_describe(value)}"
    return None if type(value) is ftype else _from_toml(value, ftype)[1]


def _from_toml(value: Any, ftype: Any) -> tuple[Any, str | None]:
    if _is_str_tuple(ftype):
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            return None, f"expected an array of strings, got {_describe(value)}"
        return tuple(value), None
    expected = {str: "a string", int: "an integer", bool: "a boolean (true or false)"}[ftype]
    if type(value) is not ftype:  # exact: a TOML boolean is not an integer here
        return None, f"expected {expected}, got {_describe(value)}"
    return value, None


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _from_env(text: str, ftype: Any) -> tuple[Any, str | None]:
    if ftype is str:
        return text, None
    if ftype is bool:
        low = text.strip().lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE, None
        return None, f"expected a boolean ({'/'.join(_TRUE)} or {'/'.join(_FALSE)}), got {text!r}"
    if ftype is int:
        if re.fullmatch(r"[+-]?\d+(_\d+)*", text.strip()):
            return int(text.strip()), None
        return None, f"expected an integer, got {text!r}"
    # tuple[str, ...]: a TOML array, or comma-separated items
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = tomllib.loads(f"v = {stripped}")["v"]
        except tomllib.TOMLDecodeError as exc:
            return None, f"not a TOML array: {exc}"
        return _from_toml(value, ftype)
    return tuple(item.strip() for item in stripped.split(",") if item.strip()), None


def _suggest(word: str, options: Iterator[str] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_section(name: str, value: Any) -> str:
    for section in SECTIONS:
        if name in _field_types(section) and not isinstance(value, dict):
            return f"unknown top-level key; keys belong in a section: did you mean [{section.NAME}] {name}?"
    return f"unknown section{_suggest(name, list(_BY_NAME))}; sections are {', '.join(_BY_NAME)}"


def _unknown_key(section: type[_Section], key: str) -> str:
    return f"unknown key{_suggest(key, list(_field_types(section)))}"


# ----------------------------------------------------------------------------- rendering


def toml_string(value: str) -> str:
    """`value` as a TOML basic string (escapes quotes, backslashes and control characters)."""
    out = ['"']
    short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
    for ch in value:
        if ch in short:
            out.append(short[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, tuple | list):
        if not value:
            return "[]"
        return "[\n" + "".join(f"  {toml_string(v)},\n" for v in value) + "]"
    raise TypeError(f"cannot render {type(value).__name__} as TOML")


def _human(key: str, value: Any) -> str:
    if key.endswith("_bytes") and isinstance(value, int) and not isinstance(value, bool) and value >= 1024:
        for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if value % size == 0:
                return f" ({value // size} {unit})"
        return f" ({value / (1 << 20):.2f} MiB)" if value >= 1 << 20 else f" ({value / 1024:.1f} KiB)"
    return ""


def _default_text(key: str, value: Any) -> str:
    if isinstance(value, tuple):
        return "[]" if not value else "[" + ", ".join(toml_string(v) for v in value) + "]"
    return toml_value(value) + _human(key, value)


_HEADER = """\
# ekklesia node configuration.
#
# Every key is optional: a missing key takes the default given in its comment.
# Unknown sections and keys are errors. Any key can be overridden from the
# environment as EKKLESIA_<SECTION>_<KEY>, e.g.
#   EKKLESIA_P2P_LISTEN=/ip4/0.0.0.0/tcp/26656
# Check this file with `ekklesia config validate`; reference: docs/config.md.
"""


def render(config: Config | None = None) -> str:
    """`config` (default: the defaults) as a commented config.toml; `tomllib.loads`
    of the result gives back exactly `config`."""
    config = config if config is not None else Config()
    lines = [_HEADER.rstrip("\n")]
    for section in SECTIONS:
        lines.append("")
        lines.extend(textwrap.wrap(section.DOC, 86, initial_indent="# ", subsequent_indent="# "))
        lines.append(f"[{section.NAME}]")
        current = getattr(config, section.NAME)
        for f in dataclasses.fields(section):  # type: ignore[arg-type]
            lines.append("")
            lines.extend(textwrap.wrap(f.metadata["doc"], 86, initial_indent="# ", subsequent_indent="# "))
            lines.append(f"# Default: {_default_text(f.name, f.default)}. Env: {env_var(section.NAME, f.name)}.")
            lines.append(f"{f.name} = {toml_value(getattr(current, f.name))}")
    return "\n".join(lines) + "\n"


def render_default(moniker: str | None = None) -> str:
    """The config.toml that `ekklesia init` writes: defaults, with `moniker` if given."""
    config = Config() if moniker is None else Config(node=NodeSection(moniker=moniker))
    return render(config)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def reference_markdown() -> str:
    """The key reference of docs/config.md (one table per section)."""
    out: list[str] = []
    for section in SECTIONS:
        out.append(f"### [{section.NAME}]\n")
        out.append(f"{_md_escape(section.DOC)}\n")
        out.append("| key | type | default | description |")
        out.append("| --- | --- | --- | --- |")
        hints = _field_types(section)
        for f in dataclasses.fields(section):  # type: ignore[arg-type]
            ftype = hints[f.name]
            tname = (
                "list of strings" if _is_str_tuple(ftype) else {str: "string", int: "integer", bool: "boolean"}[ftype]
            )
            default = _default_text(f.name, f.default).replace("|", "\\|")
            doc = _md_escape(f.metadata["doc"])
            out.append(f"| `{f.name}` | {tname} | `{default}` | {doc} Env: `{env_var(section.NAME, f.name)}`. |")
        out.append("")
    return "\n".join(out)


REFERENCE_BEGIN = "<!-- BEGIN generated by `python -m node.config docs/config.md`: do not edit -->"
REFERENCE_END = "<!-- END generated -->"


def with_reference(doc: str) -> str:
    """`doc` (the text of docs/config.md) with its generated block brought up to date."""
    start, end = doc.index(REFERENCE_BEGIN), doc.index(REFERENCE_END)
    return doc[:start] + REFERENCE_BEGIN + "\n\n" + reference_markdown() + doc[end:]


if __name__ == "__main__":  # python -m node.config [docs/config.md]: print, or update the file
    import sys

    if len(sys.argv) > 1:
        target = Path(sys.argv[1])
        target.write_text(with_reference(target.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(reference_markdown(), end="")
