"""Runtimes: where kernels actually run. ``docker`` is the real one; ``process`` runs kernels
as host processes for machines without a Docker engine (dev, Binder, the embedded default)."""

from .base import ImageInfo, KernelLaunch, Runtime, RuntimeError_, RuntimeKernel

__all__ = ["ImageInfo", "KernelLaunch", "Runtime", "RuntimeError_", "RuntimeKernel", "create_runtime"]


async def create_runtime(kind: str, **kwargs) -> Runtime:
    """``kind`` is "docker", "process" or "auto" (docker when an engine answers)."""
    if kind in ("docker", "auto"):
        from .docker import DockerRuntime

        try:
            return await DockerRuntime.connect(**kwargs)
        except RuntimeError_:
            if kind == "docker":
                raise
    from .process import ProcessRuntime

    return ProcessRuntime(**kwargs)
