"""Jail policies: per-image defaults, per-kernel overrides, and the JSON file the jail reads.

The file format (version 1) is a flat JSON object, documented in ``sandbox/README.md``::

    {"version": 1, "image": "python", "network": "listen", "max_procs": 256,
     "max_threads": 4096, "max_execs": 0, "exec_allow": ["/usr/bin/", ...],
     "writable": ["/home/work", "/tmp", ...], "landlock": "required"}

``python -m jupyter_backendai.jail [--image LANG] [--set KEY=JSON ...] [-o FILE]``
prints (or writes) a policy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

FORMAT_VERSION = 1
NETWORK_MODES = ("on", "off", "listen")
LANDLOCK_MODES = ("required", "best_effort")


class PolicyError(ValueError):
    """A policy or an override that the jail would refuse."""


# Files and directories a kernel writes besides its working directory.
DEVICE_FILES = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/pts",
                "/dev/shm"]

# Programs any kernel may run (entries that do not exist in an image are skipped by the jail;
# symlinks are resolved by the jail, so "/bin/sh" allows whatever shell it points to).
COMMON_EXEC = [
    "/bin/sh", "/bin/dash", "/bin/bash", "/usr/bin/env",
    *[f"/usr/bin/{p}" for p in (
        "ls cat cp mv rm mkdir rmdir touch echo head tail wc sort uniq cut tr tee date sleep true false pwd "
        "id uname basename dirname readlink realpath ln chmod du df find xargs grep sed awk mawk gawk gzip "
        "gunzip zcat tar which stat seq printf test expr diff cmp nproc less more file git unzip bzip2 xz "
        "md5sum sha256sum base64 tput clear locale getconf ldd").split()],
]
GCC_EXEC = ["/usr/bin/gcc", "/usr/bin/cc", "/usr/bin/g++", "/usr/bin/c++", "/usr/bin/cpp", "/usr/bin/as",
            "/usr/bin/ld", "/usr/bin/ld.bfd", "/usr/bin/ld.gold", "/usr/bin/make", "/usr/lib/gcc/"]
#: Where the compile-and-run engine writes the programs it built (and runs them from).
COMPILED_OUT = ["/tmp/backendai-build/"]


@dataclass
class Policy:
    """What the jail lets a kernel (and everything it starts) do."""

    image: str = ""
    #: "off": no AF_INET/AF_INET6 sockets at all; "listen": TCP sockets that can bind and accept
    #: but never connect (Landlock ABI >= 4; what an ipykernel needs for its ZeroMQ ports);
    #: "on": everything but raw sockets. AF_PACKET is always refused.
    network: str = "listen"
    #: live processes in the sandboxed tree, the kernel included (threads do not count)
    max_procs: int = 256
    #: live tasks (threads of all processes); a process creating one more is killed
    max_threads: int = 4096
    #: successful execs after the first one (the kernel itself); 0 = unlimited
    max_execs: int = 0
    #: programs that may be executed: exact files, "DIR/" for anything beneath DIR, "*" for any
    exec_allow: list[str] = field(default_factory=list)
    #: directories (and device files) beneath which writes are allowed; everything else is read-only
    writable: list[str] = field(default_factory=list)
    #: "required": refuse to start without Landlock; "best_effort": run without write confinement
    landlock: str = "required"

    # ----- checks and merging ------------------------------------------------------------------

    def validate(self) -> "Policy":
        if self.network not in NETWORK_MODES:
            raise PolicyError(f"network must be one of {NETWORK_MODES}, not {self.network!r}")
        if self.landlock not in LANDLOCK_MODES:
            raise PolicyError(f"landlock must be one of {LANDLOCK_MODES}, not {self.landlock!r}")
        for name, low in (("max_procs", 1), ("max_threads", 1), ("max_execs", 0)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise PolicyError(f"{name} must be an integer >= {low}, not {v!r}")
        for name in ("exec_allow", "writable"):
            v = getattr(self, name)
            if not isinstance(v, list) or not all(isinstance(p, str) for p in v):
                raise PolicyError(f"{name} must be a list of paths")
            for p in v:
                if not (p.startswith("/") or (name == "exec_allow" and p == "*")):
                    raise PolicyError(f"{name}: {p!r} is not an absolute path")
                if "\x00" in p or any(ord(c) > 0x7f for c in p):
                    raise PolicyError(f"{name}: {p!r}: only ASCII paths are supported")
        return self

    def merge(self, overrides: Mapping[str, Any] | None) -> "Policy":
        """A new policy with per-kernel overrides applied.

        A key replaces the default (``{"network": "off"}``, ``{"writable": [...]}``); for the
        two lists, ``"exec_allow+"`` / ``"writable+"`` append to the defaults instead, and
        ``"exec_allow-"`` / ``"writable-"`` remove entries. ``network`` also takes a bool.
        """
        if not overrides:
            return replace(self).validate()
        known = {f.name for f in fields(self)}
        new = replace(self, exec_allow=list(self.exec_allow), writable=list(self.writable))
        for key, value in overrides.items():
            base = key.rstrip("+-")
            if base not in known or (key != base and base not in ("exec_allow", "writable")):
                raise PolicyError(f"unknown policy override {key!r}")
            if key.endswith("+") or key.endswith("-"):
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, list):
                    raise PolicyError(f"{key} takes a list of paths")
                cur = getattr(new, base)
                if key.endswith("+"):
                    cur.extend(v for v in value if v not in cur)
                else:
                    setattr(new, base, [v for v in cur if v not in value])
                continue
            if base == "network" and isinstance(value, bool):
                value = "on" if value else "off"
            if base in ("exec_allow", "writable") and isinstance(value, (list, tuple)):
                value = list(value)
            setattr(new, base, value)
        return new.validate()

    # ----- the file ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        self.validate()
        d: dict[str, Any] = {"version": FORMAT_VERSION}
        d.update(asdict(self))
        if not d["image"]:
            del d["image"]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Policy":
        d = dict(d)
        if d.pop("version", None) != FORMAT_VERSION:
            raise PolicyError(f"policy version {FORMAT_VERSION} expected")
        d = {k: v for k, v in d.items() if not k.startswith("_")}
        if isinstance(d.get("network"), bool):
            d["network"] = "on" if d["network"] else "off"
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise PolicyError(f"unknown policy keys: {sorted(unknown)}")
        return cls(**d).validate()

    @classmethod
    def from_json(cls, text: str) -> "Policy":
        return cls.from_dict(json.loads(text))

    def write(self, path: str | os.PathLike[str], mode: int = 0o644) -> Path:
        """Write atomically (a kernel container mounts it read-only as /etc/jail.json)."""
        path = Path(path)
        text = self.to_json()
        fd, tmp = tempfile.mkstemp(prefix=".jail-", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return path


BASE = Policy(
    exec_allow=list(COMMON_EXEC),
    writable=["/home/work", "/tmp", "/var/tmp", *DEVICE_FILES],
)

#: Per-image defaults, keyed by language (``backendai/kernel-<lang>:<version>``).
IMAGE_DEFAULTS: dict[str, Policy] = {
    "python": replace(BASE, image="python", exec_allow=[
        "/opt/kernel/bin/python", "/usr/bin/python3", *COMMON_EXEC, *GCC_EXEC]),
    # The wrapper kernel (Python) starts node as its driver.
    "javascript": replace(BASE, image="javascript", exec_allow=[
        "/opt/kernel/bin/python", "/usr/bin/python3", "/usr/bin/node", "/usr/bin/nodejs", *COMMON_EXEC]),
    # The wrapper kernel starts lua5.4 as its driver.
    # The wrapper kernel (Python) starts ruby as its driver.
    "ruby": replace(BASE, image="ruby", exec_allow=[
        "/opt/kernel/bin/python", "/usr/bin/python3", "/usr/bin/ruby", "/usr/bin/ruby3.1", *COMMON_EXEC]),
    # The wrapper kernel (Python) starts perl as its driver.
    "perl": replace(BASE, image="perl", exec_allow=[
        "/opt/kernel/bin/python", "/usr/bin/python3", "/usr/bin/perl", "/usr/bin/perl5.36.0", *COMMON_EXEC]),
    "lua": replace(BASE, image="lua", exec_allow=[
        "/opt/kernel/bin/python", "/usr/bin/python3", "/usr/bin/lua5.4", "/usr/bin/lua", *COMMON_EXEC]),
    # The wrapper kernel starts php (php-cli) as its driver.
    "php": replace(BASE, image="php", exec_allow=[
        "/opt/kernel/bin/python", "/usr/bin/python3", "/usr/bin/php", "/usr/bin/php8.2", *COMMON_EXEC]),
    # The wrapper kernel starts java (JShell runs in the same JVM: no second process).
    "java": replace(BASE, image="java", exec_allow=[
        "/opt/kernel/bin/python", "/usr/bin/python3", "/usr/bin/java",
        "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", *COMMON_EXEC]),
    # The wrapper kernel starts R (/usr/bin/R is a shell script that execs the R binary).
    "r": replace(BASE, image="r", exec_allow=[
        "/opt/kernel/bin/python", "/usr/bin/python3", "/usr/bin/R", "/usr/lib/R/bin/R", "/usr/lib/R/bin/exec/R",
        "/usr/bin/Rscript", *COMMON_EXEC]),
    # The wrapper kernel starts a Python driver that keeps one bash running the cells.
    "bash": replace(BASE, image="bash", exec_allow=["/opt/kernel/bin/python", "/usr/bin/python3", *COMMON_EXEC]),
    # C and C++: the wrapper's Python driver runs gcc/g++ (cc1, cc1plus, collect2 and lto-wrapper
    # live under /usr/lib/gcc/; as and ld are in GCC_EXEC) and the programs they build, which
    # live in the build cache only.
    "c": replace(BASE, image="c", exec_allow=[
        "/opt/kernel/bin/python", "/usr/bin/python3", *GCC_EXEC, "/tmp/backendai-build/", *COMMON_EXEC]),
    "cpp": replace(BASE, image="cpp", exec_allow=[
        "/opt/kernel/bin/python", "/usr/bin/python3", *GCC_EXEC, "/tmp/backendai-build/", *COMMON_EXEC]),
    # The wrapper kernel starts octave-cli as its driver; plots go through gnuplot.
    "octave": replace(BASE, image="octave", exec_allow=[
        "/opt/kernel/bin/python", "/usr/bin/python3", "/usr/bin/octave-cli", "/usr/bin/octave-cli-7.3.0",
        "/usr/bin/octave", "/usr/bin/gnuplot", "/usr/bin/gnuplot-nox", *COMMON_EXEC]),
    # The compile-and-run engine (Python) builds cells with the go tool (which runs compile, link,
    # asm from its tool directory; cgo is off) and runs the programs it wrote to its build dir.
    "go": replace(BASE, image="go", exec_allow=[
        "/opt/kernel/bin/python", "/usr/bin/python3", "/usr/bin/go", "/usr/lib/go-1.19/bin/",
        "/usr/lib/go-1.19/pkg/tool/", *COMPILED_OUT, *COMMON_EXEC]),
    # The compile-and-run engine builds cells with rustc, which links through cc (gcc, as, ld).
    "rust": replace(BASE, image="rust", exec_allow=[
        "/opt/kernel/bin/python", "/usr/bin/python3", "/usr/bin/rustc", *GCC_EXEC, *COMPILED_OUT,
        *COMMON_EXEC]),
}


def image_lang(image: str) -> str:
    """``backendai/kernel-python:3.11`` -> ``python``; a bare language passes through."""
    name = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    return name[len("kernel-"):] if name.startswith("kernel-") else name


def policy_for_image(image: str, overrides: Mapping[str, Any] | None = None) -> Policy:
    """The image's default policy (the base one for images without their own) with overrides."""
    lang = image_lang(image) if image else ""
    base = IMAGE_DEFAULTS.get(lang) or replace(BASE, image=lang)
    return base.merge(overrides)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jupyter_backendai.jail", description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", default="python", help="image or language (default: python)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help='override, e.g. --set network=\'"off"\' --set max_procs=64 --set \'writable+=["/data"]\'')
    ap.add_argument("-o", "--output", help="write here instead of stdout")
    args = ap.parse_args(argv)
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep:
            ap.error(f"--set {item!r}: KEY=JSON expected")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    try:
        pol = policy_for_image(args.image, overrides)
    except PolicyError as e:
        print(f"policy: {e}", file=sys.stderr)
        return 2
    if args.output:
        pol.write(args.output)
    else:
        sys.stdout.write(pol.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
