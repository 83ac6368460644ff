"""Kernel images: the base image, host-filled wheelhouses and ``images/<lang>`` builds."""

from .build import build_image, build_images
from .catalog import ImageSpec, image_spec, languages
from .dockerbuild import BuildResult
from .errors import ImageBuildError
from .progress import Progress

__all__ = [
    "BuildResult", "ImageBuildError", "ImageSpec", "Progress",
    "build_image", "build_images", "image_spec", "languages",
]
