# SPDX-License-Identifier: LGPL-3.0-or-later
"""Kernel placement: which agent runs which pending kernel.

Pure policy over a snapshot (no I/O, no clock, no database), so the manager can call it under
its lock and tests can build a cluster in a few lines. Placement is staged like Nomad's
scheduler: `feasible` (can this agent run it now), `possible` (could any agent ever run it),
`score` (which feasible agent is best), and `place` (walk the queue, FIFO with skip, fair share
between owners).
"""

from __future__ import annotations

import heapq
import math
import re
from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Generator, Mapping, Sequence

STRATEGIES = ("concentrated", "dispersed")
_Shape = tuple[float, int, float]  # (cpu, mem, gpu) as plain numbers for the hot loops

# cpu and gpu are fractional and accumulate by addition; without slack, three kernels of 0.1
# cpu would not fit where 0.3 cpu is free.
_EPS = 1e-9

_MEM_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_MEM_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(?:([kmgt])(?:ib?|b)?|b)?\s*$", re.IGNORECASE)


def _number(key: str, value: Any) -> float:
    """A non-negative finite cpu/gpu count from an int, float or numeric string."""
    if isinstance(value, bool):
        raise ValueError(f"slot {key!r}: expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        x = float(value)
    elif isinstance(value, str):
        try:
            x = float(value.strip())
        except ValueError:
            raise ValueError(f"slot {key!r}: cannot parse {value!r} as a number") from None
    else:
        raise ValueError(f"slot {key!r}: expected a number, got {type(value).__name__}")
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"slot {key!r}: must be a finite number >= 0, got {value!r}")
    return x


def parse_mem(value: Any) -> int:
    """Bytes from an int or a size string ("512m", "1.5g", "2Gi"; units are powers of 1024)."""
    if isinstance(value, bool):
        raise ValueError(f"slot 'mem': expected bytes or a size like '512m', got {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError(f"slot 'mem': bytes must be a whole number, got {value!r}")
        n = int(value)
    elif isinstance(value, str):
        m = _MEM_RE.match(value)
        if not m:
            raise ValueError(
                f"slot 'mem': cannot parse {value!r}; use bytes or a size like '512m', '1.5g'"
            )
        try:
            n = int(Decimal(m.group(1)) * _MEM_UNITS[(m.group(2) or "").lower()])
        except InvalidOperation:  # pragma: no cover - the regex only admits valid decimals
            raise ValueError(f"slot 'mem': cannot parse {value!r}") from None
    else:
        raise ValueError(f"slot 'mem': expected bytes or a size string, got {type(value).__name__}")
    if n < 0:
        raise ValueError(f"slot 'mem': must be >= 0, got {value!r}")
    return n


def format_mem(n: int) -> str:
    """Short human size ("512m", "1.5g") for reasons shown to users."""
    for unit in ("t", "g", "m", "k"):
        size = _MEM_UNITS[unit]
        if abs(n) >= size:
            return f"{n / size:.4g}{unit}"
    return f"{n}b"


def _fmt_num(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Slots:
    """An amount of agent resources; also used for capacities and usage sums."""

    cpu: float = 0.0  # cores
    mem: int = 0  # bytes
    gpu: float = 0.0  # devices (fake on the dev machines)

    def __add__(self, other: Slots) -> Slots:
        return Slots(self.cpu + other.cpu, self.mem + other.mem, self.gpu + other.gpu)

    def __sub__(self, other: Slots) -> Slots:
        return Slots(self.cpu - other.cpu, self.mem - other.mem, self.gpu - other.gpu)

    def fits_in(self, other: Slots) -> bool:
        """True if every dimension is <= the other's (with float slack for cpu/gpu)."""
        return (
            self.cpu <= other.cpu + _EPS and self.mem <= other.mem and self.gpu <= other.gpu + _EPS
        )

    def is_zero(self) -> bool:
        return self.cpu == 0 and self.mem == 0 and self.gpu == 0

    def as_tuple(self) -> _Shape:
        return (self.cpu, self.mem, self.gpu)

    @classmethod
    def parse(cls, d: Mapping[str, Any]) -> Slots:
        """Slots from user/API input: {"cpu": 1, "mem": "1g", "gpu": 0}; missing keys are 0."""
        if not isinstance(d, Mapping):
            raise ValueError(
                f"slots: expected a mapping like {{'cpu': 1, 'mem': '1g'}}, got {type(d).__name__}"
            )
        unknown = sorted(set(map(str, d)) - {"cpu", "mem", "gpu"})
        if unknown:
            keys = ", ".join(map(repr, unknown))
            raise ValueError(f"slots: unknown key(s) {keys}; expected cpu, mem, gpu")
        return cls(
            cpu=_number("cpu", d.get("cpu", 0)),
            mem=parse_mem(d.get("mem", 0)),
            gpu=_number("gpu", d.get("gpu", 0)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "mem": int(self.mem), "gpu": self.gpu}

    def __str__(self) -> str:
        s = f"{_fmt_num(self.cpu)} cpu, {format_mem(self.mem)} mem"
        return s + (f", {_fmt_num(self.gpu)} gpu" if self.gpu else "")


@dataclass(frozen=True)
class AgentView:
    """What the scheduler knows about one agent at snapshot time."""

    id: str
    capacity: Slots
    used: Slots
    labels: Mapping[str, str] = field(default_factory=dict)
    images: frozenset[str] = frozenset()
    schedulable: bool = True  # False for lost or draining agents

    @property
    def free(self) -> Slots:
        return self.capacity - self.used


@dataclass(frozen=True)
class Request:
    """A PENDING kernel waiting for an agent."""

    kernel_id: str
    owner: str
    image: str
    slots: Slots
    constraints: Mapping[str, str] = field(default_factory=dict)  # agent label must equal value
    enqueued_at: float = 0.0


@dataclass(frozen=True)
class Placement:
    kernel_id: str
    agent_id: str


@dataclass(frozen=True)
class Decision:
    """Outcome of one `place` call; every request of the queue is in exactly one of the three."""

    placements: list[Placement]  # in the order they were decided
    impossible: dict[str, str]  # kernel_id -> one-line reason it can never run on this cluster
    waiting: list[str]  # fit in principle, not now: stay PENDING (in the order considered)


# ---------------------------------------------------------------------------------- feasibility

_DIMS = (("cpu", 0), ("mem", 1), ("gpu", 2))


def _fmt_dim(dim: int, x: float) -> str:
    return format_mem(int(x)) if dim == 1 else _fmt_num(x)


def _label_mismatch(
    labels: Mapping[str, str], constraints: Mapping[str, str]
) -> tuple[str, str] | None:
    for k, v in constraints.items():
        if labels.get(k) != v:
            return (k, v)
    return None


def feasible(agent: AgentView, req: Request) -> str | None:
    """None if `agent` can start `req` now, else why not (one line)."""
    if not agent.schedulable:
        return f"agent {agent.id} is not schedulable"
    if req.image not in agent.images:
        return f"agent {agent.id} lacks image {req.image}"
    bad = _label_mismatch(agent.labels, req.constraints)
    if bad:
        k, v = bad
        have = agent.labels.get(k)
        return f"agent {agent.id} has label {k}={have}, needs {k}={v}" if have is not None \
            else f"agent {agent.id} lacks label {k}={v}"
    need, free = req.slots.as_tuple(), agent.free.as_tuple()
    for name, d in _DIMS:
        if not _le(need[d], free[d], d):
            return (f"needs {_fmt_dim(d, need[d])} {name}, "
                    f"agent {agent.id} has {_fmt_dim(d, free[d])} free")
    return None


def _le(a: float, b: float, dim: int) -> bool:
    return a <= b if dim == 1 else a <= b + _EPS


def _fits(need: Sequence[float], room: Sequence[float]) -> bool:
    return need[0] <= room[0] + _EPS and need[1] <= room[1] and need[2] <= room[2] + _EPS


def _describe_labels(constraints: Mapping[str, str]) -> str:
    items = sorted(constraints.items())
    return ("label " if len(items) == 1 else "labels ") + ", ".join(f"{k}={v}" for k, v in items)


def possible(agents: Sequence[AgentView], req: Request) -> str | None:
    """None if some schedulable agent could ever run `req`, else a one-line reason for the user.

    Only capacity, image and labels count here; current usage does not (that is `waiting`).
    """
    return _impossible_reason([a for a in agents if a.schedulable], req)


def _impossible_reason(agents: Sequence[AgentView], req: Request) -> str | None:
    if not agents:
        return "no schedulable agent"
    pool = [a for a in agents if req.image in a.images]
    if not pool:
        return f"no agent has image {req.image}"
    if req.constraints:
        for k, v in sorted(req.constraints.items()):
            if not any(a.labels.get(k) == v for a in agents):
                return f"no agent has label {k}={v}"
        pool = [a for a in pool if _label_mismatch(a.labels, req.constraints) is None]
        if not pool:
            return f"no agent with image {req.image} has {_describe_labels(req.constraints)}"
    need = req.slots.as_tuple()
    if any(_fits(need, a.capacity.as_tuple()) for a in pool):
        return None
    narrowed = len(pool) < len(agents)
    where = ""
    if narrowed:
        where = f" with image {req.image}"
        if req.constraints:
            where += f" and {_describe_labels(req.constraints)}"
    for name, d in _DIMS:
        largest = max(a.capacity.as_tuple()[d] for a in pool)
        if not _le(need[d], largest, d):
            return (f"needs {_fmt_dim(d, need[d])} {name}, "
                    f"the largest agent{where} has {_fmt_dim(d, largest)}")
    return f"needs {req.slots} on one agent; no agent{where} has all of that"


# -------------------------------------------------------------------------------------- scoring

def _utilization(cap: Sequence[float], used: Sequence[float]) -> float:
    """Mean used share over the dimensions the agent has (a gpu-less agent is not 'gpu-full')."""
    total, n = 0.0, 0
    for d in (0, 1, 2):
        c = cap[d]
        if c > 0:
            total += used[d] / c
            n += 1
    return total / n if n else 1.0


def _score_raw(
    cap: Sequence[float], used: Sequence[float], need: Sequence[float], concentrated: bool
) -> float:
    after = (used[0] + need[0], used[1] + need[1], used[2] + need[2])
    u = _utilization(cap, after)
    return u if concentrated else 1.0 - u


def _check_strategy(strategy: str) -> bool:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    return strategy == "concentrated"


def score(agent: AgentView, req: Request, strategy: str) -> float:
    """How good `agent` is for `req` (higher is better), by utilization after placing it.

    "concentrated" bin-packs (fullest agent wins, leaving whole agents free for big kernels);
    "dispersed" spreads (emptiest agent wins, so kernels don't contend for cores).
    """
    concentrated = _check_strategy(strategy)
    cap, used = agent.capacity.as_tuple(), agent.used.as_tuple()
    return _score_raw(cap, used, req.slots.as_tuple(), concentrated)


def dominant_share(usage: Slots, total: Slots) -> float:
    """Largest share of any cluster dimension held by `usage` (DRF), for fair-share ordering."""
    u, t = usage.as_tuple(), total.as_tuple()
    return max((u[d] / t[d] for d in (0, 1, 2) if t[d] > 0), default=0.0)


# ------------------------------------------------------------------------------------ placement

_Kind = tuple[str, frozenset[tuple[str, str]]]  # (image, constraints): agents it may run on


class _Group:
    """Agents of one capacity that can run one (image, constraints) kind, best first.

    Because every agent in a group has the same capacity, score order within it depends only
    on current usage, so the best feasible agent is the first that fits in `entries`; this is
    what keeps `place` from re-scanning every agent for every request.
    """

    __slots__ = ("cap", "entries", "bound", "failed")

    def __init__(self, cap: _Shape) -> None:
        self.cap = cap
        self.entries: list[tuple[float, str, int]] = []  # (order key, agent id, index)
        # Upper bound on any member's free room per dimension. Free room only shrinks during
        # one call, so a stale bound stays an upper bound; it is made exact after a full scan.
        self.bound = list(cap)
        self.failed: list[_Shape] = []  # request shapes that fit no member


class _Cluster:
    """Mutable working copy of the snapshot for one `place` call."""

    def __init__(
        self, agents: Sequence[AgentView], queue: Sequence[Request], concentrated: bool
    ) -> None:
        self.agents = [a for a in agents if a.schedulable]
        # Per-dimension minimum over the queue: an agent with less free room fits nothing.
        needs = [r.slots.as_tuple() for r in queue]
        self.floor = tuple(min((n[d] for n in needs), default=0) for d in (0, 1, 2))
        self.concentrated = concentrated
        self.caps = [a.capacity.as_tuple() for a in self.agents]
        self.used = [list(a.used.as_tuple()) for a in self.agents]
        self.keys = [self._key(i) for i in range(len(self.agents))]
        # (image, constraints) -> (groups of agents with room, capacities of all compatible agents)
        self.views: dict[_Kind, tuple[list[_Group], set[_Shape]]] = {}
        self.member_of: list[list[_Group]] = [[] for _ in self.agents]
        self.reasons: dict[tuple[Any, ...], str | None] = {}

    def _key(self, i: int) -> float:
        # Sort key within a group: ascending order == descending score.
        u = _utilization(self.caps[i], self.used[i])
        return -u if self.concentrated else u

    def view(self, req: Request) -> tuple[list[_Group], set[_Shape]]:
        kind = (req.image, frozenset(req.constraints.items()))
        groups = self.views.get(kind)
        if groups is None:
            by_cap: dict[_Shape, _Group] = {}
            caps: set[_Shape] = set()
            for i, a in enumerate(self.agents):
                if req.image in a.images and _label_mismatch(a.labels, req.constraints) is None:
                    caps.add(self.caps[i])  # full agents still count for "could it ever run"
                    if self._useless(i):
                        continue
                    g = by_cap.get(self.caps[i])
                    if g is None:
                        g = by_cap[self.caps[i]] = _Group(self.caps[i])
                    g.entries.append((self.keys[i], a.id, i))
                    self.member_of[i].append(g)
            for g in by_cap.values():
                g.entries.sort()
            groups = self.views[kind] = (list(by_cap.values()), caps)
        return groups

    def impossible(self, req: Request, caps: set[_Shape]) -> str | None:
        need = req.slots.as_tuple()
        if any(_fits(need, c) for c in caps):
            return None
        key = (req.image, frozenset(req.constraints.items()), need)
        if key not in self.reasons:
            self.reasons[key] = _impossible_reason(self.agents, req) or "no agent fits"
        return self.reasons[key]

    def best(self, need: _Shape, groups: list[_Group]) -> int | None:
        """Index of the highest-scoring agent with room for `need` now, ties to the lower id."""
        best_i, best_score, best_id = None, -math.inf, ""
        for g in groups:
            b = g.bound
            if not _fits(need, b) or any(_fits(f, need) for f in g.failed):
                continue
            used = self.used
            found = None
            c0, c1, c2 = g.cap
            n0, n1, n2 = need[0] - _EPS, need[1], need[2] - _EPS
            for _, aid, i in g.entries:
                u = used[i]
                if n0 <= c0 - u[0] and n1 <= c1 - u[1] and n2 <= c2 - u[2]:
                    found = (aid, i)
                    break
            if found is None:
                # Nobody fits: tighten the bound so later requests this big skip the scan.
                rooms = [(c0 - used[i][0], c1 - used[i][1], c2 - used[i][2])
                         for _, _, i in g.entries]
                g.bound = [max(r[d] for r in rooms) for d in (0, 1, 2)] if rooms else [-1, -1, -1]
                g.failed.append(need)
                continue
            aid, i = found
            s = _score_raw(g.cap, used[i], need, self.concentrated)
            if s > best_score or (s == best_score and aid < best_id):
                best_i, best_score, best_id = i, s, aid
        return best_i

    def commit(self, i: int, need: _Shape) -> None:
        """Charge `need` to agent i and move it to its new place in every group it is in."""
        old = (self.keys[i], self.agents[i].id, i)
        u = self.used[i]
        u[0] += need[0]
        u[1] += need[1]
        u[2] += need[2]
        self.keys[i] = self._key(i)
        new = (self.keys[i], self.agents[i].id, i)
        retire = self._useless(i)
        for g in self.member_of[i]:
            del g.entries[bisect_left(g.entries, old)]
            if not retire:
                insort(g.entries, new)
        if retire:
            self.member_of[i] = []

    def _useless(self, i: int) -> bool:
        """True if agent i has no room for even the smallest request of this call's queue.

        Free room only shrinks during a call, so such an agent can be dropped from every group
        for good; under bin-packing the nearly full agents sort first and would otherwise be
        re-scanned by every request.
        """
        c, u, f = self.caps[i], self.used[i], self.floor
        return c[0] - u[0] < f[0] - _EPS or c[1] - u[1] < f[1] or c[2] - u[2] < f[2] - _EPS


def _order(queue: Sequence[Request]) -> list[tuple[float, int, Request]]:
    return sorted(((r.enqueued_at, n, r) for n, r in enumerate(queue)), key=lambda t: (t[0], t[1]))


def _fair_order(
    queue: Sequence[Request], usage: dict[str, Slots], total: Slots
) -> Generator[Request, Slots | None, None]:
    """Yield requests lowest-dominant-share owner first, FIFO within an owner.

    The caller sends back the slots it placed (or None), so an owner's share grows within the
    call and a flood from one owner interleaves with everyone else's requests.
    """
    per_owner: dict[str, deque[tuple[float, int, Request]]] = {}
    for item in _order(queue):
        per_owner.setdefault(item[2].owner, deque()).append(item)
    heap = [
        (dominant_share(usage.get(o, Slots()), total), q[0][0], q[0][1], o)
        for o, q in per_owner.items()
    ]
    heapq.heapify(heap)
    while heap:
        _, _, _, owner = heapq.heappop(heap)
        q = per_owner[owner]
        _, _, req = q.popleft()
        placed = yield req
        if placed is not None:
            usage[owner] = usage.get(owner, Slots()) + placed
        if q:
            share = dominant_share(usage.get(owner, Slots()), total)
            heapq.heappush(heap, (share, q[0][0], q[0][1], owner))


def place(
    agents: Sequence[AgentView],
    queue: Sequence[Request],
    *,
    strategy: str = "concentrated",
    fair_share: bool = True,
    owner_usage: Mapping[str, Slots] | None = None,
) -> Decision:
    """Decide which queued requests start now and where.

    FIFO with skip: each request is tried once, in order; one that does not fit now stays
    waiting without blocking the ones behind it. Placements made earlier in the call consume
    capacity seen by later ones. With `fair_share`, owners holding the smallest dominant share
    (from `owner_usage` plus what this call gives them) go first. Deterministic for a given input.
    """
    concentrated = _check_strategy(strategy)
    cluster = _Cluster(agents, queue, concentrated)
    placements: list[Placement] = []
    impossible: dict[str, str] = {}
    waiting: list[str] = []

    def decide(req: Request) -> _Shape | None:
        groups, caps = cluster.view(req)
        reason = cluster.impossible(req, caps)
        if reason is not None:
            impossible[req.kernel_id] = reason
            return None
        need = req.slots.as_tuple()
        i = cluster.best(need, groups)
        if i is None:
            waiting.append(req.kernel_id)
            return None
        cluster.commit(i, need)
        placements.append(Placement(req.kernel_id, cluster.agents[i].id))
        return need

    if fair_share:
        total = sum((a.capacity for a in cluster.agents), Slots())
        gen = _fair_order(queue, dict(owner_usage or {}), total)
        try:
            req = next(gen)
            while True:
                need = decide(req)
                req = gen.send(Slots(*need) if need is not None else None)
        except StopIteration:
            pass
    else:
        for _, _, req in _order(queue):
            decide(req)
    return Decision(placements=placements, impossible=impossible, waiting=waiting)
