"""Names and numbers that several parts must agree on (see DESIGN.md, "Interfaces that stay fixed")."""

MANAGER_PORT = 8091          # manager REST
MANAGER_RPC_PORT = 8092      # manager's agent-facing ZeroMQ ROUTER
KERNEL_PORT_RANGE = (30000, 31000)  # host ports handed to kernels, inclusive
GATEWAY_PORT = 8888

IMAGE_PREFIX = "backendai/kernel-"
BASE_IMAGE = "backendai/base:bookworm"
KERNELSPEC_PREFIX = "backendai-"
PROVISIONER_NAME = "backendai-provisioner"

# Image labels: what an agent reads to report its catalog and start a kernel.
LABEL_KERNELSPEC = "ai.backend.kernelspec"      # JSON kernel.json (argv is the in-container argv)
LABEL_LANG = "ai.backend.lang"                  # "python", "javascript", ...
LABEL_MIN_CPU = "ai.backend.resource.min.cpu"   # e.g. "1"
LABEL_MIN_MEM = "ai.backend.resource.min.mem"   # e.g. "256m"
LABEL_UID = "ai.backend.uid"                    # uid the kernel runs as inside the container
LABEL_JAIL = "ai.backend.jail"                  # path of the policy file the image's jail reads

# Container labels: what a restarted agent reads to re-adopt its kernels.
LABEL_MANAGED = "ai.backend.managed"            # "1" on every container an agent starts
LABEL_AGENT = "ai.backend.agent"                # agent id
LABEL_KERNEL = "ai.backend.kernel"              # container's own id (stable across hand-out)

# Inside a container, where the agent puts the connection file.
CONTAINER_CONNECTION_FILE = "/run/backendai/connection.json"

# Client configuration.
ENV_URL = "BACKENDAI_URL"
ENV_TOKEN = "BACKENDAI_TOKEN"
RUNTIME_CONNECTION_FILE = "backendai-manager.json"  # in `jupyter --runtime-dir`
