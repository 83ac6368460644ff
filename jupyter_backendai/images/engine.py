"""Connecting to the Docker engine, with a message that says what to do when it is absent."""

from __future__ import annotations

import docker
from docker import APIClient

from .errors import ImageBuildError

#: Seconds to wait for one answer from the engine (builds stream, so this bounds silence).
DEFAULT_TIMEOUT = 600


def connect(timeout: int = DEFAULT_TIMEOUT) -> APIClient:
    """Return a low-level client (builds need its streamed JSON output), pinging it first."""
    try:
        client = docker.from_env(timeout=timeout).api
        client.ping()
    except Exception as exc:  # docker raises DockerException, requests errors, FileNotFoundError
        raise ImageBuildError(
            f"docker engine not reachable ({type(exc).__name__}): run scripts/ensure-docker.sh"
        ) from None
    return client


def image_id(client: APIClient, ref: str) -> str | None:
    """The id of a local image, or None when the engine does not have it."""
    try:
        return client.inspect_image(ref)["Id"]
    except docker.errors.ImageNotFound:
        return None
