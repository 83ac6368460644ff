"""Which agents exist, what they offer, and whether they are still alive.

Agents prove they are alive by heartbeats; one that misses three is LOST, drops out of the
scheduler's snapshot, and its kernels are marked LOST by the caller. A manager that restarts
knows its agents from the store but treats them as unregistered until they call in again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .scheduler import AgentView, Slots


@dataclass
class AgentRecord:
    id: str
    info: dict[str, Any]           # capacity, labels, images, runtime, advertise_ip
    status: str = "ALIVE"          # ALIVE | LOST
    last_seen: float = field(default_factory=time.monotonic)
    registered: bool = True        # False until it registers with this manager process

    @property
    def schedulable(self) -> bool:
        return self.status == "ALIVE" and self.registered

    def images(self) -> list[dict[str, Any]]:
        return list(self.info.get("images", []))

    def to_dict(self, used: Slots) -> dict[str, Any]:
        return {
            "id": self.id, "status": self.status, "registered": self.registered,
            "runtime": self.info.get("runtime"), "advertise_ip": self.info.get("advertise_ip"),
            "capacity": self.info.get("capacity"), "used": used.to_dict(), "labels": self.info.get("labels", {}),
            "images": [i["name"] for i in self.images()],
            "last_seen_ago": round(time.monotonic() - self.last_seen, 1),
        }


class AgentRegistry:
    def __init__(self, heartbeat_interval: float, missed: int = 3):
        self.agents: dict[str, AgentRecord] = {}
        self.timeout = heartbeat_interval * missed

    def load(self, rows: list[dict[str, Any]]) -> None:
        """Agents known before a restart get a grace period of one timeout to call in."""
        for r in rows:
            if r["status"] == "ALIVE":
                self.agents[r["id"]] = AgentRecord(r["id"], r["info"], registered=False)

    def register(self, agent_id: str, info: dict[str, Any]) -> AgentRecord:
        rec = AgentRecord(agent_id, info)
        self.agents[agent_id] = rec
        return rec

    def heartbeat(self, agent_id: str) -> bool:
        """Record a heartbeat; False if the agent must register first."""
        rec = self.agents.get(agent_id)
        if rec is None or not rec.registered or rec.status != "ALIVE":
            return False
        rec.last_seen = time.monotonic()
        return True

    def expire(self) -> list[str]:
        """Mark agents silent for too long as LOST; return their ids."""
        now = time.monotonic()
        lost = []
        for rec in self.agents.values():
            if rec.status == "ALIVE" and now - rec.last_seen > self.timeout:
                rec.status = "LOST"
                lost.append(rec.id)
        return lost

    def catalog(self) -> dict[str, dict[str, Any]]:
        """The union of images the live agents report, by name."""
        out: dict[str, dict[str, Any]] = {}
        for rec in self.agents.values():
            if rec.status == "ALIVE":
                for img in rec.images():
                    out.setdefault(img["name"], img)
        return out

    def views(self, used: dict[str, Slots]) -> list[AgentView]:
        return [
            AgentView(
                id=rec.id,
                capacity=Slots.parse(rec.info.get("capacity", {})),
                used=used.get(rec.id, Slots()),
                labels=rec.info.get("labels", {}),
                images=frozenset(i["name"] for i in rec.images()),
                schedulable=rec.schedulable,
            )
            for rec in self.agents.values()
        ]
