// The desktop window end to end: `flowkeep app` (built with the `native`
// feature) under its own Xvfb, driven by tauri-driver + WebKitWebDriver with plain
// W3C WebDriver calls. Run by scripts/test-desktop.sh inside scripts/with-xvfb.sh.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { eventually as poll, freePort, screenshotDir } from "../e2e/support.mjs";

const app = process.env.FLOWKEEP_NATIVE_BIN;
const driverBin = process.env.TAURI_DRIVER ?? "tauri-driver";
const dataDir = mkdtempSync(path.join(tmpdir(), "flowkeep-desktop-"));
// The window's own state (size, WebKit caches) in a temp home, not the user's.
const xdg = mkdtempSync(path.join(tmpdir(), "flowkeep-desktop-xdg-"));
let driver;
let base;

async function wd(method, url, body) {
  // An app that dies while starting leaves the session request unanswered;
  // fail in two minutes saying so rather than at fetch's five.
  const r = await fetch(`${base}${url}`, {
    method,
    signal: AbortSignal.timeout(120_000),
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await r.json();
  if (!r.ok) throw new Error(`${method} ${url}: ${JSON.stringify(json.value ?? json)}`);
  return json.value;
}

const eventually = (fn, ms = 15_000) => poll(fn, ms);

/** One app session: the window opens on `start`, closes on `stop`. */
class Window {
  async start() {
    const caps = {
      capabilities: {
        alwaysMatch: { browserName: "wry", "tauri:options": { application: app, args: ["--data-dir", dataDir, "app"] } },
      },
    };
    this.id = (await wd("POST", "/session", caps)).sessionId;
  }
  /**
   * Quits the app the way a desktop session does (SIGTERM: the window closes
   * normally and saves its size and position), then ends the session. Ending
   * the WebDriver session alone kills the app without that.
   */
  async stop() {
    spawnSync("pkill", ["-TERM", "-f", `^${app} `]);
    await eventually(async () => assert.notEqual(spawnSync("pgrep", ["-f", `^${app} `]).status, 0, "the app is still running"));
    await wd("DELETE", `/session/${this.id}`).catch(() => {});
  }
  async find(using, value) {
    return eventually(async () => Object.values(await wd("POST", `/session/${this.id}/element`, { using, value }))[0]);
  }
  css(selector) {
    return this.find("css selector", selector);
  }
  button(label) {
    return this.find("xpath", `//button[normalize-space()='${label}']`);
  }
  async click(el) {
    await wd("POST", `/session/${this.id}/element/${el}/click`, {});
  }
  async type(el, text) {
    await wd("POST", `/session/${this.id}/element/${el}/clear`, {});
    await wd("POST", `/session/${this.id}/element/${el}/value`, { text });
  }
  async text(el) {
    return (await wd("GET", `/session/${this.id}/element/${el}/text`)).trim();
  }
  async exec(script, args = []) {
    return wd("POST", `/session/${this.id}/execute/sync`, { script, args });
  }
  /** Chooses an option the way a user's choice arrives: value set, `change` fired. */
  async select(selector, value) {
    await eventually(async () => {
      const ok = await this.exec(
        "const s = document.querySelector(arguments[0]); if (!s) return false; Object.getOwnPropertyDescriptor(HTMLSelectElement.prototype, 'value').set.call(s, arguments[1]); s.dispatchEvent(new Event('change', { bubbles: true })); return true;",
        [selector, value],
      );
      assert.ok(ok, `no ${selector}`);
    });
  }
  async screenshot(name) {
    mkdirSync(screenshotDir, { recursive: true });
    writeFileSync(path.join(screenshotDir, `${name}.png`), Buffer.from(await wd("GET", `/session/${this.id}/screenshot`), "base64"));
  }
}

before(async () => {
  assert.ok(app, "set FLOWKEEP_NATIVE_BIN to a flowkeep built with --features native");
  const port = await freePort();
  const nativePort = await freePort();
  driver = spawn(driverBin, ["--port", String(port), "--native-port", String(nativePort), "--native-driver", "/usr/bin/WebKitWebDriver"], {
    stdio: ["ignore", "inherit", "inherit"],
    env: {
      ...process.env,
      FLOWKEEP_ACTOR: "desktop-user",
      XDG_CONFIG_HOME: path.join(xdg, "config"),
      XDG_DATA_HOME: path.join(xdg, "data"),
      XDG_CACHE_HOME: path.join(xdg, "cache"),
    },
  });
  base = `http://127.0.0.1:${port}`;
  await eventually(async () => assert.ok((await fetch(`${base}/status`)).ok));
});

after(async () => {
  if (driver && driver.exitCode === null) {
    const exited = new Promise((resolve) => driver.once("exit", resolve));
    driver.kill("SIGTERM");
    await exited;
  }
  // WebKit's helper processes may still be flushing their shader cache into
  // the temp home for a moment after the driver is gone; retry instead of
  // failing the run on a cleanup race.
  const gone = { recursive: true, force: true, maxRetries: 10, retryDelay: 200 };
  for (const dir of [dataDir, xdg]) {
    try {
      rmSync(dir, gone);
    } catch (e) {
      console.warn(`left ${dir} behind: ${e.message}`);
    }
  }
});

test("create, validate, save in the window; close, reopen, still there", async () => {
  const w = new Window();
  await w.start();
  assert.equal(await w.exec("return typeof window.__TAURI__?.core?.invoke"), "function", "the UI talks over Tauri IPC");
  await w.click(await w.button("New workflow"));
  await w.type(await w.css("dialog[open] input[name='name']"), "Desktop job");
  await w.click(await w.button("Create"));
  await eventually(async () => assert.equal(await w.text(await w.css(".workflow-head h2")), "Desktop job"));

  await w.click(await w.button("Add field"));
  await w.type(await w.css("input[aria-label='Key of field 1']"), "retries");
  await w.select("select[aria-label='Type of retries']", "number");
  await w.click(await w.find("xpath", "//summary[normalize-space()='Rules of retries']"));
  await w.type(await w.css("input[aria-label='Maximum of retries']"), "5");
  await w.type(await w.css("#value-retries"), "9");
  await w.click(await w.button("Save configuration"));
  await eventually(async () => assert.equal(await w.text(await w.css("#error-retries")), "must be at most 5, got 9"));
  await w.screenshot("desktop-01-error");

  await w.type(await w.css("#value-retries"), "3");
  await w.click(await w.button("Save configuration"));
  await eventually(async () => assert.equal(await w.text(await w.css(".actions .notice")), "Saved."));
  await w.screenshot("desktop-02-saved");
  // A file field offers the native open dialog here (a typed path only in a browser).
  await w.click(await w.button("Add field"));
  await w.type(await w.css("input[aria-label='Key of field 2']"), "input");
  await w.select("select[aria-label='Type of input']", "file");
  await w.css("button[aria-label='Choose a file for input']");
  await wd("POST", `/session/${w.id}/window/rect`, { width: 1100, height: 720 });
  await w.stop();
  assert.ok(existsSync(path.join(xdg, "config", "org.flowkeep.desktop", ".window-state.json")), "the window saved its state");

  // A new window on the same data: the workflow and its value are there.
  const again = new Window();
  await again.start();
  await again.click(await again.find("xpath", "//ul[@aria-label='Workflow list']//button[contains(., 'Desktop job')]"));
  await eventually(async () => assert.equal(await again.exec("return document.querySelector('#value-retries')?.value"), "3"));
  await again.screenshot("desktop-03-reopened");
  const rect = await wd("GET", `/session/${again.id}/window/rect`);
  assert.deepEqual([rect.width, rect.height], [1100, 720], "the window comes back at the size it was closed at");
  await again.stop();
});

test("a change made in a terminal shows in the open window by itself (pushed, not polled)", async () => {
  const w = new Window();
  await w.start();
  await w.css("ul[aria-label='Workflow list']");
  // The window's views never read on a timer: this appears because the app
  // tells the window (a Tauri event), as `flowkeep ui` tells a browser.
  const made = spawnSync(app, ["--data-dir", dataDir, "workflow", "create", "--name", "From the terminal"], { encoding: "utf8" });
  assert.equal(made.status, 0, made.stderr);
  await w.find("xpath", "//ul[@aria-label='Workflow list']//button[contains(., 'From the terminal')]");
  await w.screenshot("desktop-04-pushed");
  await w.stop();
});

test("a run's output streams into its details in the window while it runs", async () => {
  const cli = (...args) => {
    const r = spawnSync(app, ["--data-dir", dataDir, "--json", ...args], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const go = path.join(dataDir, "go");
  const config = {
    fields: [],
    values: {},
    run: { command: ["sh", "-c", `echo 'step one done'; while [ ! -e '${go}' ]; do sleep 0.05; done; echo 'step two done'`] },
  };
  const wf = cli("workflow", "create", "--name", "Talker", "--config", JSON.stringify(config));
  // A run started in a terminal on this device: its output is here.
  const running = spawn(app, ["--data-dir", dataDir, "run", wf.id], { stdio: "ignore" });
  let run;
  await eventually(async () => {
    run = cli("exec", "list", wf.id).items?.[0];
    assert.equal(run?.status, "running");
  });
  const w = new Window();
  await w.start();
  await w.css("ul[aria-label='Workflow list']");
  // The window has no address bar: open the run the way a person does.
  await w.click(await w.find("xpath", "//ul[@aria-label='Workflow list']//button[contains(., 'Talker')]"));
  await w.click(await w.find("xpath", "//button[@role='tab' and normalize-space()='Runs']"));
  await w.click(await w.button("Details"));
  const log = () => w.exec("return document.querySelector('[aria-label=\"Output log\"]')?.innerText ?? ''");
  await eventually(async () => assert.match(await log(), /step one done/));
  assert.doesNotMatch(await log(), /step two done/);
  writeFileSync(go, "");
  await eventually(async () => assert.match(await log(), /step one done\nstep two done/));
  await eventually(async () =>
    assert.equal(await w.exec("return document.querySelector('[aria-label=\"Output log\"]')?.getAttribute('aria-busy')"), "false"),
  );
  await w.screenshot("desktop-05-output");
  await new Promise((r) => (running.exitCode !== null ? r() : running.once("exit", r)));
  await w.stop();
});
