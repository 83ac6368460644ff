"""Build contexts as deterministic tar archives.

Docker's layer cache compares the files a COPY step sees; packing the context ourselves with
fixed owners, modes and times (and only the files we name) keeps a rebuild with nothing
changed a full cache hit, whatever happened to file times on disk.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Mapping

Source = Path | bytes


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    tar.addfile(info)


def make_context(entries: Mapping[str, Source]) -> bytes:
    """Pack ``{name in context: file, directory or bytes}`` into an uncompressed tar.

    Directories are added recursively (regular files only, sorted, no ``__pycache__``);
    symlinks are followed.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            source = entries[name]
            if isinstance(source, bytes):
                _add_bytes(tar, name, source)
            elif source.is_dir():
                _add_dir(tar, name)
                for path in sorted(source.rglob("*")):
                    if "__pycache__" in path.parts or path.suffix == ".pyc":
                        continue  # byte code differs run to run and would bust the cache
                    rel = f"{name}/{path.relative_to(source).as_posix()}"
                    if path.is_dir():
                        _add_dir(tar, rel)
                    elif path.is_file() and not path.name.startswith("."):
                        mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
                        _add_bytes(tar, rel, path.read_bytes(), mode)
            else:
                _add_bytes(tar, name, source.read_bytes())
    return buf.getvalue()
