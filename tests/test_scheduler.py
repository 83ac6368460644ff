# SPDX-License-Identifier: LGPL-3.0-or-later
"""Scheduler on synthetic clusters: slots, feasibility, scoring, FIFO with skip, fair share."""

import dataclasses
import math
import random

import pytest

from jupyter_backendai.manager.scheduler import (
    AgentView,
    Decision,
    Placement,
    Request,
    Slots,
    feasible,
    place,
    possible,
    score,
)

G = 1 << 30
M = 1 << 20


def agent(id, cpu=4, mem="8g", gpu=0, used=None, images=("py",), labels=None, schedulable=True):
    return AgentView(
        id=id,
        capacity=Slots.parse({"cpu": cpu, "mem": mem, "gpu": gpu}),
        used=Slots.parse(used or {}),
        labels=labels or {},
        images=frozenset(images),
        schedulable=schedulable,
    )


def req(kid, cpu=1, mem="1g", gpu=0, owner="alice", image="py", constraints=None, t=0.0):
    return Request(kid, owner, image, Slots.parse({"cpu": cpu, "mem": mem, "gpu": gpu}),
                   constraints or {}, t)


def where(decision: Decision) -> dict:
    return {p.kernel_id: p.agent_id for p in decision.placements}


# ---- Slots

@pytest.mark.parametrize("text, expected", [
    ("1g", G), ("512m", 512 * M), ("1.5g", 3 * G // 2), ("2Gi", 2 * G), ("64k", 65536),
    (" 1G ", G), ("100", 100), ("100b", 100), ("1kb", 1024), ("3MiB", 3 * M),
    (1024, 1024), (0, 0), (2.0 * G, 2 * G),
])
def test_parse_mem(text, expected):
    assert Slots.parse({"mem": text}).mem == expected


def test_parse_defaults_and_roundtrip():
    s = Slots.parse({"cpu": "0.5", "mem": "1g", "gpu": 1})
    assert s == Slots(0.5, G, 1.0)
    assert Slots.parse(s.to_dict()) == s
    assert s.to_dict() == {"cpu": 0.5, "mem": G, "gpu": 1.0}
    assert Slots.parse({}) == Slots() and Slots().is_zero()


@pytest.mark.parametrize("bad, words", [
    ({"cpu": -1}, "cpu"), ({"mem": "-1g"}, "mem"), ({"mem": "lots"}, "mem"),
    ({"mem": "1x"}, "mem"), ({"mem": "5i"}, "mem"),
    ({"mem": 1.5}, "mem"), ({"cpu": "two"}, "cpu"), ({"cpu": float("nan")}, "cpu"),
    ({"gpu": True}, "gpu"), ({"disk": 1}, "disk"), ({"cpu": None}, "cpu"), ("cpu=1", "mapping"),
])
def test_parse_rejects(bad, words):
    with pytest.raises(ValueError, match=words):
        Slots.parse(bad)


def test_slots_arithmetic():
    a, b = Slots(2, 4 * G, 1), Slots(1, G, 0)
    assert a - b == Slots(1, 3 * G, 1) and (a - b) + b == a
    assert b.fits_in(a) and not a.fits_in(b)
    assert not Slots(0, 0, 1).fits_in(Slots(8, 8 * G, 0))
    # fractional cpu accumulates without spurious misses
    assert (Slots(0.1) + Slots(0.1) + Slots(0.1)).fits_in(Slots(0.3))


# ---- feasible / possible

def test_feasible_reasons():
    a = agent("a1", cpu=4, mem="8g", gpu=1, used={"cpu": 3, "mem": "6g"}, labels={"zone": "x"})
    assert feasible(a, req("k", cpu=1, mem="2g", gpu=1)) is None
    assert "cpu" in feasible(a, req("k", cpu=2))
    assert "mem" in feasible(a, req("k", mem="3g"))
    assert "gpu" in feasible(a, req("k", gpu=2))
    assert "image r" in feasible(a, req("k", image="r"))
    assert "zone=y" in feasible(a, req("k", constraints={"zone": "y"}))
    assert "gpu=a100" in feasible(a, req("k", constraints={"gpu": "a100"}))
    assert "not schedulable" in feasible(agent("a2", schedulable=False), req("k"))


def test_possible_reasons():
    cluster = [agent("a", cpu=8, mem="16g", labels={"zone": "x"}),
               agent("b", cpu=4, mem="64g", images=("py", "r")),
               agent("huge", cpu=128, mem="1t", images=("py", "r", "julia"), schedulable=False)]
    assert possible(cluster, req("k", cpu=8, mem="16g")) is None
    assert possible(cluster, req("k", image="julia")) == "no agent has image julia"
    assert possible(cluster, req("k", constraints={"gpu": "a100"})) == "no agent has label gpu=a100"
    assert possible(cluster, req("k", cpu=64)) == "needs 64 cpu, the largest agent has 8"
    assert (possible(cluster, req("k", image="r", constraints={"zone": "x"}))
            == "no agent with image r has label zone=x")
    assert (possible(cluster, req("k", image="r", mem="100g"))
            == "needs 100g mem, the largest agent with image r has 64g")
    # each dimension fits on some agent, but not both on one
    assert (possible(cluster, req("k", cpu=8, mem="32g"))
            == "needs 8 cpu, 32g mem on one agent; no agent has all of that")
    assert possible([agent("x", schedulable=False)], req("k")) == "no schedulable agent"


# ---- score and strategy

def test_concentrated_vs_dispersed():
    cluster = [agent("empty"), agent("half", used={"cpu": 2, "mem": "4g"}),
               agent("full", used={"cpu": 4, "mem": "8g"})]
    r = req("k")
    assert score(cluster[1], r, "concentrated") > score(cluster[0], r, "concentrated")
    assert score(cluster[0], r, "dispersed") > score(cluster[1], r, "dispersed")
    assert where(place(cluster, [r], strategy="concentrated")) == {"k": "half"}
    assert where(place(cluster, [r], strategy="dispersed")) == {"k": "empty"}
    with pytest.raises(ValueError, match="strategy"):
        place(cluster, [r], strategy="random")


def test_dispersed_spreads_and_concentrated_packs():
    cluster = [agent(f"a{i}") for i in range(4)]
    q = [req(f"k{i}", t=i) for i in range(4)]
    spread = where(place(cluster, q, strategy="dispersed"))
    assert sorted(spread.values()) == ["a0", "a1", "a2", "a3"]
    assert set(where(place(cluster, q, strategy="concentrated")).values()) == {"a0"}


def test_ties_break_by_agent_id_and_are_deterministic():
    cluster = [agent(n) for n in ("c", "a", "b")]
    q = [req(f"k{i}", cpu=1, owner=f"u{i % 3}", t=i % 5) for i in range(10)]
    d1 = place(cluster, q)
    assert d1.placements[0].agent_id == "a"
    for _ in range(3):
        assert place(list(reversed(cluster)), q) == d1


# ---- queue semantics

def test_fifo_with_skip():
    cluster = [agent("a", cpu=4, used={"cpu": 2})]
    q = [req("big", cpu=3, t=0)] + [req(f"small{i}", cpu=1, t=i) for i in (1, 2, 3)]
    d = place(cluster, q, fair_share=False)
    assert [p.kernel_id for p in d.placements] == ["small1", "small2"]
    assert d.waiting == ["big", "small3"] and d.impossible == {}


def test_order_is_by_enqueued_at_not_list_order():
    cluster = [agent("a", cpu=1)]
    d = place(cluster, [req("late", t=5), req("early", t=1)], fair_share=False)
    assert d.placements == [Placement("early", "a")] and d.waiting == ["late"]


def test_impossible_goes_out_immediately_with_reason():
    cluster = [agent("a", cpu=8)]
    d = place(cluster, [req("huge", cpu=64, t=0), req("rust", image="rust", t=1), req("ok", t=2)])
    assert d.impossible == {"huge": "needs 64 cpu, the largest agent has 8",
                            "rust": "no agent has image rust"}
    assert where(d) == {"ok": "a"} and d.waiting == []


def test_full_agent_means_waiting_not_impossible():
    cluster = [agent("a", cpu=2, used={"cpu": 2}), agent("b", cpu=1, images=("r",))]
    d = place(cluster, [req("k", cpu=2), req("r", image="r", cpu=0.5)])
    assert d.waiting == ["k"] and d.impossible == {} and where(d) == {"r": "b"}


def test_unschedulable_agents_get_nothing():
    cluster = [agent("lost", cpu=64, schedulable=False), agent("ok", cpu=2)]
    d = place(cluster, [req("k1", cpu=2, t=0), req("k2", cpu=2, t=1), req("k3", cpu=8, t=2)])
    assert where(d) == {"k1": "ok"} and d.waiting == ["k2"] and "k3" in d.impossible


def test_capacity_consumed_within_one_call():
    cluster = [agent("a", cpu=2, mem="4g"), agent("b", cpu=2, mem="4g")]
    q = [req(f"k{i}", cpu=1, mem="1g", t=i) for i in range(5)]
    d = place(cluster, q, fair_share=False)
    assert len(d.placements) == 4 and d.waiting == ["k4"]
    assert sorted(where(d).values()) == ["a", "a", "b", "b"]


def test_labels_and_gpu_route_requests():
    cluster = [agent("cpu1", cpu=16, labels={"zone": "x"}),
               agent("gpu1", cpu=4, gpu=2, labels={"gpu": "a100"})]
    q = [req("g", gpu=1, t=0), req("z", constraints={"zone": "x"}, t=1),
         req("a", constraints={"gpu": "a100"}, t=2)]
    assert where(place(cluster, q)) == {"g": "gpu1", "z": "cpu1", "a": "gpu1"}


def test_fair_share_interleaves_owners():
    cluster = [agent("a", cpu=100, mem="100g")]
    flood = [req(f"b{i}", owner="bob", t=i) for i in range(6)]
    late = [req(f"c{i}", owner="carol", t=10 + i) for i in range(3)]
    d = place(cluster, flood + late)
    order = [p.kernel_id for p in d.placements]
    assert order[:6] == ["b0", "c0", "b1", "c1", "b2", "c2"]
    fifo = place(cluster, flood + late, fair_share=False)
    assert [p.kernel_id for p in fifo.placements][:6] == [f"b{i}" for i in range(6)]


def test_fair_share_counts_existing_usage():
    cluster = [agent("a", cpu=2, mem="100g")]
    q = [req("heavy1", owner="heavy", t=0),
         req("light1", owner="light", t=1), req("light2", owner="light", t=2)]
    d = place(cluster, q, owner_usage={"heavy": Slots(cpu=10)})
    assert [p.kernel_id for p in d.placements] == ["light1", "light2"] and d.waiting == ["heavy1"]


def test_fair_share_uses_dominant_share():
    cluster = [agent("a", cpu=10, mem="10g")]
    # memhog holds 50% of memory, cpuhog 30% of cpu: cpuhog's dominant share is smaller
    usage = {"memhog": Slots(mem=5 * G), "cpuhog": Slots(cpu=3)}
    q = [req("m", owner="memhog", t=0), req("c", owner="cpuhog", t=1)]
    assert [p.kernel_id for p in place(cluster, q, owner_usage=usage).placements] == ["c", "m"]


def test_empty_inputs():
    assert place([], []) == Decision([], {}, [])
    d = place([], [req("k")])
    assert d.impossible == {"k": "no schedulable agent"}


# ---- property: random clusters and queues

def _random_case(rng):
    images = ["py", "r", "julia", "node"]
    agents = []
    for i in range(rng.randint(1, 25)):
        cpu = rng.choice([0.5, 1, 2, 4, 8])
        mem = rng.choice([1, 2, 4, 8]) * G
        gpu = rng.choice([0, 0, 1, 2])
        used = Slots(rng.choice([0, 0.1, 0.5]) * cpu, rng.randrange(0, mem // 2 + 1, M), 0)
        agents.append(AgentView(
            id=f"a{rng.randrange(1000):03d}-{i}", capacity=Slots(cpu, mem, gpu), used=used,
            labels={"zone": rng.choice("xyz")} if rng.random() < 0.7 else {},
            images=frozenset(rng.sample(images, rng.randint(1, 4))),
            schedulable=rng.random() < 0.9))
    queue = []
    for j in range(rng.randint(0, 60)):
        queue.append(Request(
            kernel_id=f"k{j}", owner=rng.choice(["u1", "u2", "u3"]), image=rng.choice(images),
            slots=Slots(rng.choice([0.1, 0.25, 0.5, 1, 2, 16]),
                        rng.choice([128, 512, 1024, 4096]) * M, rng.choice([0, 0, 0, 1])),
            constraints={"zone": rng.choice("xyz")} if rng.random() < 0.3 else {},
            enqueued_at=rng.choice([0.0, 1.0, 2.0, 3.0])))
    return agents, queue


@pytest.mark.parametrize("seed", range(200))
def test_property_no_overcommit_and_best_feasible(seed):
    rng = random.Random(seed)
    agents, queue = _random_case(rng)
    strategy = rng.choice(["concentrated", "dispersed"])
    d = place(agents, queue, strategy=strategy, fair_share=rng.random() < 0.5,
              owner_usage={"u1": Slots(cpu=4)} if rng.random() < 0.5 else None)

    placed = [p.kernel_id for p in d.placements]
    ids = placed + list(d.impossible) + d.waiting
    assert sorted(ids) == sorted(r.kernel_id for r in queue)  # each request exactly once

    by_kid = {r.kernel_id: r for r in queue}
    state = {a.id: a for a in agents}
    for p in d.placements:  # replay in decision order
        r = by_kid[p.kernel_id]
        assert feasible(state[p.agent_id], r) is None
        best = max(score(a, r, strategy) for a in state.values() if feasible(a, r) is None)
        assert math.isclose(score(state[p.agent_id], r, strategy), best, abs_tol=1e-9)
        a = state[p.agent_id]
        state[a.id] = dataclasses.replace(a, used=a.used + r.slots)

    assert all(a.used.fits_in(a.capacity) for a in state.values())  # never over-committed
    for kid in d.waiting:  # free room only shrinks, so what did not fit then does not fit now
        r = by_kid[kid]
        assert possible(agents, r) is None
        assert all(feasible(a, r) is not None for a in state.values())
    for kid, reason in d.impossible.items():
        assert possible(agents, by_kid[kid]) == reason
