"""Which per-kernel jail overrides a user may ask for: pure policy, no I/O.

An admin may set anything the jail accepts. Anyone else may only tighten the image's
defaults (less network, smaller budgets, fewer programs or writable paths): a kernel is never
looser than its image's policy unless an admin said so.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..jail.policy import Policy, PolicyError, policy_for_image

NETWORK_STRICTNESS = {"on": 0, "listen": 1, "off": 2}
BUDGETS = ("max_procs", "max_threads", "max_execs")


class OverrideRefused(Exception):
    """A user asked for more than the image's policy allows; ``str()`` says what."""


def _loosens(base: Policy, new: Policy) -> str | None:
    if NETWORK_STRICTNESS[new.network] < NETWORK_STRICTNESS[base.network]:
        return f"network {new.network!r} is looser than the image's {base.network!r}"
    for name in BUDGETS:
        b, n = getattr(base, name), getattr(new, name)
        # 0 means "no budget" for max_execs: only a budget at or under the default tightens.
        if (b == 0 and n != 0 and name != "max_execs") or (b != 0 and (n == 0 or n > b)):
            return f"{name} {n} exceeds the image's {b}"
    for name in ("exec_allow", "writable"):
        extra = sorted(set(getattr(new, name)) - set(getattr(base, name)))
        if extra:
            return f"{name} adds {', '.join(extra)}"
    if base.landlock == "required" and new.landlock != "required":
        return "landlock can't be relaxed"
    return None


def check_overrides(image: str, overrides: Mapping[str, Any] | None, is_admin: bool) -> dict[str, Any]:
    """Validate ``overrides`` for ``image``; return them unchanged, or raise.

    Raises PolicyError for an override the jail would refuse, OverrideRefused for one that
    this user may not make.
    """
    if not overrides:
        return {}
    base = policy_for_image(image)
    new = base.merge(overrides)  # PolicyError on bad input
    if not is_admin:
        why = _loosens(base, new)
        if why:
            raise OverrideRefused(f"only an admin can loosen the jail: {why}")
    return dict(overrides)


__all__ = ["OverrideRefused", "PolicyError", "check_overrides"]
