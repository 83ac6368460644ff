# SPDX-License-Identifier: LGPL-3.0-or-later
"""``python -m jupyter_backendai.kernels --profile LANG -f CONNECTION_FILE``."""

from __future__ import annotations

import argparse
import sys

from .profile import ProfileError, load_profile


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jupyter_backendai.kernels", add_help=False)
    ap.add_argument("--profile", required=True, help="language profile (profiles/<name>.json)")
    args, rest = ap.parse_known_args(sys.argv[1:] if argv is None else argv)
    try:
        profile = load_profile(args.profile)
    except ProfileError as e:
        print(f"jupyter_backendai.kernels: {e}", file=sys.stderr)
        return 2
    from ipykernel.kernelapp import IPKernelApp

    from .wrapper import kernel_class

    IPKernelApp.launch_instance(argv=rest, kernel_class=kernel_class(profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
