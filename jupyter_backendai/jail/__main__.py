"""``python -m jupyter_backendai.jail [--image LANG] [--set KEY=JSON ...] [-o FILE]``: print or write a policy."""

import sys

from .policy import main

sys.exit(main())
