// End to end: a new user's tasks in a real Chromium against a real
// `flowkeep ui`, with a screenshot of each main screen.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import path from "node:path";
import { eventually as poll, flowkeepBin, launchBrowser, screenshot, startFlowkeep } from "./support.mjs";

let fk;
let browser;
let page;

before(async () => {
  fk = await startFlowkeep();
  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  page = await context.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
});

after(async () => {
  await browser?.close();
  await fk?.stop();
});

/** `eventually` that shows what the page showed when it gave up. */
const eventually = (fn, ms = 5000) =>
  poll(fn, ms, async () => {
    await screenshot(page, "failure");
    console.error((await page.locator("body").innerText()).slice(0, 4000));
  });

const text = async (selector) => ((await page.locator(selector).textContent()) ?? "").trim();
// A virtualized table's spacer rows (above and below the rows in view) are not runs.
const rowsOf = (label) => page.getByRole("table", { name: label }).locator("tbody tr:not(.spacer)");
const workflowNames = async () => page.locator(".workflow-list .name").allTextContents();
/** A row's action, from its compact menu. */
const rowAction = async (action, name) => {
  await page.getByRole("button", { name: `Actions for ${name}` }).click();
  await page.getByRole("menuitem", { name: `${action} ${name}` }).click();
};

test("without the token the page says which address to open", async () => {
  await page.goto(`http://127.0.0.1:${fk.port}/`);
  await page.getByText("This page needs the address").waitFor();
});

test("create a workflow with inline validation", async () => {
  await page.goto(fk.url);
  await page.getByText("No workflows yet").waitFor();
  assert.ok(!page.url().includes("token="), "the token is removed from the address bar");
  await page.getByRole("button", { name: "New workflow" }).click();
  const dialog = page.getByRole("dialog", { name: "New workflow" });
  await dialog.getByLabel("Name").fill("Nightly ETL");
  await dialog.getByLabel("Version").fill("one");
  await dialog.getByLabel("Tags (comma-separated)").fill("etl, nightly");
  await eventually(async () => assert.match(await text("#wf-version-error"), /semantic version/));
  await screenshot(page, "01-create-dialog");
  await dialog.getByLabel("Version").fill("1.0.0");
  await dialog.getByRole("button", { name: "Create" }).click();
  await page.getByRole("heading", { name: "Nightly ETL" }).waitFor();
  assert.deepEqual(await workflowNames(), ["Nightly ETL"]);
});

test("typed config fields: client and server errors beside the field, save, reload", async () => {
  const addField = async (key, type) => {
    await page.getByRole("button", { name: "Add field" }).click();
    const keys = page.locator(".definition input[aria-label^='Key of field']");
    const last = keys.last();
    await last.fill(key);
    await page.getByLabel(`Type of ${key}`).selectOption(type);
  };
  const rules = async (key) => page.locator("summary", { hasText: `Rules of ${key}` }).click();

  await addField("retries", "number");
  await rules("retries");
  await page.getByLabel("Minimum of retries").fill("0");
  await page.getByLabel("Maximum of retries").fill("5");
  await page.getByLabel("retries must be a whole number").check();
  await addField("mode", "select");
  await rules("mode");
  await page.getByLabel("Options of mode").fill("fast, safe");
  await page.getByLabel("Options of mode").blur();
  await addField("payload", "json");
  await addField("input", "file");
  await rules("input");
  await page.getByLabel("Extensions of input").fill("csv");
  await page.getByLabel("Extensions of input").blur();
  assert.equal(await page.getByRole("button", { name: "Choose a file for input" }).count(), 0, "no native dialog in a browser");
  await addField("enabled", "boolean");
  await addField("port", "number");
  await rules("port");
  await page.getByLabel("Custom rule of port").selectOption("port");
  await page.getByLabel("mode is required").check();

  // Client-side checks, from the zod schema built from these definitions.
  await page.locator("#value-retries").fill("9");
  await page.locator("#value-payload").fill("{bad");
  // A JSON value is edited in a code editor that marks a syntax error where
  // it is, as it is typed.
  await page.locator(".json-editor .cm-lint-marker-error").first().waitFor();
  assert.equal(await page.getByRole("textbox", { name: "payload (json)" }).getAttribute("contenteditable"), "true");
  await page.locator("#value-input").fill("/data/in.txt");
  await page.getByRole("button", { name: "Save configuration" }).click();
  await eventually(async () => assert.equal(await text("#error-retries"), "must be between 0 and 5, got 9"));
  assert.match(await text("#error-payload"), /^is not valid JSON/);
  assert.equal(await text("#error-input"), "must be a file ending in .csv");
  assert.equal(await text("#error-mode"), "is required");
  assert.equal(await page.locator("#value-retries").getAttribute("aria-invalid"), "true");
  await screenshot(page, "02-config-errors");

  // A rule only the server knows (the named `port` rule): its error comes
  // back from the API and is shown beside the same field.
  await page.locator("#value-retries").fill("3");
  await page.locator("#value-payload").fill('{"batch": 100}');
  await page.locator("#value-input").fill("/data/in.csv");
  await page.locator("#value-mode").selectOption("safe");
  await page.locator("#value-enabled").check();
  await page.locator("#value-port").fill("70000");
  await page.getByRole("button", { name: "Save configuration" }).click();
  await eventually(async () => assert.equal(await text("#error-port"), "must be a port number between 1 and 65535, got 70000"));
  assert.match(await text(".actions .notice"), /^Not saved/);
  const before = await fk.api("get_config", { workflow_id: (await fk.api("list_workflows", {})).items[0].id });
  assert.deepEqual(before.fields, [], "a refused save changed nothing");

  await page.locator("#value-port").fill("8080");
  await page.getByRole("button", { name: "Save configuration" }).click();
  await eventually(async () => assert.equal(await text(".actions .notice"), "Saved."));
  assert.equal(await text("#error-port"), "");
  await screenshot(page, "03-config-saved");

  // Reload: everything came from the server, typed.
  await page.reload();
  await page.locator(".workflow-list .select", { hasText: "Nightly ETL" }).click();
  await eventually(async () => assert.equal(await page.locator("#value-retries").inputValue(), "3"));
  assert.equal(await page.locator("#value-mode").inputValue(), "safe");
  assert.equal(await page.locator("#value-enabled").isChecked(), true);
  assert.equal(JSON.parse(await page.locator("#value-payload").innerText()).batch, 100);
  const id = (await fk.api("list_workflows", {})).items[0].id;
  const stored = await fk.api("get_config", { workflow_id: id });
  assert.deepEqual(stored.values, { retries: 3, mode: "safe", payload: { batch: 100 }, input: "/data/in.csv", enabled: true, port: 8080 });
  assert.deepEqual(stored.fields.map((f) => f.key), ["retries", "mode", "payload", "input", "enabled", "port"]);
  assert.equal(stored.fields[0].max, 5);

  // Reorder and remove definitions.
  await page.getByLabel("Move port up").click();
  await page.getByLabel("Move port up").click();
  await page.getByLabel("Remove field enabled").click();
  await page.getByRole("button", { name: "Save configuration" }).click();
  await eventually(async () => assert.equal(await text(".actions .notice"), "Saved."));
  const after = await fk.api("get_config", { workflow_id: id });
  assert.deepEqual(after.fields.map((f) => f.key), ["retries", "mode", "payload", "port", "input"]);
  assert.equal(after.values.enabled, undefined);
});

test("a change made elsewhere shows up; unsaved edits here are kept and warned about", async () => {
  const id = (await fk.api("list_workflows", {})).items[0].id;
  await fk.api("set_config_value", { workflow_id: id, key: "retries", value: 4 });
  await eventually(async () => assert.equal(await page.locator("#value-retries").inputValue(), "4"), 10_000);

  await page.locator("#value-retries").fill("5");
  await fk.api("set_config_value", { workflow_id: id, key: "retries", value: 1 });
  await page.getByText("This configuration changed elsewhere").waitFor({ timeout: 10_000 });
  assert.equal(await page.locator("#value-retries").inputValue(), "5", "the edit in progress is kept");
  await page.getByRole("button", { name: "Save configuration" }).click();
  // Said in words (no ids, no "revision"), in the error style.
  await eventually(async () => assert.match(await text(".actions .notice.error"), /^Not saved: this configuration was changed elsewhere/));
  await page.getByRole("button", { name: "Cancel" }).click();
  await eventually(async () => assert.equal(await page.locator("#value-retries").inputValue(), "1"));
  await fk.api("set_config_value", { workflow_id: id, key: "retries", value: 3 });
  await eventually(async () => assert.equal(await page.locator("#value-retries").inputValue(), "3"), 10_000);
});

test("edit, duplicate, search, and delete with confirmation", async () => {
  await rowAction("Edit", "Nightly ETL");
  const edit = page.getByRole("dialog", { name: "Edit Nightly ETL" });
  await edit.getByLabel("Description").fill("Loads yesterday's orders");
  await edit.getByRole("button", { name: "Save" }).click();
  await page.getByText("Loads yesterday's orders").first().waitFor();

  await rowAction("Duplicate", "Nightly ETL");
  await eventually(async () => assert.deepEqual(await workflowNames(), ["Nightly ETL", "Nightly ETL (copy)"]));
  await page.getByRole("heading", { name: "Nightly ETL (copy)" }).waitFor();

  await eventually(async () => assert.equal(await text(".workflow-manager .count"), "2 workflows"));
  await page.getByLabel("Search").fill("copy");
  await eventually(async () => assert.deepEqual(await workflowNames(), ["Nightly ETL (copy)"]));
  await eventually(async () => assert.equal(await text(".workflow-manager .count"), "1 workflow match"));
  await page.getByLabel("Search").fill("");
  await page.getByLabel("Tag").fill("ni");
  // Tags in use are suggested as the filter is typed.
  await eventually(async () =>
    assert.deepEqual(await page.locator("#tags-in-use option").evaluateAll((os) => os.map((o) => o.value)), ["nightly"]),
  );
  await page.getByLabel("Tag").fill("nightly");
  await eventually(async () => assert.equal((await workflowNames()).length, 2));
  await page.getByLabel("Tag").fill("");
  await page.getByLabel("Descending").check();
  await eventually(async () => assert.deepEqual(await workflowNames(), ["Nightly ETL (copy)", "Nightly ETL"]));
  await page.getByLabel("Descending").uncheck();
  await screenshot(page, "04-workflows");

  // Cancel first: nothing happens. Then confirm.
  await rowAction("Delete", "Nightly ETL (copy)");
  const confirm = page.getByRole("dialog", { name: "Delete workflow" });
  await confirm.getByRole("button", { name: "Cancel" }).click();
  assert.equal((await workflowNames()).length, 2);
  await rowAction("Delete", "Nightly ETL (copy)");
  await confirm.getByRole("button", { name: "Delete" }).click();
  await eventually(async () => assert.deepEqual(await workflowNames(), ["Nightly ETL"]));
  assert.equal((await fk.api("list_workflows", {})).items.length, 1);
});

test("runs: filter, scroll, details, delete, delete old runs, export", async () => {
  const id = (await fk.api("list_workflows", {})).items[0].id;
  const day = 86_400_000;
  const now = Date.now();
  const executions = [];
  for (let i = 0; i < 45; i++) {
    const started = now - i * 2 * day - 60_000;
    executions.push({
      workflow_id: id,
      status: i % 3 === 0 ? "failed" : "succeeded",
      started_at: started,
      completed_at: started + 1500,
      exit_code: i % 3 === 0 ? 2 : 0,
      output: { stdout_tail: `run ${i} done\n`, result: { rows: i } },
    });
  }
  await fk.api("import_runs", { runs: executions });

  await page.locator(".workflow-list .select", { hasText: "Nightly ETL" }).click();
  await page.getByRole("tab", { name: "Runs" }).click();
  // All 45 are loaded (a page is 50); only the rows in view are in the document.
  await eventually(async () => assert.equal(await text("#panel-runs .count"), "45 runs"));
  const table = page.getByRole("table", { name: "Run list" });
  assert.equal(await table.getAttribute("data-rows"), "45");
  const inView = await rowsOf("Run list").count();
  assert.ok(inView > 5 && inView < 45, `${inView} of 45 rows in the document`);
  // Scrolled to its end, the list shows the oldest run last.
  await page.locator("#panel-runs .run-scroll").evaluate((el) => (el.scrollTop = el.scrollHeight));
  await eventually(async () => assert.equal(await rowsOf("Run list").last().getAttribute("aria-rowindex"), "46"));
  await page.locator("#panel-runs .run-scroll").evaluate((el) => (el.scrollTop = 0));
  await eventually(async () => assert.equal(await rowsOf("Run list").first().getAttribute("aria-rowindex"), "2"));

  await page.getByLabel("Status", { exact: true }).selectOption("failed");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await eventually(async () => assert.equal(await rowsOf("Run list").count(), 15));
  for (const s of await page.locator("tbody .status").allTextContents()) assert.equal(s, "failed");

  // Date range: the last 10 days (runs every 2 days: 0, 2, 4, 6, 8 days ago; failed ones 0 and 6).
  const iso = (t) => new Date(t).toISOString().slice(0, 10);
  await page.getByLabel("From").fill(iso(now - 9 * day));
  await page.getByLabel("To").fill(iso(now));
  await page.getByRole("button", { name: "Apply filters" }).click();
  await eventually(async () => assert.equal(await rowsOf("Run list").count(), 2));
  await screenshot(page, "05-runs");

  await rowsOf("Run list").first().getByRole("button", { name: /^Details/ }).click();
  const details = page.getByRole("dialog", { name: "Run details" });
  await details.getByText("run 0 done").waitFor();
  assert.match(await details.locator("dl").textContent(), /Exit code2/);
  await screenshot(page, "06-run-details");
  await details.getByRole("button", { name: "Close" }).click();

  await rowsOf("Run list").first().getByRole("button", { name: /^Delete the run/ }).click();
  await page.getByRole("dialog", { name: "Delete run" }).getByRole("button", { name: "Delete run" }).click();
  await eventually(async () => assert.equal(await rowsOf("Run list").count(), 1));
  assert.equal((await fk.api("count_runs", { workflow_id: id })).count, 44);

  // Export what the filter shows (failed, last 10 days): one run.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export", exact: true }).click()]);
  const csv = readFileSync(await download.path(), "utf8").trim().split("\n");
  assert.equal(csv.length, 2, csv.join("\n"));
  assert.match(download.suggestedFilename(), /\.csv$/);

  // Bulk: failed runs older than 30 days, counted before confirming.
  await page.getByLabel("From").fill("");
  await page.getByLabel("To").fill("");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.getByRole("button", { name: "Delete old runs…" }).click();
  const bulk = page.getByRole("dialog", { name: "Delete old runs" });
  const expected = executions.filter((e, i) => i !== 0 && e.status === "failed" && e.started_at < startOfDay(now - 30 * day)).length;
  await eventually(async () => assert.equal(await bulk.getByRole("status").textContent(), `${expected} runs with status failed will be deleted.`));
  await screenshot(page, "07-delete-old-runs");
  await bulk.getByRole("button", { name: `Delete ${expected} runs` }).click();
  await page.getByText(`Deleted ${expected} runs.`).waitFor();
  assert.equal((await fk.api("count_runs", { workflow_id: id })).count, 44 - expected);
});

test("run now: set the command, run, watch it finish, see its result; a refused run says why", async () => {
  const script = path.join(fk.dataDir, "job.py");
  writeFileSync(script, "import json, sys, time\ncfg = json.load(sys.stdin)\ntime.sleep(1)\nprint('working on', cfg['mode'])\nprint(json.dumps({'retries_seen': cfg['retries']}))\n");
  await page.getByRole("tab", { name: "Configuration" }).click();
  await page.getByLabel("Command (one argument per line)").fill(`python3\n${script}`);
  await page.getByLabel("Timeout (seconds)").fill("0");
  await page.getByRole("button", { name: "Save configuration" }).click();
  await eventually(async () => assert.equal(await text(".run-settings .field-error:not(:empty)"), "must be a whole number of seconds, at least 1"));
  await page.getByLabel("Timeout (seconds)").fill("60");
  await page.getByLabel("Keep at most (runs)").fill("100");
  await page.getByRole("button", { name: "Save configuration" }).click();
  await eventually(async () => assert.equal(await text(".actions .notice"), "Saved."));
  const id = (await fk.api("list_workflows", {})).items[0].id;
  const cfg = await fk.api("get_config", { workflow_id: id });
  assert.deepEqual(cfg.run, { command: ["python3", script], timeout_s: 60 });
  assert.deepEqual(cfg.retention, { max_count: 100 });

  await page.getByRole("button", { name: "Run now" }).click();
  await page.getByText(/^Run started at/).waitFor();
  await eventually(async () => assert.equal(await text("tbody tr:first-child .status"), "running"));
  await rowsOf("Run list").first().getByRole("button", { name: /^Details/ }).click();
  const details = page.getByRole("dialog", { name: "Run details" });
  await details.getByRole("button", { name: "Cancel run" }).waitFor();
  // The output shows as it is written, then the run's end and its result.
  await eventually(async () => assert.match(await details.getByLabel("Output log").innerText(), /working on safe/), 10_000);
  await eventually(async () => assert.match(await details.locator("dl").textContent(), /Statussucceeded/), 10_000);
  await eventually(async () => assert.match(await details.locator("pre").first().textContent(), /"retries_seen": 3/));
  await screenshot(page, "10-run-finished");
  await details.getByRole("button", { name: "Close" }).click();
  // The list row says how its last run went, without opening it.
  const row = page.locator(".workflow-list li", { hasText: "Nightly ETL" }).first();
  await eventually(async () => assert.match(await row.locator(".run-badge").innerText(), /^last run succeeded .*ago/));
  assert.equal(await row.locator(".run-badge.status-succeeded").count(), 1);

  // A workflow without a command says why it cannot run, and records nothing.
  const bare = await fk.api("create_workflow", { name: "No command yet", tags: [] });
  // Created elsewhere: it shows up in the list by itself.
  await page.locator(".workflow-list .select", { hasText: "No command yet" }).click({ timeout: 10_000 });
  await page.getByRole("heading", { name: "No command yet" }).waitFor();
  await page.getByRole("button", { name: "Run now" }).click();
  await eventually(async () => assert.match(await text(".workflow-head .error"), /^Cannot run: .*has no command/));
  assert.equal((await fk.api("count_runs", { workflow_id: bare.id })).count, 0);
  await fk.api("delete_workflow", { id: bare.id });
  await page.reload();
  await page.locator(".workflow-list .select", { hasText: "Nightly ETL" }).click();
  await page.getByRole("heading", { name: "Nightly ETL" }).waitFor();
});

test("history: who, when, device, old and new values", async () => {
  await page.getByRole("tab", { name: "History" }).click();
  const timeline = page.getByRole("region", { name: "History" });
  await timeline.getByText("Created").first().waitFor();
  const changes = timeline.getByRole("table").filter({ hasText: "config.values.retries" });
  await changes.first().waitFor();
  const row = changes.first().locator("tr", { hasText: "config.values.retries" });
  assert.equal(await row.locator(".new").textContent(), "3");
  // Definition changes read as what happened to each field.
  await timeline.getByText("added retries (number)").first().waitFor();
  await timeline.getByText("removed enabled").first().waitFor();
  assert.match(await timeline.locator(".entry-head").first().textContent(), /by e2e-user on device [0-9a-f]{8} at \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/);
  await screenshot(page, "08-history");
});

test("keyboard only, and every control has an accessible name", async () => {
  const client = await page.context().newCDPSession(page);
  const unnamed = async () => {
    const { nodes } = await client.send("Accessibility.getFullAXTree");
    const roles = new Set(["button", "textbox", "combobox", "checkbox", "searchbox", "spinbutton", "tab", "link"]);
    return nodes
      .filter((n) => !n.ignored && roles.has(n.role?.value) && !String(n.name?.value ?? "").trim())
      .map((n) => `${n.role.value} ${n.backendDOMNodeId}`);
  };
  for (const tab of ["Configuration", "Runs", "History"]) {
    await page.getByRole("tab", { name: tab }).click();
    await page.getByRole("tabpanel").waitFor();
    assert.deepEqual(await unnamed(), [], `unnamed controls on ${tab}`);
  }

  // Tabs move with the arrow keys, focus follows.
  await page.getByRole("tab", { name: "History" }).focus();
  await page.keyboard.press("ArrowLeft");
  assert.equal(await page.getByRole("tab", { name: "Runs" }).getAttribute("aria-selected"), "true");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "tab-runs");

  // A dialog: Enter opens it, focus is inside, Escape closes it.
  await page.getByRole("button", { name: "New workflow" }).focus();
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog", { name: "New workflow" });
  await dialog.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), "name");
  assert.deepEqual(await unnamed(), [], "unnamed controls in the dialog");
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden" });

  // Create one without the mouse: type the name, Enter submits.
  await page.getByRole("button", { name: "New workflow" }).focus();
  await page.keyboard.press("Enter");
  await page.keyboard.type("Made with the keyboard");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Made with the keyboard" }).waitFor();
});

function startOfDay(t) {
  const d = new Date(t);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

test("each workflow and tab has a URL; an open tab survives a restart of flowkeep ui", async () => {
  let own = await startFlowkeep();
  try {
    const wf = await own.api("create_workflow", { name: "Linked" });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const tab = await context.newPage();
    tab.on("pageerror", (e) => console.error("page error:", e));
    await tab.goto(own.url);
    await tab.locator(".workflow-list .name", { hasText: "Linked" }).click();
    await poll(async () => assert.equal(new URL(tab.url()).pathname, `/workflows/${wf.id}`));
    await tab.getByRole("tab", { name: "Runs" }).click();
    await poll(async () => assert.equal(new URL(tab.url()).pathname, `/workflows/${wf.id}/runs`));
    // A run's details have their own address too.
    const now = Date.now();
    await own.api("import_runs", {
      runs: [{ workflow_id: wf.id, status: "succeeded", started_at: now - 5000, completed_at: now - 4000, output: { result: { rows: 7 } } }],
    });
    const run = (await own.api("list_runs", { workflow_id: wf.id })).items[0];
    await tab.getByRole("table", { name: "Run list" }).getByRole("button", { name: /^Details/ }).click();
    await poll(async () => assert.equal(new URL(tab.url()).pathname, `/workflows/${wf.id}/runs/${run.id}`));
    await tab.getByRole("dialog", { name: "Run details" }).getByRole("button", { name: "Close" }).click();
    await poll(async () => assert.equal(new URL(tab.url()).pathname, `/workflows/${wf.id}/runs`));
    await tab.goBack();
    await tab.getByRole("dialog", { name: "Run details" }).getByText("rows").waitFor();
    await tab.goBack();
    await poll(async () => assert.equal(await tab.getByRole("dialog", { name: "Run details" }).count(), 0));
    await tab.goBack();
    await poll(async () => assert.equal(await tab.getByRole("tab", { name: "Configuration" }).getAttribute("aria-selected"), "true"));

    // A link opens the same view in a new tab (no token in it: the session cookie).
    const linked = await context.newPage();
    await linked.goto(`http://127.0.0.1:${own.port}/workflows/${wf.id}/runs`);
    await poll(async () => assert.equal(await linked.getByRole("tab", { name: "Runs" }).getAttribute("aria-selected"), "true"));
    await linked.goto(`http://127.0.0.1:${own.port}/workflows/${wf.id}/runs/${run.id}`);
    await linked.getByRole("dialog", { name: "Run details" }).getByText("rows").waitFor();
    await linked.close();

    // flowkeep ui restarts on the same data dir and port: the open tab keeps
    // working, and a change made meanwhile shows without a reload.
    const { dataDir, port } = own;
    await own.stop({ keep: true });
    own = await startFlowkeep(dataDir, port);
    await own.api("create_workflow", { name: "Made after the restart" });
    await poll(
      async () => assert.ok((await tab.locator(".workflow-list .name").allTextContents()).includes("Made after the restart")),
      15_000,
    );
    await tab.getByRole("tab", { name: "History" }).click();
    await tab.getByRole("tab", { name: "Configuration" }).click();
    assert.doesNotMatch(await tab.locator("body").innerText(), /not reachable|TypeError/);
    await context.close();
  } finally {
    await own.stop();
  }
});

test("no edit is lost: odd keys are explained, leaving asks first, a conflict offers Keep mine / Take theirs / Reload", async () => {
  const own = await startFlowkeep();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const tab = await context.newPage();
  const errors = [];
  tab.on("pageerror", (e) => errors.push(e));
  try {
    const guarded = await own.api("create_workflow", { name: "Guarded" });
    await own.api("create_workflow", { name: "Other" });
    await tab.goto(own.url);
    await tab.locator(".workflow-list .name", { hasText: "Guarded" }).click();
    await tab.getByRole("heading", { name: "Guarded" }).waitFor();

    await tab.getByRole("button", { name: "Add field" }).click();
    const key = tab.locator(".definition input[aria-label='Key of field 1']");
    await key.fill("");
    await tab.getByText("a key is required").waitFor();
    await key.fill("db.host");
    await tab.getByText(/no dots or spaces/).waitFor();
    await tab.getByRole("button", { name: "Save configuration" }).click();
    await tab.locator(".actions .notice.error", { hasText: "fix the field keys" }).waitFor();
    await key.fill("db_host");
    await poll(async () => assert.equal(await tab.getByText(/no dots or spaces/).count(), 0));

    // Leaving with unsaved edits asks; Cancel keeps them.
    await tab.locator(".workflow-list .name", { hasText: "Other" }).click();
    const ask = tab.getByRole("dialog", { name: "Discard unsaved changes?" });
    await ask.waitFor();
    await ask.getByRole("button", { name: "Cancel" }).click();
    assert.equal(await key.inputValue(), "db_host");
    await tab.getByRole("tab", { name: "Runs" }).click();
    await ask.waitFor();
    await ask.getByRole("button", { name: "Cancel" }).click();
    assert.equal(await key.inputValue(), "db_host");

    // Changed elsewhere meanwhile, but not what was edited here: the save
    // says so in words; Keep mine saves on top of the other change.
    await own.api("update_workflow", { id: guarded.id, description: "edited elsewhere" });
    await tab.getByRole("button", { name: "Save configuration" }).click();
    await tab.locator(".actions .notice.error", { hasText: "changed elsewhere" }).waitFor();
    assert.doesNotMatch(await tab.locator(".actions .notice").innerText(), /revision|[0-9a-f]{8}-[0-9a-f]{4}/);
    await tab.getByRole("button", { name: "Keep mine" }).click();
    await tab.locator(".actions .notice", { hasText: "Saved." }).waitFor();
    let stored = await own.api("get_config", { workflow_id: guarded.id });
    assert.deepEqual(stored.fields.map((f) => f.key), ["db_host"]);
    assert.equal((await own.api("get_workflow", { id: guarded.id })).description, "edited elsewhere");

    // The same value edited here and elsewhere: as soon as the other change
    // arrives (no save needed), both values are shown; Take theirs shows
    // theirs.
    await tab.locator("#value-db_host").fill("mine.example");
    await own.api("update_config", {
      workflow_id: guarded.id,
      config: { fields: stored.fields, values: { db_host: "theirs.example" } },
      expected_revision: stored.revision,
    });
    await tab.locator(".actions .notice.error", { hasText: "just changed elsewhere" }).waitFor();
    const clashes = tab.getByRole("list", { name: "Edited here and elsewhere" });
    await clashes.getByText(/yours mine\.example, theirs theirs\.example/).waitFor();
    await tab.getByRole("button", { name: "Take theirs" }).click();
    await poll(async () => assert.equal(await tab.locator("#value-db_host").inputValue(), "theirs.example"));
    assert.equal(await clashes.count(), 0);

    // Reload drops the edits made here and shows the latest.
    await tab.locator("#value-db_host").fill("dropped.example");
    await own.api("update_workflow", { id: guarded.id, description: "again" });
    await tab.getByRole("button", { name: "Save configuration" }).click();
    await tab.getByRole("button", { name: "Reload" }).click();
    await poll(async () => assert.equal(await tab.locator("#value-db_host").inputValue(), "theirs.example"));
    stored = await own.api("get_config", { workflow_id: guarded.id });
    assert.equal(stored.values.db_host, "theirs.example");

    // Nothing unsaved: leaving does not ask.
    await tab.locator(".workflow-list .name", { hasText: "Other" }).click();
    await tab.getByRole("heading", { name: "Other" }).waitFor();
    assert.deepEqual(errors, [], "no render error");
  } finally {
    await context.close();
    await own.stop();
  }
});

test("from 360 px to wide, nothing is cut off; with nothing open the overview shows recent runs, failures first", async () => {
  const own = await startFlowkeep();
  const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const tab = await context.newPage();
  try {
    const wf = await own.api("create_workflow", { name: "Narrow" });
    const now = Date.now();
    await own.api("import_runs", {
      runs: [
        { workflow_id: wf.id, status: "succeeded", started_at: now - 60_000, completed_at: now - 59_000 },
        { workflow_id: wf.id, status: "failed", started_at: now - 120_000, completed_at: now - 119_000 },
      ],
    });
    await tab.goto(own.url);
    const failures = tab.getByRole("table", { name: "Recent failures" });
    await failures.waitFor();
    assert.equal(await failures.locator("tbody tr").count(), 1);
    assert.equal(await tab.getByRole("table", { name: "Recent runs" }).locator("tbody tr").count(), 2);
    for (const width of [360, 760, 1280]) {
      await tab.setViewportSize({ width, height: 740 });
      await tab.getByRole("heading", { name: "Overview" }).waitFor();
      const overflow = await tab.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `${width} px: the page is ${overflow} px wider than the window`);
    }
    await tab.setViewportSize({ width: 360, height: 740 });
    await failures.getByRole("button", { name: "Narrow" }).click();
    await poll(async () => assert.equal(await tab.getByRole("tab", { name: "Runs" }).getAttribute("aria-selected"), "true"));
    await tab.getByRole("tab", { name: "Configuration" }).click();
    await tab.getByRole("button", { name: "Add field" }).click();
    for (const width of [360, 760, 1024]) {
      await tab.setViewportSize({ width, height: 740 });
      const overflow = await tab.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `${width} px, a workflow open: the page is ${overflow} px wider than the window`);
      const box = await tab.getByRole("button", { name: "Save configuration" }).boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= width, `Save is inside a ${width} px window: ${JSON.stringify(box)}`);
    }
    await tab.setViewportSize({ width: 360, height: 740 });
    await screenshot(tab, "15-narrow");
  } finally {
    await context.close();
    await own.stop();
  }
});

test("no serious accessibility violations (axe-core) on the overview, a workflow's tabs and a dialog", async () => {
  const own = await startFlowkeep();
  // axe is injected as a script: the page's CSP would refuse it.
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
  const tab = await context.newPage();
  const axeSource = readFileSync(path.join(path.dirname(new URL(import.meta.url).pathname), "../node_modules/axe-core/axe.min.js"), "utf8");
  const serious = async (where) => {
    await tab.addScriptTag({ content: axeSource });
    const found = await tab.evaluate(async () => {
      // eslint-disable-next-line no-undef
      const r = await axe.run(document, { resultTypes: ["violations"] });
      return r.violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
    });
    assert.deepEqual(found, [], `${where}: ${found.join("; ")}`);
  };
  try {
    const wf = await own.api("create_workflow", { name: "Accessible", tags: ["ops"], config: { fields: [{ key: "n", type: "number" }], values: { n: 1 } } });
    const now = Date.now();
    await own.api("import_runs", {
      runs: [{ workflow_id: wf.id, status: "failed", started_at: now - 1000, completed_at: now }],
    });
    await tab.goto(own.url);
    await tab.getByRole("table", { name: "Recent failures" }).waitFor();
    await serious("overview");
    await tab.locator(".workflow-list .name", { hasText: "Accessible" }).click();
    await tab.locator("#value-n").waitFor();
    await serious("configuration");
    await tab.getByRole("tab", { name: "Runs" }).click();
    await tab.getByRole("table", { name: "Run list" }).waitFor();
    await serious("runs");
    await tab.getByRole("tab", { name: "History" }).click();
    await tab.locator(".workflow-history .timeline li").first().waitFor();
    await serious("history");
    await tab.getByRole("button", { name: "New workflow" }).click();
    await tab.getByRole("dialog").waitFor();
    await serious("the new-workflow dialog");
  } finally {
    await context.close();
    await own.stop();
  }
});

test("every editor: defaults, JSON Schema, the ipv4 format, rules across fields", async () => {
  const own = await startFlowkeep();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const tab = await context.newPage();
  try {
    const wf = await own.api("create_workflow", {
      name: "Editors",
      config: {
        fields: [
          { key: "lo", type: "number" },
          { key: "hi", type: "number" },
          { key: "host", type: "text" },
          { key: "params", type: "json" },
        ],
        values: { lo: 1, hi: 2 },
      },
    });
    await tab.goto(own.url);
    await tab.locator(".workflow-list .name", { hasText: "Editors" }).click();
    await tab.locator("#value-host").waitFor();
    const rules = async (key) => tab.locator("summary", { hasText: `Rules of ${key}` }).click();

    await rules("host");
    await tab.getByLabel("Format of host").selectOption("ipv4");
    await tab.getByLabel("Default of host").fill("10.0.0.1");
    await rules("params");
    await tab.getByLabel("JSON Schema of params").fill('{"type": "object", "required": ["mode"]}');
    await tab.getByLabel("JSON Schema of params").blur();
    await tab.getByRole("button", { name: "Add rule" }).click();
    await tab.getByLabel("Smaller field of rule 1").selectOption("lo");
    await tab.getByLabel("Larger field of rule 1").selectOption("hi");

    // Every problem on the first save: the format in the browser...
    await tab.locator("#value-host").fill("300.1.1.1");
    await tab.locator("#value-params").fill('{"other": 1}');
    await tab.locator("#value-lo").fill("5");
    await tab.getByRole("button", { name: "Save configuration" }).click();
    await poll(async () => assert.equal(await tab.locator("#error-host").innerText(), "must be an IPv4 address like 192.168.1.10"));
    // ...then the server's, beside each field, once the browser's pass.
    await tab.locator("#value-host").fill("10.0.0.2");
    await tab.getByRole("button", { name: "Save configuration" }).click();
    await poll(async () => assert.match(await tab.locator("#error-params").innerText(), /mode/));
    await poll(async () => assert.equal(await tab.locator("#error-lo").innerText(), "must be less than hi (2), got 5"));
    await tab.locator("#value-params").fill('{"mode": "fast"}');
    await tab.locator("#value-lo").fill("1");
    await tab.getByRole("button", { name: "Save configuration" }).click();
    await poll(async () => assert.equal(await tab.locator(".actions .notice").innerText(), "Saved."));

    const cfg = await own.api("get_config", { workflow_id: wf.id });
    const host = cfg.fields.find((f) => f.key === "host");
    assert.deepEqual([host.format, host.default], ["ipv4", "10.0.0.1"]);
    assert.deepEqual(cfg.fields.find((f) => f.key === "params").schema, { type: "object", required: ["mode"] });
    assert.deepEqual(cfg.rules, [{ rule: "less_than", fields: ["lo", "hi"] }]);
  } finally {
    await context.close();
    await own.stop();
  }
});

test("all runs: every workflow's runs in one list, filtered, with an address; a row opens its workflow", async () => {
  const own = await startFlowkeep();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const tab = await context.newPage();
  try {
    const a = await own.api("create_workflow", { name: "Alpha" });
    const b = await own.api("create_workflow", { name: "Beta" });
    const now = Date.now();
    const run = (wf, status, ago) => ({ workflow_id: wf.id, status, started_at: now - ago, completed_at: now - ago + 1000 });
    await own.api("import_runs", {
      runs: [run(a, "succeeded", 60_000), run(b, "failed", 120_000), run(b, "succeeded", 180_000)],
    });
    await tab.goto(own.url);
    await tab.getByRole("navigation", { name: "Views" }).getByRole("button", { name: "All runs" }).click();
    await poll(async () => assert.equal(new URL(tab.url()).pathname, "/runs"));
    const rows = tab.getByRole("table", { name: "Run list" }).locator("tbody tr:not(.spacer)");
    await poll(async () => assert.equal(await rows.count(), 3));
    // Newest first, each with its workflow's name.
    assert.deepEqual(
      await rows.locator("td:first-child").allTextContents(),
      ["Alpha", "Beta", "Beta"],
    );
    await poll(async () => assert.match(await tab.locator(".run-history .count").innerText(), /^3 runs/));
    // The same filters as a workflow's runs.
    await tab.getByLabel("Status", { exact: true }).selectOption("failed");
    await tab.getByRole("button", { name: "Apply filters" }).click();
    await poll(async () => assert.equal(await rows.count(), 1));
    assert.equal(await rows.locator("td:first-child").innerText(), "Beta");
    // A run's details have an address under /runs; a link opens them.
    await rows.getByRole("button", { name: /^Details/ }).click();
    await tab.getByRole("dialog", { name: "Run details" }).waitFor();
    // The address follows once the details are open.
    await poll(async () => assert.match(new URL(tab.url()).pathname, /^\/runs\/[0-9a-f-]{36}$/));
    const runPath = new URL(tab.url()).pathname;
    const other = await context.newPage();
    await other.goto(`http://127.0.0.1:${own.port}${runPath}`);
    await other.getByRole("dialog", { name: "Run details" }).waitFor();
    assert.match(await other.getByRole("dialog", { name: "Run details" }).innerText(), /failed/);
    await other.close();
    await tab.getByRole("dialog", { name: "Run details" }).getByRole("button", { name: "Close" }).click();
    // A new run of any workflow appears by itself (pushed).
    await tab.getByLabel("Status", { exact: true }).selectOption("");
    await tab.getByRole("button", { name: "Apply filters" }).click();
    await poll(async () => assert.equal(await rows.count(), 3));
    await own.api("import_runs", { runs: [run(a, "failed", 1_000)] });
    await poll(async () => assert.equal(await rows.count(), 4));
    await screenshot(tab, "17-all-runs");
    // The workflow name opens that workflow's runs.
    await rows.first().getByRole("button", { name: "Alpha" }).click();
    await poll(async () => assert.equal(new URL(tab.url()).pathname, `/workflows/${a.id}/runs`));
    await tab.getByRole("heading", { name: "Alpha" }).waitFor();
    // Back returns to all runs.
    await tab.goBack();
    await poll(async () => assert.equal(new URL(tab.url()).pathname, "/runs"));
    await tab.getByRole("heading", { name: "All runs" }).waitFor();
  } finally {
    await context.close();
    await own.stop();
  }
});

test("a run's output streams into its details while it runs", async () => {
  const own = await startFlowkeep();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const tab = await context.newPage();
  try {
    const go = path.join(own.dataDir, "go");
    const wf = await own.api("create_workflow", {
      name: "Talker",
      config: {
        run: { command: ["sh", "-c", `echo 'step one done'; while [ ! -e '${go}' ]; do sleep 0.05; done; echo 'step two done'`] },
        fields: [],
        values: {},
      },
    });
    const run = await own.api("run", { workflow_id: wf.id });
    await tab.goto(own.url);
    await tab.goto(`http://127.0.0.1:${own.port}/workflows/${wf.id}/runs/${run.id}`);
    const details = tab.getByRole("dialog", { name: "Run details" });
    const log = details.getByLabel("Output log");
    await poll(async () => assert.match(await log.innerText(), /step one done/));
    assert.doesNotMatch(await log.innerText(), /step two done/);
    await details.getByText("Following the output as it is written").waitFor();
    await screenshot(tab, "18-output-streaming");
    writeFileSync(go, "");
    await poll(async () => assert.match(await log.innerText(), /step one done\nstep two done/));
    await poll(async () => assert.equal(await log.getAttribute("aria-busy"), "false"));
    assert.equal((await log.innerText()).match(/step one done/g).length, 1, "nothing shown twice");
  } finally {
    await context.close();
    await own.stop();
  }
});

test("a long runs list loads the next page as it scrolls, keeping only the rows in view in the document", async () => {
  const wf = await fk.api("create_workflow", { name: "Busy job" });
  const now = Date.now();
  const runs = Array.from({ length: 130 }, (_, i) => ({
    workflow_id: wf.id,
    status: "succeeded",
    started_at: now - (i + 1) * 60_000,
    completed_at: now - (i + 1) * 60_000 + 1000,
    exit_code: i,
  }));
  await fk.api("import_runs", { runs });
  await page.goto(`http://127.0.0.1:${fk.port}/workflows/${wf.id}/runs`);
  const table = page.getByRole("table", { name: "Run list" });
  await eventually(async () => assert.equal(await table.getAttribute("data-rows"), "50"));
  await eventually(async () => assert.equal(await text("#panel-runs .count"), "130 runs · 50 loaded, more as you scroll"));
  const box = page.locator("#panel-runs .run-scroll");
  for (const loaded of ["100", "130"]) {
    await box.evaluate((el) => (el.scrollTop = el.scrollHeight));
    await eventually(async () => assert.equal(await table.getAttribute("data-rows"), loaded));
  }
  await eventually(async () => assert.equal(await text("#panel-runs .count"), "130 runs"));
  await box.evaluate((el) => (el.scrollTop = el.scrollHeight));
  // The oldest run is the last row (its exit code is 129), and the rows in
  // the document are consecutive: a few dozen of 130.
  await eventually(async () => assert.equal(await rowsOf("Run list").last().locator("td").nth(3).innerText(), "129"));
  const indexes = (await rowsOf("Run list").evaluateAll((rows) => rows.map((r) => Number(r.getAttribute("aria-rowindex")))));
  assert.ok(indexes.length < 50, `${indexes.length} rows in the document`);
  assert.deepEqual(indexes, Array.from({ length: indexes.length }, (_, i) => indexes[0] + i));
  assert.equal(await page.getByRole("button", { name: "Load more runs" }).count(), 0, "nothing more to load");
});

test("time travel: two revisions compared side by side, an earlier one restored after showing what changes", async () => {
  const wf = await fk.api("create_workflow", { name: "Versioned v1" });
  await fk.api("update_workflow", { id: wf.id, name: "Versioned v2" });
  await fk.api("update_workflow", { id: wf.id, name: "Versioned v3", description: "third" });
  await page.goto(`http://127.0.0.1:${fk.port}/workflows/${wf.id}/history`);
  const timeline = page.getByRole("region", { name: "History" });
  await timeline.getByText("Created").first().waitFor();
  await timeline.getByRole("checkbox", { name: "Compare revision 1" }).check();
  await timeline.getByRole("checkbox", { name: "Compare revision 3" }).check();
  const compared = page.getByRole("table", { name: "Changes from revision 1 to revision 3" });
  await compared.waitFor();
  const name = compared.locator("tr", { hasText: "name" }).first();
  assert.equal(await name.locator(".old").innerText(), "Versioned v1");
  assert.equal(await name.locator(".new").innerText(), "Versioned v3");
  await screenshot(page, "14-compare-revisions");

  // The latest revision has nothing to restore; an earlier one shows what
  // the restore changes before anything is written.
  assert.equal(await timeline.getByRole("button", { name: "Restore revision 3" }).count(), 0);
  await timeline.getByRole("button", { name: "Restore revision 1" }).click();
  const dialog = page.getByRole("dialog", { name: "Restore revision 1" });
  const preview = dialog.getByRole("table", { name: "What the restore changes" });
  await preview.waitFor();
  assert.equal(await preview.locator("tr", { hasText: "description" }).locator(".new").innerText(), "(empty)");
  assert.equal((await fk.api("get_workflow", { id: wf.id })).revision, 3, "nothing written before confirming");
  await dialog.getByRole("button", { name: "Restore" }).click();
  await timeline.getByText("Restored").first().waitFor();
  const now = await fk.api("get_workflow", { id: wf.id });
  assert.equal(now.name, "Versioned v1");
  assert.equal(now.revision, 4);
  await page.getByRole("heading", { name: "Versioned v1" }).waitFor();
});

test("a deleted workflow is listed under Deleted and comes back with its history", async () => {
  const wf = await fk.api("create_workflow", { name: "Gone for now" });
  await fk.api("update_workflow", { id: wf.id, description: "kept" });
  await fk.api("delete_workflow", { id: wf.id });
  await page.goto(`http://127.0.0.1:${fk.port}/`);
  await page.getByRole("checkbox", { name: "Deleted" }).check();
  const deleted = page.getByRole("region", { name: "Deleted workflows" });
  await deleted.getByText("Gone for now").waitFor();
  await deleted.getByRole("button", { name: "Undelete Gone for now" }).click();
  await page.getByRole("heading", { name: "Gone for now" }).waitFor();
  assert.equal(await page.getByRole("region", { name: "Deleted workflows" }).count(), 0);
  const back = await fk.api("get_workflow", { id: wf.id });
  assert.equal(back.description, "kept");
  const history = await fk.api("workflow_history", { workflow_id: wf.id });
  assert.deepEqual(
    history.map((e) => e.kind),
    ["workflow.created", "workflow.updated", "workflow.deleted", "workflow.restored"],
  );
});

test("schedules: edited in the form with the next five runs shown, errors by field, and the runs it made or skipped marked", async () => {
  const wf = await fk.api("create_workflow", { name: "Ticker", config: { run: { command: ["true"] } } });
  await page.goto(fk.url);
  await page.locator(".workflow-list .select", { hasText: "Ticker" }).click();
  await page.getByRole("heading", { name: "Ticker" }).waitFor();
  await page.getByRole("tab", { name: "Configuration" }).click();
  await page.getByLabel("Schedule kind").selectOption("cron");
  await page.getByLabel("Cron expression").fill("61 25 * * *");
  await page.getByLabel("Time zone").fill("Mars/Olympus_Mons");
  await page.getByRole("button", { name: "Save configuration" }).click();
  // Each problem beside its own field; nothing saved.
  await eventually(async () => {
    const errors = await page.locator(".schedule-settings .field-error:not(:empty)").allTextContents();
    assert.equal(errors.length, 2, errors.join(" | "));
    assert.match(errors[0], /not a cron expression/);
    assert.match(errors[1], /not an IANA time zone/);
  });
  assert.equal((await fk.api("get_config", { workflow_id: wf.id })).run.schedule, undefined);

  await page.getByLabel("Cron expression").fill("0 3 * * *");
  await page.getByLabel("Time zone").fill("Europe/Berlin");
  // The next five times, from the app, in this browser's zone.
  const next = page.getByLabel("Next runs");
  await eventually(async () => assert.equal(await next.locator("li").count(), 5));
  await screenshot(page, "13-schedule");
  await page.getByLabel("Schedule kind").selectOption("interval");
  await page.getByLabel("Every").fill("1s");
  await page.getByRole("button", { name: "Save configuration" }).click();
  await eventually(async () => assert.equal(await text(".actions .notice"), "Saved."));
  const schedule = (await fk.api("get_config", { workflow_id: wf.id })).run.schedule;
  assert.equal(schedule.interval, "1s");
  assert.ok(schedule.owner, "the device that set it owns it");
  await eventually(async () => assert.match(await page.getByLabel("Where it runs").innerText(), /Runs on this device/));

  // An agent that starts late records what it missed as skipped and runs the rest.
  await new Promise((r) => setTimeout(r, 3_200));
  const agent = spawn(flowkeepBin(), ["--data-dir", fk.dataDir, "agent"], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 2_000));
  agent.kill("SIGTERM");
  await new Promise((r) => (agent.exitCode !== null ? r() : agent.once("exit", r)));
  await page.getByRole("tab", { name: "Runs" }).click();
  await eventually(async () => {
    const statuses = await rowsOf("Run list").locator(".status").allTextContents();
    assert.ok(statuses.includes("skipped"), statuses.join(","));
    assert.ok(statuses.includes("succeeded"), statuses.join(","));
  }, 10_000);
  assert.ok((await rowsOf("Run list").locator(".trigger-schedule").count()) >= 2);
  // A tick that came while a run was still going is skipped too (overlap:
  // skip), so the missed ones are looked for among all skipped rows.
  const skipped = rowsOf("Run list").filter({ has: page.locator(".status-skipped") });
  const details = page.getByRole("dialog", { name: "Run details" });
  const reasons = [];
  for (let i = 0; i < (await skipped.count()); i++) {
    await skipped.nth(i).getByRole("button", { name: /^Details/ }).click();
    await eventually(async () => assert.match(await details.locator("dl").textContent(), /Scheduled for.*Why skipped/));
    const reason = await details.locator("dl").textContent();
    reasons.push(reason);
    if (/Why skippedmissed/.test(reason)) await screenshot(page, "14-skipped-run");
    await details.getByRole("button", { name: "Close" }).click();
    await details.waitFor({ state: "hidden" });
  }
  assert.ok(reasons.some((r) => /Why skippedmissed/.test(r)), reasons.join(" | "));
});

test("workflows as files: export to a folder, change a file, the import plan shows the change before it is written", async () => {
  const folder = path.join(fk.dataDir, "exported");
  await page.goto(fk.url);
  await page.getByRole("button", { name: "Export workflows…" }).click();
  const exp = page.getByRole("dialog", { name: "Export workflows" });
  await exp.getByLabel("Folder on this machine").fill(folder);
  await exp.getByRole("button", { name: "Export", exact: true }).click();
  await eventually(async () => assert.match(await exp.getByRole("status").innerText(), /^Wrote \d+ workflow file\(s\)/));
  await exp.getByRole("button", { name: "Close" }).click();
  const file = path.join(folder, "ticker.flowkeep.yaml");
  writeFileSync(file, readFileSync(file, "utf8").replace("name: Ticker", "name: Ticker from git"));

  const before = (await fk.api("list_workflows", {})).items.length;
  await page.getByRole("button", { name: "Import workflows…" }).click();
  const imp = page.getByRole("dialog", { name: "Import workflows" });
  assert.equal(await imp.getByLabel("Folder on this machine").inputValue(), folder, "the last folder is offered");
  await imp.getByRole("button", { name: "Check" }).click();
  const plan = imp.getByRole("table", { name: "Import plan" });
  await eventually(async () => assert.match(await plan.innerText(), /ticker\.flowkeep\.yaml\s+Ticker\s+update\s+name: "Ticker" → "Ticker from git"/));
  assert.equal((await fk.api("list_workflows", { search: "from git" })).items.length, 0, "checking writes nothing");
  await screenshot(page, "15-import-plan");
  await imp.getByRole("button", { name: "Import", exact: true }).click();
  await eventually(async () => assert.match(await imp.getByRole("status").innerText(), /^Imported: 0 to create, 1 to update/));
  await imp.getByRole("button", { name: "Close" }).click();
  assert.equal((await fk.api("list_workflows", { search: "from git" })).items.length, 1);
  assert.equal((await fk.api("list_workflows", {})).items.length, before);
});

test("a secret field shows •••• and keeps its value on save; Reveal shows it", async () => {
  const wf = await fk.api("create_workflow", {
    name: "Vault",
    config: { fields: [{ key: "api_key", type: "secret" }, { key: "region", type: "text" }], values: { api_key: "s3cr3t-value-e2e", region: "eu" } },
  });
  await page.goto(fk.url);
  await page.locator(".workflow-list .select", { hasText: "Vault" }).click();
  await page.getByRole("tab", { name: "Configuration" }).click();
  const input = page.locator("#value-api_key");
  await eventually(async () => assert.equal(await input.inputValue(), "••••"));
  assert.equal(await input.getAttribute("type"), "password");
  assert.ok(!(await page.content()).includes("s3cr3t-value-e2e"), "the page never holds it until revealed");
  await page.locator("#value-region").fill("us");
  await page.getByRole("button", { name: "Save configuration" }).click();
  await eventually(async () => assert.equal(await text(".actions .notice"), "Saved."));
  const revealed = await fk.api("reveal_config", { workflow_id: wf.id });
  assert.equal(revealed.values.api_key, "s3cr3t-value-e2e", "saving •••• kept the secret");
  assert.equal(revealed.values.region, "us");
  await page.getByRole("button", { name: "Reveal api_key" }).click();
  await eventually(async () => assert.equal(await input.inputValue(), "s3cr3t-value-e2e"));
  assert.equal(await input.getAttribute("type"), "text");
});
