"""A local multi-validator testnet in one folder: per-node homes with loopback ports,
one shared genesis, and a client keystore with funded demo accounts.

    <out>/node0 … node<N-1>   node homes (config, keys, data)
    <out>/genesis.json        the shared genesis (also copied into every home)
    <out>/keys/               client keys of the demo accounts (no passphrase: local only)
    <out>/testnet.json        ports, peer ids and addresses, for tools and `testnet run`
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from node.config import Config, render, spare_cores
from node.errors import HomeError
from node.home import Home
from node.keys import Keystore, create_validator_key, write_private_file
from node.p2p import load_or_create_node_key, peer_id_of
from protocol import crypto
from protocol.governance.constitution import Article
from protocol.governance.genesis import Genesis, GenesisAccount, GenesisIdentity, GenesisValidator
from protocol.governance.identity import key_digest
from protocol.governance.params import DEFAULT_PARAMS, Params

DEMO_ACCOUNTS = ("registrar", "alice", "bob", "carol", "dave")
DEMO_BALANCE = 1_000_000
TREASURY = 10_000_000
CONSTITUTION = (
    "Membership of the nation is voluntary, open to every person, and may be renounced at any time.",
    "Every resident has one vote on laws and on the constitution.",
    "The treasury funds projects only through proposals that pass a public vote.",
    "This constitution is amended only through the constitutional track.",
)


@dataclass(frozen=True)
class TestnetNode:
    name: str
    home: Path
    p2p_port: int
    api_port: int
    peer_id: str
    validator_address: str


def local_params() -> Params:
    """The default tracks with voting periods and timelocks short enough to watch a
    proposal pass on a local testnet (heights are ~0.5 s there)."""
    tracks = tuple(
        dataclasses.replace(t, voting_delay=min(t.voting_delay, 2), voting_period=min(t.voting_period, 20),
                            timelock=min(t.timelock, 4))
        for t in DEFAULT_PARAMS.tracks
    )
    return dataclasses.replace(DEFAULT_PARAMS, tracks=tracks)


def next_key_seed(seed: bytes) -> bytes:
    # The committed next key of a demo identity; derivable so the demo can rotate it.
    return crypto.sha256(b"ekklesia/demo-next-key" + seed)


def init_testnet(
    out: Path, validators: int, *, base_port: int = 26656, chain_id: str = "ekklesia-local",
    genesis_time_ms: int, force: bool = False, fast: bool = True,
) -> list[TestnetNode]:
    if not 1 <= validators <= 64:
        raise HomeError("a local testnet has 1 to 64 validators")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise HomeError(f"{out} already holds a testnet", "pass --force to replace it, or choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)

    nodes: list[TestnetNode] = []
    keys = []
    for i in range(validators):
        home = Home(out / f"node{i}")
        home.create_dirs()
        key = create_validator_key(home.validator_key_file)
        node_key = load_or_create_node_key(home.node_key_file)
        keys.append(key)
        nodes.append(TestnetNode(f"node{i}", home.root, base_port + 10 * i, base_port + 10 * i + 1,
                                 peer_id_of(node_key), key.address_hex))

    for n in nodes:
        peers = [f"/ip4/127.0.0.1/tcp/{m.p2p_port}/p2p/{m.peer_id}" for m in nodes if m is not n]
        consensus = {"timeout_propose_ms": 2000, "min_block_interval_ms": 500} if fast else {}
        cfg = Config.from_mapping({
            "node": {"moniker": n.name, "verify_workers": spare_cores(os.cpu_count(), validators)},
            "p2p": {"listen": f"/ip4/127.0.0.1/tcp/{n.p2p_port}", "peers": peers,
                    "min_peers": min(len(peers), 4)},
            "api": {"listen": f"127.0.0.1:{n.api_port}", "admin_enabled": True},
            "consensus": consensus,
            "metrics": {"enabled": True},
        }, env={})
        write_private_file(Home(n.home).config_file, render(cfg).encode(), what="config file")

    store = Keystore(out / "keys")
    accounts: list[GenesisAccount] = []
    identities: list[GenesisIdentity] = []
    registrar_pk = b""
    for name in DEMO_ACCOUNTS:
        info = store.add(name, passphrase=None)
        pk = bytes.fromhex(info.pubkey)
        accounts.append(GenesisAccount(crypto.address(pk), DEMO_BALANCE))
        if name == "registrar":
            registrar_pk = pk
            seed = store.seed(name, None)
            nxt = crypto.Keypair(next_key_seed(seed)).public_key
            identities.append(GenesisIdentity(pk, key_digest(nxt), True, None))

    genesis = Genesis(
        chain_id=chain_id,
        genesis_time_ms=genesis_time_ms,
        validators=tuple(sorted((GenesisValidator(k.pubkey, 10) for k in keys), key=lambda v: v.pubkey)),
        accounts=tuple(sorted(accounts, key=lambda a: a.address)),
        treasury=TREASURY,
        identities=tuple(identities),
        registrars=(registrar_pk,),
        issuers=(),
        constitution=tuple(Article(i + 1, text) for i, text in enumerate(CONSTITUTION)),
        params=local_params() if fast else DEFAULT_PARAMS,
    )
    genesis.validate()
    text = genesis.to_json()
    (out / "genesis.json").write_text(text)
    for n in nodes:
        Home(n.home).genesis_file.write_text(text)
    (out / "testnet.json").write_text(json.dumps({
        "chain_id": chain_id,
        "nodes": [n.__dict__ | {"home": str(n.home)} for n in nodes],
    }, indent=2, sort_keys=True) + "\n")
    return nodes


def load_testnet(out: Path) -> list[TestnetNode]:
    try:
        doc = json.loads((out / "testnet.json").read_text())
    except FileNotFoundError:
        raise HomeError(f"no testnet in {out}", "create one with `ekklesia testnet init --out DIR`") from None
    return [TestnetNode(**{**n, "home": Path(n["home"])}) for n in doc["nodes"]]
