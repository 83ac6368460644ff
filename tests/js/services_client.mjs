// SPDX-License-Identifier: LGPL-3.0-or-later
// A Backend.AI gateway driven by @jupyterlab/services, the client library of JupyterLab and of
// VS Code's Jupyter extension, the way those use it: settings with a token, a SessionManager
// over a KernelManager, kernel connections over the websocket.
//
//   node services_client.mjs <gateway base URL> <Backend.AI user token>
//
// Lists kernelspecs and kernels, starts a session, executes, interrupts a long sleep and checks
// that the kernel still answers with its variables, restarts and executes at once, shuts down.
// Prints one JSON object on its last stdout line; tests/test_gateway_jlab_services.py checks it.

import services from "@jupyterlab/services";
import WebSocket from "ws";

const { KernelAPI, KernelManager, KernelSpecAPI, ServerConnection, SessionAPI, SessionManager } = services;

const [baseUrl, token] = process.argv.slice(2);
if (!baseUrl || !token) {
  console.error("usage: node services_client.mjs <gateway URL> <token>");
  process.exit(2);
}

const settings = ServerConnection.makeSettings({
  baseUrl,
  wsUrl: baseUrl.replace(/^http/, "ws"),
  token,
  WebSocket,
});

const log = (...a) => console.error(new Date().toISOString(), ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Give up as a whole rather than hang the test.
const overall = setTimeout(() => {
  console.error("services_client: timed out");
  process.exit(3);
}, 150_000);

/** Run code; collect stdout, the execute_result's text/plain, errors and the reply. */
async function execute(kernel, code, onBusy) {
  const out = { stdout: "", result: null, error: null, status: null };
  const future = kernel.requestExecute({ code, stop_on_error: true });
  future.onIOPub = (msg) => {
    const t = msg.header.msg_type;
    if (t === "stream" && msg.content.name === "stdout") out.stdout += msg.content.text;
    else if (t === "execute_result") out.result = msg.content.data["text/plain"];
    else if (t === "error") out.error = msg.content.ename;
    else if (t === "status" && msg.content.execution_state === "busy" && onBusy) onBusy();
  };
  const reply = await future.done;
  out.status = reply.content.status;
  if (reply.content.status === "error") out.error = out.error ?? reply.content.ename;
  return out;
}

async function main() {
  const res = {};

  const specs = await KernelSpecAPI.getSpecs(settings);
  res.kernelspecs = {
    default: specs.default,
    names: Object.keys(specs.kernelspecs).sort(),
    display: Object.fromEntries(Object.entries(specs.kernelspecs).map(([k, v]) => [k, v.display_name])),
  };
  res.kernelsBefore = (await KernelAPI.listRunning(settings)).map((k) => k.id);
  log("kernelspecs", res.kernelspecs.names.length, "kernels", res.kernelsBefore.length);

  const kernelManager = new KernelManager({ serverSettings: settings });
  const sessionManager = new SessionManager({ kernelManager, serverSettings: settings });
  await sessionManager.ready;

  let t0 = Date.now();
  const session = await sessionManager.startNew({
    path: "services-client.ipynb",
    name: "services-client.ipynb",
    type: "notebook",
    kernel: { name: "backendai-python" },
  });
  const kernel = session.kernel;
  const info = await kernel.info;
  res.session = {
    id: session.id,
    kernelId: kernel.id,
    kernelName: kernel.name,
    implementation: info.implementation,
    language: info.language_info.name,
    startMs: Date.now() - t0,
  };
  res.kernelsDuring = (await KernelAPI.listRunning(settings)).map((k) => k.id);
  res.sessionsDuring = (await SessionAPI.listRunning(settings)).map((s) => ({ id: s.id, kernel: s.kernel?.id }));
  log("session", res.session);

  res.execute = await execute(
    kernel,
    "import os\nx = 6 * 7\nprint('hello from', 'backend.ai', os.getuid(), os.path.exists('/.dockerenv'))\nx",
  );
  log("execute", res.execute);

  // Interrupt a sleep once the kernel is busy with it.
  let busy;
  const busySeen = new Promise((r) => (busy = r));
  t0 = Date.now();
  const sleeping = execute(kernel, "import time\ntime.sleep(60)\nprint('slept through')", () => busy());
  await busySeen;
  await sleep(500);
  await kernel.interrupt();
  res.interrupt = { ...(await sleeping), elapsedMs: Date.now() - t0 };
  res.afterInterrupt = await execute(kernel, "x + 1");
  log("interrupt", res.interrupt, res.afterInterrupt);

  // Restart, then execute at once: the request waits for the new kernel, it is not lost.
  t0 = Date.now();
  await kernel.restart();
  res.afterRestart = { ...(await execute(kernel, "'x' in dir(), 7 * 6")), elapsedMs: Date.now() - t0, kernelId: kernel.id };
  log("restart", res.afterRestart);

  await session.shutdown();
  res.kernelsAfter = (await KernelAPI.listRunning(settings)).map((k) => k.id);
  res.sessionsAfter = (await SessionAPI.listRunning(settings)).map((s) => s.id);
  sessionManager.dispose();
  kernelManager.dispose();
  return res;
}

main().then(
  (res) => {
    clearTimeout(overall);
    console.log(JSON.stringify(res));
    process.exit(0);
  },
  (err) => {
    console.error("services_client failed:", err?.stack ?? err);
    process.exit(1);
  },
);
