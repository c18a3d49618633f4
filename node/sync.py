"""Block sync and within-height catch-up, over the request/response protocol.

Gossip loses messages for good under partitions and overload, so a node never
relies on it to catch up:

* Every `interval` the node asks a few peers for their status. More than
  `behind_threshold` heights behind, it pauses consensus (a syncing node never
  signs), fetches blocks with their commits in windows from several peers in
  parallel, and hands them to the replica in order — the replica verifies each
  commit against the validator set it knows before applying the block. Caught up,
  it restarts consensus from its sign-state.
* Stuck at one height for `stall` seconds (a lost proposal or votes), it pulls the
  proposals and votes its peers hold for that height.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
import trio

from node.p2p import RequestError
from protocol import messages
from protocol.errors import DecodeError

if TYPE_CHECKING:
    from node.runtime import Node

log = structlog.get_logger("ekklesia.sync")

WINDOW = 32  # blocks per request
STATUS_PEERS = 4
NO_PEER_GRACE_S = 3.0  # alone this long at start: nobody is ahead, start consensus


class Syncer:
    def __init__(self, node: Node, *, interval: float = 1.0, stall: float = 2.0) -> None:
        self.node = node
        self.interval = interval
        self.stall = stall
        self._wake = trio.Event()
        self._pull = trio.Event()
        self._last_height = -1
        self._since = 0.0
        self.target = 0
        self.synced_blocks = 0

    def wake(self) -> None:
        self._wake.set()

    def wake_pull(self) -> None:
        self._pull.set()
        self._wake.set()

    async def run(self) -> None:
        self._since = trio.current_time()
        while True:
            with trio.move_on_after(self.interval):
                await self._wake.wait()
            self._wake = trio.Event()
            try:
                await self._round()
            except (RequestError, DecodeError) as exc:  # a peer's problem, never the node's
                log.debug("sync round failed", error=repr(exc))

    async def _request(self, peer: str, req: object) -> object | None:
        node = self.node
        assert node.network is not None
        try:
            raw = await node.network.request(peer, messages.encode_tagged(req), timeout=10.0)  # type: ignore[arg-type]
            return messages.decode_sync(raw)
        except DecodeError as exc:
            node.network.penalise(peer, f"undecodable sync response: {exc.reason}")
        except RequestError as exc:
            log.debug("sync request failed", peer=peer, error=repr(exc))
        return None

    async def _statuses(self, peers: list[str]) -> dict[str, messages.StatusResponse]:
        out: dict[str, messages.StatusResponse] = {}

        async def ask(peer: str) -> None:
            resp = await self._request(peer, messages.StatusRequest(self.node.chain_id))
            if isinstance(resp, messages.StatusResponse):
                if resp.chain_id == self.node.chain_id and resp.genesis_hash == self.node.genesis.hash:
                    out[peer] = resp
                elif self.node.network is not None:
                    self.node.network.penalise(peer, "status for another chain")

        async with trio.open_nursery() as n:
            for p in peers:
                n.start_soon(ask, p)
        return out

    async def _round(self) -> None:
        node = self.node
        replica = node.replica
        assert replica is not None
        peers = sorted(node.peers())[: max(STATUS_PEERS, node.config.sync.parallel_requests)]
        statuses = await self._statuses(peers) if peers else {}
        best = max((s.height for s in statuses.values()), default=0)
        self.target = max(self.target, best)
        node.metrics.set_sync_target(self.target)
        node.metrics.set_syncing(replica.syncing)
        mine = node.height
        if not node.config.sync.enabled:
            best = mine
        if best > mine + node.config.sync.behind_threshold and not replica.syncing:
            node.stop_consensus()
        if best > mine:
            ahead = sorted(p for p, s in statuses.items() if s.height > mine)
            await self._fetch(ahead, best)
        if replica.syncing:
            alone = not statuses and trio.current_time() - node.started_at > NO_PEER_GRACE_S
            if (statuses or alone) and node.height >= max(best, 0):
                await node.until_stored()  # the replica must know the head it starts from
                node.start_consensus()
            return
        if node.height != self._last_height:
            self._last_height, self._since = node.height, trio.current_time()
        elif self._pull.is_set() or trio.current_time() - self._since > self.stall:
            self._pull = trio.Event()
            await self._pull_height(sorted(statuses) or peers)

    async def _fetch(self, peers: list[str], best: int) -> None:
        """Fetch (height, best] in windows from several peers in parallel and apply them
        in order. Downloads run ahead of the apply: while one window is applied, the next
        `parallel_requests` are in flight, so the network wait hides behind the CPU work."""
        node = self.node
        parallel = max(1, node.config.sync.parallel_requests)
        while peers and node.height < best:
            start = node.height + 1
            outcome = await self._pipeline(peers, start, best, parallel)
            if outcome == "refused" or node.height < start:
                return  # a peer's block was refused (and the peer penalised), or nobody answered
            await trio.sleep(0)  # let gossip and the API breathe

    async def _pipeline(self, peers: list[str], start: int, best: int, parallel: int) -> str:
        """One pass over consecutive windows from `start`. Returns "done", "gap" (a short or
        missing response: the caller starts a new pass from the new height) or "refused"."""
        node = self.node
        firsts = list(range(start, best + 1, WINDOW))
        got: dict[int, messages.BlocksResponse | None] = {}
        peer_of = {first: peers[i % len(peers)] for i, first in enumerate(firsts)}
        arrived = trio.Event()
        slots = trio.Semaphore(parallel)

        async def fetch(first: int) -> None:
            nonlocal arrived
            async with slots:
                resp = await self._request(peer_of[first], messages.BlocksRequest(first, WINDOW))
            got[first] = resp if isinstance(resp, messages.BlocksResponse) else None
            arrived.set()
            arrived = trio.Event()

        async with trio.open_nursery() as n:
            # The semaphore keeps `parallel` requests in flight; a window is requested at
            # most `parallel` windows ahead of the one being applied (bounded memory).
            ahead = 0
            try:
                for idx, first in enumerate(firsts):
                    while ahead <= idx + parallel and ahead < len(firsts):
                        n.start_soon(fetch, firsts[ahead])
                        ahead += 1
                    while first not in got:
                        await arrived.wait()
                    resp = got.pop(first)
                    if resp is None:
                        return "gap"
                    for bc in resp.blocks:
                        if bc.block.height != node.height + 1:
                            continue
                        await node.apply_synced(bc.block, bc.commit, peer_of[first])
                        if node.height != bc.block.height:
                            return "refused"  # the replica refused it and penalised the peer
                        self.synced_blocks += 1
                    if node.height < min(first + WINDOW - 1, best):
                        return "gap"
                return "done"
            finally:
                n.cancel_scope.cancel()

    async def _pull_height(self, peers: list[str]) -> None:
        node = self.node
        height = node.height + 1

        async def pull(peer: str) -> None:
            resp = await self._request(peer, messages.VotesRequest(height))
            if isinstance(resp, messages.VotesResponse):
                for p in resp.proposals:
                    node.offer(p, peer)
                for v in resp.votes:
                    node.offer(v, peer)

        async with trio.open_nursery() as n:
            for p in peers:
                n.start_soon(pull, p)
