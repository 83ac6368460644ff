// SPDX-License-Identifier: LGPL-3.0-or-later
// JupyterLab in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core), as a
// user clicks it: a new notebook, "Python 3 (Backend.AI)" picked in the kernel dialog, a cell
// typed and run with Shift+Enter, its output read, a screenshot saved, the kernel shut down.
//
//   node jupyterlab_ui.mjs <lab URL> <lab token> <work dir> <code> <expected output text>
//
// Talks JSON lines on stdout: {"event": "output", ...} once the output is there, then it waits
// for one line on stdin (the test checks the cluster meanwhile) before shutting the kernel down;
// {"event": "done", ...} at the end. Progress and failures go to stderr.

import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { chromium } from "playwright-core";

const [labUrl, labToken, workDir, code, expected] = process.argv.slice(2);
if (!expected) {
  console.error("usage: node jupyterlab_ui.mjs <lab URL> <lab token> <work dir> <code> <expected>");
  process.exit(2);
}
const KERNEL = "Python 3 (Backend.AI)";
const log = (...a) => console.error(new Date().toISOString(), ...a);
const emit = (o) => console.log(JSON.stringify(o));
const overall = setTimeout(() => {
  console.error("jupyterlab_ui: timed out");
  process.exit(3);
}, 150_000);

const stdinLines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function main() {
  const profile = path.join(workDir, "chromium-profile");
  fs.mkdirSync(profile, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1280, height: 800 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(60_000);
  page.on("pageerror", (e) => log("page error:", e.message));
  const shot = (name) => page.screenshot({ path: path.join(workDir, name) });
  try {
    return await drive(page, shot);
  } catch (e) {
    await shot("failure.png").catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
}

async function drive(page, shot) {
  const t0 = Date.now();
  await page.goto(`${labUrl}/lab?token=${encodeURIComponent(labToken)}`);
  await page.locator(".jp-Launcher").waitFor();
  log("lab is up");

  // File > New > Notebook asks which kernel: pick ours by its display name.
  await page.locator(".lm-MenuBar-item", { hasText: /^File$/ }).click();
  await page.locator(".lm-Menu-item", { hasText: /^New$/ }).first().hover();
  await page.locator(".lm-Menu-item", { hasText: /^Notebook$/ }).first().click();
  const dialog = page.locator(".jp-Dialog");
  await dialog.waitFor();
  await dialog.locator("select").selectOption({ label: KERNEL });
  await dialog.locator("button", { hasText: /^Select$/ }).click();
  await dialog.waitFor({ state: "detached" });
  log("notebook opened with", KERNEL);

  const panel = page.locator(".jp-NotebookPanel:visible");
  await panel.locator(".jp-Toolbar-kernelName", { hasText: KERNEL }).waitFor();
  await panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").waitFor({ timeout: 90_000 });
  const kernelReadyMs = Date.now() - t0;
  log("kernel idle after", kernelReadyMs, "ms");

  await panel.locator(".jp-Cell .cm-content").first().click();
  await page.keyboard.insertText(code);
  await page.keyboard.press("Shift+Enter");
  const out = panel.locator(".jp-OutputArea-output", { hasText: expected }).first();
  await out.waitFor();
  const text = await out.innerText();
  await shot("notebook.png");
  emit({ event: "output", text, screenshot: path.join(workDir, "notebook.png"), kernelReadyMs,
         cellInput: await panel.locator(".jp-Cell .cm-content").first().innerText() });

  await stdinLines.next(); // the test looks at the cluster while the kernel is up

  // Kernel > Shut Down Kernel (confirming if asked): the notebook is left without a kernel.
  await page.locator(".lm-MenuBar-item", { hasText: /^Kernel$/ }).click();
  await page.locator(".lm-Menu-item", { hasText: /^Shut Down Kernel$/ }).first().click();
  const confirm = page.locator(".jp-Dialog .jp-mod-accept");
  if (await confirm.waitFor({ timeout: 3_000 }).then(() => true, () => false)) await confirm.click();
  await panel.locator(".jp-Toolbar-kernelName", { hasText: "No Kernel" }).waitFor();
  await shot("shut-down.png");
  return { event: "done", elapsedMs: Date.now() - t0 };
}

main().then(
  (res) => {
    clearTimeout(overall);
    emit(res);
    process.exit(0);
  },
  (err) => {
    console.error("jupyterlab_ui failed:", err?.stack ?? err);
    process.exit(1);
  },
);
