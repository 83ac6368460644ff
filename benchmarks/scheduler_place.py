# SPDX-License-Identifier: LGPL-3.0-or-later
"""Place 10,000 requests on 1,000 synthetic agents and compare with naive loops in the same run.

Baselines: first-fit (no scoring, no fair share: the cheapest correct-ish loop) and a full
scan that scores every feasible agent for every request (what `place` would be without its
per-capacity groups). Run: python benchmarks/scheduler_place.py [--agents N] [--requests N]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time

from jupyter_backendai.manager.scheduler import AgentView, Request, Slots, feasible, place, score

G = 1 << 30
LANGS = ("python", "r", "julia", "node", "rust", "go", "octave", "bash")
IMAGES = [f"backendai/kernel-{n}" for n in LANGS]
NOBODY_HAS = "backendai/kernel-cobol"  # a few requests no agent can ever run
SIZES = [(4, 16, 0), (8, 32, 0), (16, 64, 0), (32, 128, 0), (16, 128, 2), (64, 256, 8)]


def cluster(n: int, rng: random.Random) -> list[AgentView]:
    agents = []
    for i in range(n):
        cpu, mem, gpu = rng.choice(SIZES)
        labels = {"zone": rng.choice("abc")}
        if gpu:
            labels["gpu"] = rng.choice(["a100", "h100"])
        images = {IMAGES[0]} | set(rng.sample(IMAGES[1:], rng.randint(1, 5)))  # mixed catalogs
        agents.append(AgentView(f"agent-{i:04d}", Slots(cpu, mem * G, gpu), Slots(),
                                labels, frozenset(images), rng.random() > 0.02))
    return agents


def queue(n: int, rng: random.Random) -> list[Request]:
    reqs = []
    for j in range(n):
        cons = {}
        if rng.random() < 0.2:
            cons["zone"] = rng.choice("abc")
        gpu = 0
        if rng.random() < 0.05:
            gpu, cons["gpu"] = rng.choice([1, 2]), rng.choice(["a100", "h100"])
        reqs.append(Request(
            kernel_id=f"k{j:05d}", owner=f"user{rng.randrange(50)}",
            image=rng.choices(IMAGES + [NOBODY_HAS], weights=[50, 10, 5, 10, 3, 3, 1, 5, 0.2])[0],
            # ~1.5x oversubscribed on cpu, so the waiting path and full agents are exercised
            slots=Slots(rng.choice([0.5, 1, 2, 4, 8]), rng.choice([1, 2, 2, 4, 8]) * G, gpu),
            constraints=cons, enqueued_at=float(j)))
    return reqs


def first_fit(agents: list[AgentView], reqs: list[Request]) -> int:
    """FIFO first fit over plain lists: no scoring, no fair share, no indexes."""
    ok = [a for a in agents if a.schedulable]
    free = [[a.free.cpu, a.free.mem, a.free.gpu] for a in ok]
    n = 0
    for r in reqs:
        c, m, g = r.slots.cpu, r.slots.mem, r.slots.gpu
        cons = r.constraints.items()
        for a, f in zip(ok, free):
            if (c <= f[0] and m <= f[1] and g <= f[2] and r.image in a.images
                    and all(a.labels.get(k) == v for k, v in cons)):
                f[0] -= c
                f[1] -= m
                f[2] -= g
                n += 1
                break
    return n


def scored_scan(agents: list[AgentView], reqs: list[Request], strategy: str) -> int:
    state = {a.id: a for a in agents}
    n = 0
    for r in reqs:
        best = None
        for a in state.values():
            if feasible(a, r) is None:
                key = (score(a, r, strategy), [-ord(c) for c in a.id])
                if best is None or key > best[0]:
                    best = (key, a)
        if best:
            a = best[1]
            state[a.id] = dataclasses.replace(a, used=a.used + r.slots)
            n += 1
    return n


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--requests", type=int, default=10000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--skip-scored-scan", action="store_true",
                   help="skip the slow full-scan baseline")
    a = p.parse_args()
    rng = random.Random(a.seed)
    agents, reqs = cluster(a.agents, rng), queue(a.requests, rng)
    print(f"{a.requests} requests on {a.agents} agents (python {sys.version.split()[0]})")

    t_ff, n_ff = timed(first_fit, agents, reqs)
    print(f"  baseline first-fit           {t_ff:7.3f} s  {n_ff:6d} placed"
          f"  {n_ff / t_ff:8.0f} placements/s")
    results = {}
    for strategy in ("concentrated", "dispersed"):
        for fair in (True, False):
            t, d = timed(place, agents, reqs, strategy=strategy, fair_share=fair)
            n = len(d.placements)
            results[strategy, fair] = t
            print(f"  place {strategy:12s} fair={fair!s:5s} {t:7.3f} s  {n:6d} placed"
                  f"  {n / t:8.0f} placements/s  waiting {len(d.waiting)}"
                  f"  impossible {len(d.impossible)}  x{t_ff / t:.2f} vs first-fit")
    if not a.skip_scored_scan:
        t_ss, n_ss = timed(scored_scan, agents, reqs, "concentrated")
        t_pl = results["concentrated", False]
        print(f"  baseline scored full scan    {t_ss:7.3f} s  {n_ss:6d} placed"
              f"  {n_ss / t_ss:8.0f} placements/s  (place, same strategy, no fair share:"
              f" x{t_ss / t_pl:.1f} faster)")


if __name__ == "__main__":
    main()
