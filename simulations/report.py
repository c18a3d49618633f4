"""Pictures of a run: `timeline.png` and a self-contained `report.html`.

The timeline shows every node's height over virtual time, fault periods shaded
(network-wide ones across the plot, a node's crash or pause on its own line), and
commits decided in a round above 0 marked. Below it: the commit-latency histogram
(time between consecutive heights, as first seen by any honest node) and the
transaction latency histogram (client acknowledgement to first commit).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display, ever

import matplotlib.pyplot as plt

from simulations.cluster import Cluster
from simulations.faults import NETWORK, Period

SHADES = {"partition": "#e74c3c", "loss": "#f39c12", "crash": "#7f8c8d", "pause": "#3498db"}


def commit_latencies_ms(cluster: Cluster) -> list[int]:
    """Time between height h-1 and h, each at its first honest commit."""
    first: dict[int, int] = {}
    for node in cluster.honest_nodes():
        for t, h, _ in cluster.commit_times[node.name]:
            if h not in first or t < first[h]:
                first[h] = t
    hs = sorted(first)
    return [first[h] - first[h - 1] for h in hs if h - 1 in first]


def tx_latencies_ms(cluster: Cluster, acked: dict[bytes, tuple[int, str, str]]) -> list[int]:
    first: dict[bytes, int] = {}
    for node in cluster.honest_nodes():
        for t, h, _ in cluster.commit_times[node.name]:
            block = node.disk.blocks.get(h)
            if block is None:
                continue
            for tx in block[0].txs:
                if tx.hash in acked and (tx.hash not in first or t < first[tx.hash]):
                    first[tx.hash] = t
    return sorted(first[h] - acked[h][0] for h in first)


def timeline(
    cluster: Cluster, periods: list[Period], path: Path, *, title: str, acked: dict[bytes, tuple[int, str, str]]
) -> None:
    names = sorted(cluster.nodes, key=lambda n: (len(n), n))
    fig = plt.figure(figsize=(12, 8), dpi=100)
    grid = fig.add_gridspec(2, 2, height_ratios=[2.2, 1])
    ax = fig.add_subplot(grid[0, :])
    end_s = cluster.sched.now_ms / 1000
    shaded: set[str] = set()
    for p in periods:
        if p.node != NETWORK:
            continue
        label = p.what if p.what not in shaded else None
        shaded.add(p.what)
        ax.axvspan(p.start_ms / 1000, (p.end_ms or cluster.sched.now_ms) / 1000, color=SHADES.get(p.what, "grey"),
                   alpha=0.15, label=label)
    small = len(names) <= 12
    for name in names:
        pts = cluster.commit_times[name]
        xs = [0.0] + [t / 1000 for t, _, _ in pts] + [end_s]
        ys = [0] + [h for _, h, _ in pts]
        ys.append(ys[-1])
        style = "--" if name in cluster.faulty else "-"
        (line,) = ax.step(xs, ys, where="post", linestyle=style, linewidth=1.2 if small else 0.6,
                          label=name if small else None)
        for p in periods:
            if p.node == name:
                y = height_at_s(pts, p.start_ms)
                ax.plot([p.start_ms / 1000, (p.end_ms or cluster.sched.now_ms) / 1000], [y, y],
                        color=SHADES.get(p.what, "grey"), linewidth=6, alpha=0.5, solid_capstyle="butt")
                ax.annotate(f"{name} {p.what}", (p.start_ms / 1000, y), fontsize=7, xytext=(2, 4),
                            textcoords="offset points")
        later = [(t / 1000, h) for t, h, r in pts if r > 0]
        if later:
            ax.scatter([x for x, _ in later], [y for _, y in later], marker="x", s=18, color=line.get_color(),
                       zorder=3)
    ax.scatter([], [], marker="x", color="black", label="decided in round > 0")
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel("height")
    ax.set_title(title)
    ax.set_xlim(0, end_s)
    ax.legend(loc="upper left", fontsize=7, ncol=2 if small else 1)
    ax.grid(alpha=0.3)

    lat = commit_latencies_ms(cluster)
    ax2 = fig.add_subplot(grid[1, 0])
    ax2.hist(lat or [0], bins=40, color="#2c3e50")
    ax2.set_title("commit latency (time between heights)")
    ax2.set_xlabel("ms")
    ax2.set_ylabel("heights")
    txl = tx_latencies_ms(cluster, acked)
    ax3 = fig.add_subplot(grid[1, 1])
    ax3.hist(txl or [0], bins=40, color="#16a085")
    ax3.set_title("tx latency (acknowledged → committed)")
    ax3.set_xlabel("ms")
    ax3.set_ylabel("txs")
    fig.tight_layout()
    # No timestamps in the file: the same run gives the same bytes.
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def height_at_s(pts: list[tuple[int, int, int]], t_ms: int) -> int:
    best = 0
    for t, h, _ in pts:
        if t > t_ms:
            break
        best = h
    return best


def html_report(summary: dict[str, Any], png: Path, path: Path) -> None:
    img = base64.b64encode(png.read_bytes()).decode() if png.exists() else ""
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(_short(v))}</code></td></tr>"
        for k, v in summary.items()
    )
    verdict = "passed" if summary.get("passed") else "FAILED"
    doc = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>ekklesia sim: {html.escape(str(summary.get("scenario")))}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} th{{text-align:left;vertical-align:top;
padding-right:1em}} td code{{white-space:pre-wrap}} .passed{{color:#27ae60}} .FAILED{{color:#c0392b}}</style>
</head><body>
<h1>{html.escape(str(summary.get("scenario")))} · seed {summary.get("seed")} ·
<span class="{verdict}">{verdict}</span></h1>
<p>Replay: <code>{html.escape(str(summary.get("replay", "")))}</code></p>
<img alt="timeline" style="width:100%" src="data:image/png;base64,{img}">
<table>{rows}</table>
</body></html>
"""
    path.write_text(doc)


def _short(v: Any) -> str:
    text = json.dumps(v, sort_keys=True, indent=1) if isinstance(v, dict | list) else str(v)
    return text if len(text) < 4000 else text[:4000] + " …"
