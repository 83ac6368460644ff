"""``jupyter backendai ...`` (also ``jupyter-backendai``): thin commands over the real parts.

No business logic lives here: each command configures a component, runs it, and turns its
errors into one line.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from jupyter_core.application import JupyterApp, base_aliases, base_flags
from jupyter_core.paths import jupyter_data_dir
from rich.console import Console
from rich.table import Table
from traitlets import Bool, Float, Integer, Unicode

from . import __version__, names

console = Console(soft_wrap=True)
err = Console(stderr=True)


def default_state_dir() -> str:
    return os.path.join(jupyter_data_dir(), "backendai")


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(code)


async def _serve_until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


class _Base(JupyterApp):
    version = __version__

    def _log_level_default(self) -> int:
        return 20  # INFO: services say what they do

    def run(self, coro: Any) -> Any:
        from .client import ManagerError

        try:
            return asyncio.run(coro)
        except ManagerError as e:
            fail(str(e))
        except KeyboardInterrupt:
            sys.exit(130)


# ----- services ----------------------------------------------------------------------------

service_aliases = {
    **base_aliases,
    "state-dir": "ServiceApp.state_dir",
    "port": "Manager.port",
    "ip": "Manager.ip",
    "rpc-port": "Manager.rpc_port",
    "rpc-ip": "Manager.rpc_ip",
    "runtime": "Agent.runtime",
    "heartbeat": "ServiceApp.heartbeat_interval",
    "advertise-ip": "Agent.advertise_ip",
    "manager": "Agent.manager",
    "agent-id": "Agent.agent_id",
    "keys-dir": "Agent.keys_dir",
    "port-range": "Agent.port_range",
}


class ServiceApp(_Base):
    aliases = service_aliases
    state_dir = Unicode(config=True, help="Where state lives (default: <jupyter data dir>/backendai).")
    heartbeat_interval = Float(5.0, config=True, help="Agents' heartbeat interval in seconds.")

    def _state(self) -> str:
        return self.state_dir or self.parent_state() or default_state_dir()

    def parent_state(self) -> str:
        return getattr(self.parent, "state_dir", "") if self.parent else ""

    def _manager(self) -> Any:
        from .manager.app import Manager

        return Manager(parent=self, state_dir=self._state(), heartbeat_interval=self.heartbeat_interval)

    def _agent(self, state_dir: str | None = None) -> Any:
        from .agent.agent import Agent

        return Agent(parent=self, state_dir=state_dir or os.path.join(self._state(), "agent"),
                     heartbeat_interval=self.heartbeat_interval)


class UpApp(ServiceApp):
    description = "Manager and one local agent in one process: the embedded default."
    write_connection = Bool(True, config=True, help="Write the runtime connection file for local clients.")

    def start(self) -> None:
        self.run(self._main())

    async def _main(self) -> None:
        from .client import runtime_connection_file

        manager = self._manager()
        await manager.start()
        agent = self._agent()
        agent.manager = f"tcp://127.0.0.1:{manager.rpc_port}"
        agent.keys_dir = str(manager.keys.directory)
        try:
            await agent.start()
        except Exception as e:
            await manager.stop()
            fail(f"agent failed to start: {e}")
        assert agent.rt is not None
        try:
            await agent.wait_registered(60)
        except asyncio.TimeoutError:
            await agent.stop()
            await manager.stop()
            fail("the local agent did not register with the manager within 60 s")
        if agent.rt.kind == "docker":
            console.print(f"runtime: docker (kernels run in containers; images: {', '.join(i.name for i in agent.catalog) or 'none built yet'})", highlight=False)
        else:
            why = "as configured" if agent.runtime == "process" else "no Docker engine answers"
            console.print(f"runtime: process ({why}: kernels run as local processes, without isolation)", highlight=False)
        conn = runtime_connection_file()
        if self.write_connection:
            conn.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(conn, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"url": manager.url, "token": manager.admin_token, "pid": os.getpid()}, f)
        console.print(f"manager: {manager.url}  (token in {conn if self.write_connection else Path(self._state()) / 'admin-token'})", highlight=False)
        try:
            await _serve_until_signalled()
        finally:
            await agent.stop()
            await manager.stop()
            if self.write_connection and conn.exists() and json.loads(conn.read_text()).get("pid") == os.getpid():
                conn.unlink()


class ManagerApp(ServiceApp):
    description = "Run the manager: REST API, scheduler, and the agents' RPC endpoint."

    def start(self) -> None:
        self.run(self._main())

    async def _main(self) -> None:
        manager = self._manager()
        await manager.start()
        console.print(f"manager: {manager.url}; agents dial tcp://{manager.rpc_ip}:{manager.rpc_port}; "
                      f"admin token in {Path(self._state()) / 'admin-token'}", highlight=False)
        try:
            await _serve_until_signalled()
        finally:
            await manager.stop()


class AgentApp(ServiceApp):
    description = "Run an agent that dials the manager (--manager tcp://HOST:8092) and runs kernels."
    agent_state_dir = Unicode("", config=True, help="The agent's own state dir (default: <state-dir>/agent).")
    aliases = {**service_aliases, "agent-state-dir": "AgentApp.agent_state_dir"}

    def start(self) -> None:
        self.run(self._main())

    async def _main(self) -> None:
        agent = self._agent(self.agent_state_dir or None)
        if not agent.keys_dir:
            agent.keys_dir = os.path.join(self._state(), "curve")
        try:
            await agent.start()
        except Exception as e:
            fail(f"agent failed to start: {e}")
        assert agent.rt is not None
        console.print(f"agent {agent.agent_id}: {agent.rt.kind} runtime, manager {agent.manager}", highlight=False)
        try:
            await _serve_until_signalled()
        finally:
            await agent.stop()


# ----- images and kernelspecs -----------------------------------------------------------------

class ImagesBuildApp(_Base):
    description = "Build kernel images: jupyter backendai images build [LANG...]"
    flags = {**base_flags, "rebuild-base": ({"ImagesBuildApp": {"rebuild_base": True}}, "Rebuild the base image too.")}
    rebuild_base = Bool(False, config=True)

    def start(self) -> None:
        from .images import build_images
        from .images.errors import ImageBuildError

        try:
            tags = build_images(self.extra_args or None, rebuild_base=self.rebuild_base)
        except ImageBuildError as e:
            fail(str(e))
        for r in tags:
            state = "up to date" if r.rebuilt_steps == 0 else f"{r.rebuilt_steps} of {r.steps} steps rebuilt"
            console.print(f"built {r.tag} ({state})", highlight=False)


class ImagesApp(_Base):
    description = "Kernel images."
    subcommands = {"build": (ImagesBuildApp, ImagesBuildApp.description)}

    def start(self) -> None:
        if self.subapp is None:
            fail("usage: jupyter backendai images build [LANG...]")
        self.subapp.start()


class KernelspecInstallApp(_Base):
    description = "Install the backendai-* kernelspecs."
    flags = {
        **base_flags,
        "user": ({"KernelspecInstallApp": {"user": True}}, "Install for this user."),
        "sys-prefix": ({"KernelspecInstallApp": {"sys_prefix": True}}, "Install into sys.prefix (the venv)."),
    }
    aliases = {**base_aliases, "prefix": "KernelspecInstallApp.prefix"}
    user = Bool(False, config=True)
    sys_prefix = Bool(False, config=True)
    prefix = Unicode("", config=True)

    def start(self) -> None:
        from .kernelspec import install_kernelspecs

        installed = install_kernelspecs(self.extra_args or None, user=self.user, sys_prefix=self.sys_prefix,
                                        prefix=self.prefix or None)
        for path in installed:
            console.print(f"installed {path}", highlight=False)


class KernelspecApp(_Base):
    description = "Kernelspecs."
    subcommands = {"install": (KernelspecInstallApp, KernelspecInstallApp.description)}

    def start(self) -> None:
        if self.subapp is None:
            fail("usage: jupyter backendai kernelspec install [--user|--sys-prefix|--prefix DIR]")
        self.subapp.start()


# ----- clients ------------------------------------------------------------------------------

class RunApp(_Base):
    description = "Execute a notebook on a Backend.AI kernel: jupyter backendai run NOTEBOOK [-o OUT] [--kernel NAME]"
    output = Unicode("", config=True, help="Where to write the executed notebook.")
    kernel = Unicode("", config=True, help="Kernelspec (default: the notebook's, else backendai-python).")
    timeout = Integer(600, config=True, help="Seconds a cell may run.")
    aliases = {**base_aliases, "o": "RunApp.output", "output": "RunApp.output", "kernel": "RunApp.kernel",
               "timeout": "RunApp.timeout"}

    def start(self) -> None:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError

        if len(self.extra_args) != 1:
            fail("usage: jupyter backendai run NOTEBOOK [-o OUT] [--kernel NAME]")
        path = Path(self.extra_args[0])
        if not path.exists():
            fail(f"no notebook {path}")
        nb = nbformat.read(path, as_version=4)
        kernel = self.kernel or nb.metadata.get("kernelspec", {}).get("name", "")
        if not kernel.startswith(names.KERNELSPEC_PREFIX):
            kernel = f"{names.KERNELSPEC_PREFIX}python"
        client = NotebookClient(nb, kernel_name=kernel, timeout=self.timeout,
                                resources={"metadata": {"path": str(path.parent)}})
        failed = None
        try:
            client.execute()
        except CellExecutionError as e:
            failed = e
        except Exception as e:
            fail(f"{path}: {' '.join(str(e).split())[:400]}")
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            console.rule(f"[{cell.get('execution_count') or ' '}] cell {i}", style="dim")
            for out in cell.get("outputs", []):
                console.print(_render_output(out), highlight=False, markup=False)
        if self.output:
            nbformat.write(nb, self.output)
            console.print(f"wrote {self.output}", highlight=False)
        if failed is not None:
            fail(f"{path}: a cell failed: {str(failed).strip().splitlines()[-1]}")


def _render_output(out: dict[str, Any]) -> str:
    kind = out.get("output_type")
    if kind == "stream":
        return out.get("text", "").rstrip("\n")
    if kind in ("execute_result", "display_data"):
        data = out.get("data", {})
        if "text/plain" in data:
            return data["text/plain"]
        return f"<{', '.join(data)}>"
    if kind == "error":
        return f"{out.get('ename')}: {out.get('evalue')}"
    return ""


class _ClientApp(_Base):
    url = Unicode("", config=True, help="Manager URL (default: BACKENDAI_URL or the `up` runtime file).")
    token = Unicode("", config=True, help="Token (default: BACKENDAI_TOKEN or the `up` runtime file).")
    aliases = {**base_aliases, "url": "_ClientApp.url", "token": "_ClientApp.token"}

    def manager(self) -> Any:
        from .client import ManagerAddress, ManagerClient

        return ManagerClient(ManagerAddress.discover(self.url, self.token), request_timeout=30)


class PsApp(_ClientApp):
    description = "List kernels."
    flags = {**base_flags, "all": ({"PsApp": {"all_users": True}}, "All users' kernels (admin).")}
    all_users = Bool(False, config=True)

    def start(self) -> None:
        kernels = self.run(self.manager().list_kernels(self.all_users))
        t = Table("ID", "OWNER", "IMAGE", "STATUS", "AGENT", "CPU", "MEM", box=None)
        for k in kernels:
            t.add_row(k["id"], k["owner"], k["image"], k["status"], k["agent"] or "-",
                      f"{k['resources']['cpu']:g}", f"{k['resources']['mem'] / 2**20:.0f}M")
        console.print(t)


class AgentsApp(_ClientApp):
    description = "List agents."

    def start(self) -> None:
        agents = self.run(self.manager().list_agents())
        t = Table("ID", "STATUS", "RUNTIME", "ADDRESS", "CPU used/total", "MEM used/total", "IMAGES", box=None)
        for a in agents:
            cap, used = a["capacity"] or {}, a["used"]
            t.add_row(a["id"], a["status"], a["runtime"] or "-", a["advertise_ip"] or "-",
                      f"{used['cpu']:g}/{cap.get('cpu', 0):g}",
                      f"{used['mem'] / 2**30:.1f}/{cap.get('mem', 0) / 2**30:.1f}G", ", ".join(a["images"]))
        console.print(t)


class KillApp(_ClientApp):
    description = "Destroy a kernel: jupyter backendai kill ID"

    def start(self) -> None:
        if not self.extra_args:
            fail("usage: jupyter backendai kill ID [ID...]")
        client = self.manager()

        async def kill_all() -> None:
            for kid in self.extra_args:
                await client.delete_kernel(kid)
                console.print(f"killed {kid}", highlight=False)

        self.run(kill_all())


class BackendAIApp(_Base):
    name = "jupyter-backendai"
    description = "Backend.AI kernels for Jupyter: run the cluster, build images, use kernels."
    state_dir = Unicode("", config=True, help="State dir shared by subcommands.")
    subcommands = {
        "up": (UpApp, UpApp.description),
        "manager": (ManagerApp, ManagerApp.description),
        "agent": (AgentApp, AgentApp.description),
        "images": (ImagesApp, ImagesApp.description),
        "kernelspec": (KernelspecApp, KernelspecApp.description),
        "run": (RunApp, RunApp.description),
        "ps": (PsApp, PsApp.description),
        "agents": (AgentsApp, AgentsApp.description),
        "kill": (KillApp, KillApp.description),
    }
    examples = "jupyter backendai gateway --ip=0.0.0.0   # Jupyter Server (port 8888) whose kernels run here, per user token"

    def start(self) -> None:
        if self.subapp is None:
            self.print_subcommands()
            fail("a subcommand is required", 2)
        self.subapp.start()


def main() -> None:
    if sys.argv[1:2] == ["gateway"]:
        # A Jupyter Server application of its own (ExtensionApp.launch_instance makes the server).
        from .gateway.app import GatewayApp

        GatewayApp.launch_instance(sys.argv[2:])
        return
    BackendAIApp.launch_instance()


if __name__ == "__main__":
    main()
