"""Running one ``docker build`` through the engine API and following its JSON stream."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from docker import APIClient

from .errors import ImageBuildError
from .progress import Progress


@dataclass
class BuildResult:
    """What a build produced; ``log`` lets callers (and tests) see which steps hit the cache."""

    tag: str
    image_id: str
    log: list[str] = field(default_factory=list)

    @property
    def steps(self) -> int:
        """Number of Dockerfile steps the builder ran."""
        return sum(1 for line in self.log if line.startswith("Step "))

    @property
    def cached_steps(self) -> int:
        """Steps answered from the layer cache (legacy builder prints "Using cache")."""
        return sum(1 for line in self.log if line.strip() == "---> Using cache")

    @property
    def rebuilt_steps(self) -> int:
        """Steps that ran a container or made a layer (FROM, ENV-less steps count as cached)."""
        return sum(1 for line in self.log if line.strip().startswith("---> Running in"))


def run_build(
    client: APIClient,
    context: bytes,
    tag: str,
    progress: Progress,
    *,
    labels: dict[str, str] | None = None,
    nocache: bool = False,
) -> BuildResult:
    """Build ``context`` (a tar with a Dockerfile at its root) and tag it; stream output."""
    log: list[str] = []
    image_id = ""
    try:
        stream = client.build(
            fileobj=io.BytesIO(context), custom_context=True, tag=tag, labels=labels,
            rm=True, forcerm=True, nocache=nocache, pull=False, decode=True,
        )
        for chunk in stream:
            if "error" in chunk or "errorDetail" in chunk:
                message = chunk.get("error") or chunk["errorDetail"].get("message", "")
                last = next((line for line in reversed(log) if line.strip()), "")
                detail = " ".join(str(message).split())
                hint = f" (last output: {last.strip()[:200]})" if last and last.strip() not in detail else ""
                raise ImageBuildError(f"building {tag} failed: {detail}{hint}")
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            text = chunk.get("stream") or chunk.get("status") or ""
            for line in text.splitlines():
                if line.strip():
                    log.append(line.rstrip())
                    progress.update(line)
    except ImageBuildError:
        raise
    except Exception as exc:
        raise ImageBuildError(f"building {tag} failed: {type(exc).__name__}: {exc}") from None
    if not image_id:
        image_id = client.inspect_image(tag)["Id"]
    return BuildResult(tag=tag, image_id=image_id, log=log)
