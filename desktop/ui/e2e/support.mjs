// Shared set-up for the browser tests: a real `flowkeep ui` on a temp data
// dir, Debian's Chromium driven by playwright-core (never a downloaded one).

import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "../../..");
export const screenshotDir = path.join(repoRoot, "target", "ui-screenshots");

export function flowkeepBin() {
  const bin = process.env.FLOWKEEP_BIN;
  if (!bin) throw new Error("set FLOWKEEP_BIN to the flowkeep binary (scripts/test.sh does)");
  return bin;
}

export function tempDir() {
  return mkdtempSync(path.join(tmpdir(), "flowkeep-e2e-"));
}

/**
 * Starts `flowkeep ui` (on a fresh data dir unless one is given, on a port
 * the OS picks unless one is given); resolves once it prints its URL.
 */
export async function startFlowkeep(dataDir = tempDir(), port = 0) {
  const child = spawn(flowkeepBin(), ["--data-dir", dataDir, "--json", "ui", "--port", String(port), "--no-open"], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, FLOWKEEP_ACTOR: "e2e-user" },
  });
  const line = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once("line", resolve);
    child.once("exit", (code) => reject(new Error(`flowkeep ui exited with ${code}`)));
  });
  const info = JSON.parse(line);
  const api = async (command, input = {}) => {
    const r = await fetch(`http://127.0.0.1:${info.port}/api/${command}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${info.token}` },
      body: JSON.stringify(input),
    });
    const body = await r.json();
    if (!r.ok) throw new Error(`${command}: ${JSON.stringify(body)}`);
    return body;
  };
  return {
    ...info,
    dataDir,
    api,
    /** Stops it; the data dir goes too unless `keep`. */
    async stop({ keep = false } = {}) {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      if (!keep) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

export async function screenshot(page, name) {
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: path.join(screenshotDir, `${name}.png`), fullPage: false });
}

/** A free 127.0.0.1 port the OS picked. */
export async function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Polls `fn` until it returns without throwing; `onGiveUp` runs before the last error is thrown. */
export async function eventually(fn, ms = 5000, onGiveUp = async () => {}) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > end) {
        await onGiveUp().catch(() => {});
        throw e;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
