// Sync seen from the UI: two devices edit the same workflow offline, sync
// through a real flowkeep-sync-server, and the browser on one of them shows
// the concurrent edit and the merged config that breaks a rule.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { flowkeepBin, freePort, launchBrowser, screenshot, startFlowkeep, tempDir } from "./support.mjs";

const serverBin = process.env.FLOWKEEP_SYNC_SERVER_BIN ?? path.join(path.dirname(flowkeepBin()), "flowkeep-sync-server");
let server;
let serverArgs;
let fk;
let browser;
let pwned;

const cli = (dataDir, ...args) =>
  execFileSync(flowkeepBin(), ["--data-dir", dataDir, ...args], {
    encoding: "utf8",
    env: { ...process.env, FLOWKEEP_ACTOR: path.basename(dataDir) },
  });
const json = (dataDir, ...args) => JSON.parse(cli(dataDir, "--json", ...args));

async function healthy(port) {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the sync server did not come up");
}

before(async () => {
  const serverDir = tempDir();
  const created = execFileSync(serverBin, ["--data-dir", serverDir, "workspace", "create", "team"], { encoding: "utf8" });
  const token = created.trim().split("\n").at(-1).split(" ").at(-1);
  const port = await freePort();
  serverArgs = { args: ["--data-dir", serverDir, "--listen", `127.0.0.1:${port}`], port };
  server = spawn(serverBin, serverArgs.args, { stdio: "ignore" });
  await healthy(port);

  const a = tempDir();
  const b = tempDir();
  const init = cli(a, "sync", "init", "--server", `ws://127.0.0.1:${port}/sync`, "--token", token);
  const join = init.match(/flowkeep-join:\S+/)?.[0];
  assert.ok(join, `sync init printed a join string: ${init}`);
  const wf = json(a, "workflow", "create", "--name", "Shared job", "--config",
    JSON.stringify({ fields: [{ key: "retries", type: "number" }, { key: "n", type: "number" }], values: { retries: 0, n: 1 } }));
  cli(a, "sync", "now");
  cli(b, "sync", "join", join, "--token", token);
  cli(b, "sync", "now");

  // Offline on both: the same value edited twice; a rule added on A while B
  // sets a value the rule forbids.
  cli(a, "config", "set", wf.id, "retries", "1");
  cli(b, "config", "set", wf.id, "retries", "2");
  const doc = json(a, "config", "get", wf.id);
  doc.fields[1].max = 5;
  cli(a, "config", "update", wf.id, "--config", JSON.stringify({ fields: doc.fields, values: doc.values }));
  cli(b, "config", "set", wf.id, "n", "9");
  for (const d of [a, b, a]) cli(d, "sync", "now");

  const merged = json(a, "workflow", "get", wf.id);
  assert.ok(merged.conflicts?.some((c) => c.field === "config.values.retries"), JSON.stringify(merged));
  assert.ok(merged.validation_errors?.some((e) => e.field === "values.n"), JSON.stringify(merged));

  // A workflow whose command was written on B: it arrives on A unapproved.
  pwned = path.join(tempDir(), "pwned");
  json(b, "workflow", "create", "--name", "Remote job", "--config",
    JSON.stringify({ fields: [], values: {}, run: { command: ["touch", pwned], timeout_s: 30 } }));
  for (const d of [b, a]) cli(d, "sync", "now");

  fk = await startFlowkeep(a);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await fk?.stop();
  server?.kill("SIGTERM");
});

test("the UI shows sync status, a concurrent edit and a merged config that breaks a rule", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(fk.url);
  await page.getByRole("status", { name: "Sync status" }).getByText(/^Sync on: synced/).waitFor();
  await page.locator(".workflow-list .select", { hasText: "Shared job" }).click();

  await page.getByText("Changes merged from another device left this configuration breaking its rules").waitFor();
  const nError = (await page.locator("#error-n").textContent()).trim();
  assert.equal(nError, "must be at most 5, got 9");
  const help = (await page.locator("#help-retries").textContent()).trim();
  assert.match(help, /^Edited on several devices: [12] vs [12]; the first is in effect\.$/);
  await screenshot(page, "09-sync-conflict");

  // Fixing and saving clears the flag.
  await page.locator("#value-n").fill("4");
  await page.getByRole("button", { name: "Save configuration" }).click();
  await page.getByText("Saved.").waitFor();
  const id = (await fk.api("list_workflows", {})).items.find((w) => w.name === "Shared job").id;
  const fixed = await fk.api("get_workflow", { id });
  assert.deepEqual(fixed.validation_errors ?? [], []);
  assert.equal(fixed.config.values.n, 4);
});

test("a command written on another device runs here only after Approve", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(fk.url);
  const row = page.locator(".workflow-list li", { hasText: "Remote job" });
  await row.getByText("needs approval").waitFor();
  await row.locator(".select").click();
  const banner = page.getByRole("alert", { name: "Needs approval" });
  await banner.getByText("Changed on another device.").waitFor();
  assert.match(await banner.textContent(), new RegExp(`now: .*touch.*${path.basename(pwned)}`));
  await screenshot(page, "10-needs-approval");

  await page.getByRole("button", { name: "Run now" }).click();
  const refused = page.locator(".workflow-head .error");
  await refused.waitFor();
  assert.match(await refused.textContent(), /will not run on this device/);
  assert.equal(fs.existsSync(pwned), false, "the unapproved command did not run");

  await banner.getByRole("button", { name: "Approve on this device" }).click();
  await banner.waitFor({ state: "detached" });
  await row.getByText("needs approval").waitFor({ state: "detached" });
  await page.getByRole("button", { name: "Run now" }).click();
  for (let i = 0; i < 100 && !fs.existsSync(pwned); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(fs.existsSync(pwned), true, "the approved command ran");
});

test("the sync badge follows the sync state by itself: a change waiting while the server is away, the server out of reach, all sent when it is back", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(fk.url);
  const badge = page.getByRole("status", { name: "Sync status" });
  await badge.getByText(/^Sync on: synced/).waitFor();
  const asked = [];
  page.on("request", (r) => r.url().includes("/api/sync_status") && asked.push(r.url()));

  const gone = new Promise((r) => server.once("exit", r));
  server.kill("SIGTERM");
  await gone;
  await fk.api("create_workflow", { name: "Made while the server is away" });
  // Pushed by the app (the page does not ask again): the change waiting,
  // then, a few seconds on, that the server cannot be reached.
  await badge.getByText(/1 change to send$/).waitFor({ timeout: 15_000 });
  await badge
    .getByText(/^Sync failed .*cannot reach the sync server at ws:\/\/127\.0\.0\.1:\d+\/sync; trying again, 1 change to send$/)
    .waitFor({ timeout: 20_000 })
    .catch(async (e) => {
      throw new Error(`${e.message}\nthe badge said: ${await badge.textContent()}`);
    });
  assert.match(await badge.getAttribute("class"), /error/);

  server = spawn(serverBin, serverArgs.args, { stdio: "ignore" });
  await healthy(serverArgs.port);
  // The app's background sync reconnects (backoff up to 10 s) and sends it.
  await badge.getByText(/^Sync on: synced [^,]*$/).waitFor({ timeout: 30_000 });
  assert.deepEqual(asked, [], "the badge did not ask for the sync state again");
});
