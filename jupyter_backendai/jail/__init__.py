"""The jail around every kernel: policy generation for ``sandbox/jail`` (see sandbox/README.md)."""

from .policy import IMAGE_DEFAULTS, Policy, PolicyError, policy_for_image

__all__ = ["IMAGE_DEFAULTS", "Policy", "PolicyError", "policy_for_image"]
