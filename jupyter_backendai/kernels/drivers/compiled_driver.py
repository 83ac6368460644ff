# SPDX-License-Identifier: LGPL-3.0-or-later
"""Driver entry point of the compile-and-run languages (C, C++, ...): kernels/compiled/driver.py.

The language comes from BACKENDAI_COMPILED_LANG (the profile's env).
"""

import sys

from jupyter_backendai.kernels.compiled.driver import main

sys.exit(main())
