# SPDX-License-Identifier: LGPL-3.0-or-later
"""Execute round trip: send execute_request('1+1') on shell, wait for its execute_reply.

Every row is a Session with the same ``rtt()`` (one request, one reply, perf_counter around
it). The ZeroMQ rows share one code path, a BlockingKernelClient with only its shell channel
open, built from the kernel's connection info:

  ipykernel (local)               a local process (KernelManager "python3")        [baseline]
  docker run (same image)         the agent's container options, started by the CLI [baseline]
  backendai (docker-proxy)        the provisioner's kernel (KernelManager "backendai-python"),
                                  reached as clients reach it: host ports through docker-proxy
  backendai (container IP)        the same kernel reached on its bridge address: what the
                                  proxy costs
  jupyter server websocket        a stock `jupyter server` -> local ipykernel, v1 websocket [baseline]
  gateway websocket               `jupyter backendai gateway` -> Backend.AI kernel, v1 websocket

Then, per language with a built image (``--languages``, default all): that language's kernel
against its bare runtime, the same trivial statement (see _languages.py), in a second table.

To add a row (gateway websocket, another language), write a function that returns a Session
(an object with ``rtt() -> float`` and ``close()``) and append a Row to the ``rows`` list in main().

Rows are measured in interleaved blocks (warm-up first), so drift hits every row alike.
Run: python benchmarks/execute_rtt.py [--runs N] [--warmup N] [--languages all|none|ruby,c,...]
Exit status is non-zero only when something fails; a slow figure is a figure, not a failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import (  # noqa: E402
    KERNEL_NAME, Cluster, DockerRunKernel, Sandbox, console, docker_client, fmt_ms, fmt_ratio, log, median,
    quantile,
)
from _languages import LANGUAGES, BareRepl, LangBench  # noqa: E402
from _websocket import WsSession, gateway, stock_server  # noqa: E402

CODE = "1+1"
BLOCK = 20  # samples per row before moving on to the next row


class Session(Protocol):
    def rtt(self) -> float: ...
    def close(self) -> None: ...


@dataclass
class Row:
    name: str
    open: Callable[[], Session]
    baseline: bool = False
    lang: str = ""  # set on the per-language rows (kernel and bare runtime)
    note: str = ""
    session: Session | None = None
    samples: list[float] = field(default_factory=list)


# ----- the ZeroMQ session (one code path for every kernel reached over its own ports) ------

class ZmqSession:
    def __init__(self, connection: dict[str, Any], on_close: Callable[[], None] = lambda: None,
                 code: str = CODE):
        from jupyter_client import BlockingKernelClient

        self._on_close = on_close
        self.code = code
        self.kc = BlockingKernelClient()
        self.kc.load_connection_info(connection)
        self.kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        self._ready(timeout=120)

    def _ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.kc.kernel_info()
            try:
                while True:
                    if self.kc.get_shell_msg(timeout=0.2)["msg_type"] == "kernel_info_reply":
                        # Drain replies to re-sent requests, so that rtt() sees only its own.
                        while True:
                            try:
                                self.kc.get_shell_msg(timeout=0.2)
                            except Exception:
                                return
            except Exception:  # queue.Empty: re-send
                continue
        raise RuntimeError(f"kernel did not answer kernel_info within {timeout:g} s")

    def rtt(self) -> float:
        t0 = time.perf_counter()
        msg_id = self.kc.execute(self.code)
        while True:
            reply = self.kc.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        t = time.perf_counter() - t0
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"execute failed: {reply['content']}")
        return t

    def close(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            self._on_close()


def kernel_manager_session(kernel_name: str, cluster: Cluster | None = None,
                           rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                           code: str = CODE) -> ZmqSession:
    from jupyter_client import KernelManager

    if cluster is not None:  # the provisioner finds its manager through these
        os.environ["BACKENDAI_URL"], os.environ["BACKENDAI_TOKEN"] = cluster.url, cluster.token
    km = KernelManager(kernel_name=kernel_name)
    km.start_kernel()
    try:
        conn = dict(km.get_connection_info())
        if rewrite:
            conn = rewrite(conn)
        return ZmqSession(conn, on_close=lambda: km.shutdown_kernel(now=True), code=code)
    except BaseException:
        km.shutdown_kernel(now=True)
        raise


def container_ip_of(cluster: Cluster, conn: dict[str, Any]) -> dict[str, Any]:
    """The same kernel on its bridge address (the kernel binds 0.0.0.0 on the host port numbers)."""
    for c in docker_client().containers.list(filters={"label": f"ai.backend.agent={cluster.agent_id}"}):
        published = {int(b[0]["HostPort"]) for b in (c.attrs["NetworkSettings"]["Ports"] or {}).values() if b}
        if int(conn["shell_port"]) in published:
            ip = next(n["IPAddress"] for n in c.attrs["NetworkSettings"]["Networks"].values() if n.get("IPAddress"))
            return {**conn, "ip": ip}
    raise RuntimeError("could not find the provisioner kernel's container")


def docker_run_session(sandbox: Sandbox) -> ZmqSession:
    import subprocess

    k = DockerRunKernel(sandbox)
    subprocess.run(k.argv(), check=True, capture_output=True)
    try:
        return ZmqSession(k.connection, on_close=k.remove)
    except BaseException:
        k.remove()
        raise


def language_rows(wanted: str) -> list[Row]:
    """A kernel row and a bare-runtime row for each wanted language whose image is built."""
    from jupyter_backendai.images.catalog import image_spec, languages
    from jupyter_backendai.images.errors import ImageBuildError

    if wanted == "none":
        return []
    names = languages() if wanted == "all" else [w.strip() for w in wanted.split(",") if w.strip()]
    client = docker_client()
    rows: list[Row] = []
    for lang in names:
        bench: LangBench | None = LANGUAGES.get(lang)
        if bench is None:
            raise SystemExit(f"execute_rtt: no benchmark statement for language {lang!r} (known: {', '.join(LANGUAGES)})")
        try:
            tag = image_spec(lang).tag
        except ImageBuildError as e:
            raise SystemExit(f"execute_rtt: {e}") from None
        try:
            client.images.get(tag)
        except Exception:
            if wanted != "all":
                raise SystemExit(f"execute_rtt: image {tag} is not built (jupyter-backendai images build {lang})")
            log(f"skipping {lang}: image {tag} not built")
            continue
        rows.append(Row(f"{lang} kernel", lambda b=bench: kernel_manager_session(b.kernel_name, code=b.statement),
                        lang=lang, note=bench.statement))
        rows.append(Row(f"{lang} bare runtime", lambda b=bench, t=tag: BareRepl(t, b), lang=lang,
                        note="read-eval loop on docker run -i"))
    return rows


# ----- report -----------------------------------------------------------------------------

def report_languages(rows: list[Row], runs: int) -> None:
    from rich.table import Table

    t = Table(title=f"per language: one trivial statement, kernel round trip vs the bare runtime ({runs} runs)")
    for col in ("language", "statement", "kernel median", "kernel p90", "bare median", "kernel / bare",
                "kernel / python kernel"):
        t.add_column(col, justify="left" if col in ("language", "statement") else "right")
    by_lang: dict[str, dict[str, Row]] = {}
    for r in rows:
        by_lang.setdefault(r.lang, {})["bare" if r.name.endswith("bare runtime") else "kernel"] = r
    # ipykernel in its image is the reference for what the Jupyter protocol itself costs.
    py = median(by_lang["python"]["kernel"].samples) if "python" in by_lang else None
    for lang, pair in by_lang.items():
        k, b = median(pair["kernel"].samples), median(pair["bare"].samples)
        t.add_row(lang, pair["kernel"].note, fmt_ms(k), fmt_ms(quantile(pair["kernel"].samples, 0.9)),
                  fmt_ms(b), fmt_ratio(k, b), fmt_ratio(k, py) if py else "")
    console().print(t)


def report(rows: list[Row], runs: int, warmup: int, elapsed: float) -> None:
    from rich.table import Table

    lang_rows = [r for r in rows if r.lang]
    rows = [r for r in rows if not r.lang]
    base = {r.name: median(r.samples) for r in rows if r.baseline}
    t = Table(title=f"execute('{CODE}') round trip, shell request -> execute_reply "
                    f"({runs} runs per row after {warmup} warm-up runs)")
    t.add_column("kernel")
    for col in ("median", "p90", "p99", "min"):
        t.add_column(col, justify="right")
    for name in base:
        t.add_column(f"vs {name.split(' (')[0]}", justify="right")
    t.add_column("note")
    for r in rows:
        med = median(r.samples)
        t.add_row(r.name, fmt_ms(med), fmt_ms(quantile(r.samples, 0.9)), fmt_ms(quantile(r.samples, 0.99)),
                  fmt_ms(min(r.samples)), *[fmt_ratio(med, b) for b in base.values()], r.note)
    con = console()
    con.print(t)
    if lang_rows:
        report_languages(lang_rows, runs)
    con.print(f"total {elapsed:.0f} s", highlight=False)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=200, help="timed round trips per row (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed round trips per row first (default 20)")
    p.add_argument("--languages", default="all",
                   help="per-language rows: all (every built image), none, or a comma list (default all)")
    args = p.parse_args()
    if args.runs < 1 or args.warmup < 0:
        p.error("--runs must be at least 1 and --warmup at least 0")
    started = time.monotonic()
    sandbox: Sandbox | None = None
    rows: list[Row] = []
    try:
        sandbox = Sandbox()
        log(f"sandbox {sandbox.dir}")
        cluster = Cluster(sandbox, "pool1", pool_size=1).start()
        log(f"cluster up at {cluster.url}")
        sb = sandbox
        rows = [
            Row("ipykernel (local)", lambda: kernel_manager_session("python3"), baseline=True),
            Row("docker run (same image)", lambda: docker_run_session(sb), baseline=True,
                note="host ports via docker-proxy"),
            Row("backendai (docker-proxy)", lambda: kernel_manager_session(KERNEL_NAME, cluster),
                note="what clients get"),
            Row("backendai (container IP)",
                lambda: kernel_manager_session(KERNEL_NAME, cluster, lambda c: container_ip_of(cluster, c)),
                note="same image, no proxy (diagnostic)"),
        ]
        gw, stock = gateway(sb), stock_server(sb)
        rows += [
            Row("jupyter server websocket (local ipykernel)", lambda: WsSession(stock, "python3", CODE), baseline=True,
                note="stock jupyter server, v1 protocol"),
            Row("gateway websocket (backendai)", lambda: WsSession(gw, KERNEL_NAME, CODE),
                note="jupyter backendai gateway, v1 protocol"),
        ]
        rows += language_rows(args.languages)
        for r in rows:
            r.session = r.open()
            sandbox.on_close(r.session.close)
            log(f"opened {r.name}")
        cluster.wait_pool(1)  # no pool refill running while we measure
        for r in rows:
            for _ in range(args.warmup):
                r.session.rtt()  # type: ignore[union-attr]
        done = 0
        while done < args.runs:
            n = min(BLOCK, args.runs - done)
            for r in rows:
                r.samples.extend(r.session.rtt() for _ in range(n))  # type: ignore[union-attr]
            done += n
        for r in rows:
            log(f"{r.name:<44} median {fmt_ms(median(r.samples))}")
        report(rows, args.runs, args.warmup, time.monotonic() - started)
        return 0
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    except Exception as e:
        import traceback

        traceback.print_exc()
        log(f"FAILED: {type(e).__name__}: {e}")
        return 1
    finally:
        if sandbox is not None:
            sandbox.close()
            if sandbox.leaked:
                return 1  # noqa: B012 -- a leaked container is a failure


if __name__ == "__main__":
    sys.exit(main())
