"""Reading the host's configured Debian mirror, so the base image comes from where apt does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class AptSource:
    """One ``deb`` line (or one URI of a deb822 stanza)."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def _one_line_sources(text: str) -> list[AptSource]:
    found = []
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()  # drop [options]
        if len(words) >= 3 and words[0] == "deb":
            found.append(AptSource(words[1], (words[2],), tuple(words[3:])))
    return found


def _deb822_sources(text: str) -> list[AptSource]:
    found = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        for uri in fields.get("uris", "").split():
            found.append(AptSource(uri, tuple(fields.get("suites", "").split()),
                                   tuple(fields.get("components", "").split())))
    return found


def host_sources(root: Path = Path("/etc/apt")) -> list[AptSource]:
    """All enabled ``deb`` sources of the host, in apt's reading order."""
    found: list[AptSource] = []
    main = root / "sources.list"
    if main.is_file():
        found += _one_line_sources(main.read_text(errors="replace"))
    parts = root / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                found += _one_line_sources(path.read_text(errors="replace"))
            elif path.suffix == ".sources":
                found += _deb822_sources(path.read_text(errors="replace"))
    return found


def debian_mirror(sources: list[AptSource] | None = None) -> str:
    """The host's main Debian archive URI (not the security one), or deb.debian.org."""
    sources = host_sources() if sources is None else sources
    for src in sources:
        if any(s.startswith("bookworm") and "security" not in s for s in src.suites):
            return src.uri.rstrip("/")
    for src in sources:
        if src.uri.rstrip("/").endswith("/debian"):
            return src.uri.rstrip("/")
    return DEFAULT_MIRROR


def security_mirror(sources: list[AptSource] | None = None) -> str | None:
    """The host's Debian security archive URI, if it has one configured."""
    sources = host_sources() if sources is None else sources
    for src in sources:
        if any(s.endswith("-security") for s in src.suites):
            return src.uri.rstrip("/")
    return None


def sources_list(suite: str, sources: list[AptSource] | None = None) -> str:
    """A ``sources.list`` for the image: the host's mirrors for ``suite``, updates, security."""
    sources = host_sources() if sources is None else sources
    mirror = debian_mirror(sources)
    lines = [f"deb {mirror} {suite} main", f"deb {mirror} {suite}-updates main"]
    security = security_mirror(sources)
    if security:
        lines.append(f"deb {security} {suite}-security main")
    return "\n".join(lines) + "\n"
