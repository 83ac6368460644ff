"""jupyter-backendai: Backend.AI rebuilt Jupyter-native.

Kernels run in sandboxed containers on a cluster of agents, placed by a manager, and every
client speaks plain Jupyter wire messages to them.
"""

__version__ = "0.1.0"
