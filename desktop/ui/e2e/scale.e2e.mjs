// 10,000 workflows and 200,000 runs in the browser: the list still opens,
// pages, searches and sorts. Timings are printed as a table (medians), never
// asserted. "In the page" times are the page's own clock: from the start of
// the navigation (or of the input) until the rows are in the document.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, startFlowkeep } from "./support.mjs";

const N = 10_000;
const RUNS = Number(process.env.FLOWKEEP_SCALE_RUNS ?? 200_000);
let fk;
let browser;
const timings = {};

function record(name, ms) {
  (timings[name] ??= []).push(ms);
}

before(async () => {
  fk = await startFlowkeep();
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < N) {
      const i = next++;
      await fk.api("create_workflow", {
        name: `wf-${String(i).padStart(5, "0")}`,
        description: i % 100 === 0 ? "hundredth" : "",
        tags: [i % 2 ? "odd" : "even"],
      });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  record(`seed ${N} workflows over the API (total)`, performance.now() - t0);
  // Runs spread over the workflows and the last 30 days, in batches.
  const ids = [];
  for (let cursor; ; ) {
    const page = await fk.api("list_workflows", { limit: 500, cursor });
    ids.push(...page.items.map((w) => w.id));
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  const t1 = performance.now();
  const now = Date.now();
  const statuses = ["succeeded", "succeeded", "succeeded", "failed", "cancelled"];
  for (let done = 0; done < RUNS; ) {
    // 5,000 a request: the API takes bodies up to 2 MB.
    const n = Math.min(5_000, RUNS - done);
    const runs = Array.from({ length: n }, (_, k) => {
      const i = done + k;
      const started = now - ((i * 13_001) % (30 * 86_400_000));
      return { workflow_id: ids[i % ids.length], status: statuses[i % statuses.length], started_at: started, completed_at: started + 1000 };
    });
    await fk.api("import_runs", { runs });
    done += n;
  }
  record(`seed ${RUNS} runs over the API (total)`, performance.now() - t1);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await fk?.stop();
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`\n| step (10,000 workflows, ${RUNS} runs, headless Chromium) | runs | median ms |\n|---|---|---|`);
  for (const [name, xs] of Object.entries(timings)) console.log(`| ${name} | ${xs.length} | ${median(xs).toFixed(0)} |`);
});

test("10,000 workflows: first page, scrolling pages, search, sort", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const names = page.locator(".workflow-list .name");
  // How many rows the list holds (loaded), whether or not they are in the
  // document: only the rows in view are (a virtualized list).
  const loaded = (n) => page.locator(`.workflow-list[data-rows="${n}"] .name`).first().waitFor();
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    await page.goto(fk.url);
    await loaded(50);
    record("open the app until 50 rows show (test's clock)", performance.now() - t);
    // The page's clock: from the start of the navigation until the list
    // first had rows (the app marks it once, `flowkeep:first-rows`).
    const inPage = await page.evaluate(() => performance.getEntriesByName("flowkeep:first-rows")[0]?.startTime ?? NaN);
    assert.ok(Number.isFinite(inPage), "the app marks when the first rows show");
    // Where that time goes, on the same clock.
    const parts = await page.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0];
      const list = performance.getEntriesByType("resource").find((r) => r.name.includes("/api/list_workflows"));
      const at = (name) => performance.getEntriesByName(name)[0]?.startTime ?? NaN;
      return {
        loaded: nav.domContentLoadedEventEnd,
        asked: list?.startTime ?? NaN,
        answered: list?.responseEnd ?? NaN,
        parsed: at("flowkeep:first-page-parsed"),
        mounted: at("flowkeep:app-mounted"),
      };
    });
    record("  of which: the page and its script loaded (DOMContentLoaded)", parts.loaded);
    if (Number.isFinite(parts.asked)) {
      record("  of which: list_workflows asked at", parts.asked);
      record("  of which: list_workflows answered at", parts.answered);
    }
    // `flowkeep ui` writes the first page into the page it serves.
    record("  of which: loads whose first page came inside the page (a count)", parts.asked < inPage ? 0 : 1);
    assert.ok(!(parts.asked < inPage), "the first page comes with the page: no list_workflows request before the first rows");
    record("  of which: its answer parsed at", parts.parsed);
    record("  of which: the app's first render done at", parts.mounted);
    record("open the app until 50 rows show (in the page)", inPage);
  }
  assert.ok((await names.count()) < 50, "only the rows in view are in the document");
  assert.equal(await names.first().textContent(), "wf-00000");

  // Scrolling to the end of the list loads the next page each time.
  for (let p = 2; p <= 20; p++) {
    const t = performance.now();
    await page.locator(".workflow-manager .sentinel").scrollIntoViewIfNeeded();
    await loaded(p * 50);
    record("scroll to the end until the next 50 rows show", performance.now() - t);
  }
  // 1,000 rows loaded, a few dozen in the document: the ones in view, in order.
  const inDocument = await names.count();
  assert.ok(inDocument < 60, `${inDocument} rows in the document`);
  const shown = (await names.allTextContents()).map((n) => Number(n.slice(3)));
  assert.ok(shown[0] > 900, `the rows in view are near the end: ${shown}`);
  assert.deepEqual(shown, Array.from({ length: inDocument }, (_, i) => shown[0] + i), "consecutive, in order");
  record("rows in the document with 1,000 loaded (a count, not ms)", inDocument);

  for (const term of ["wf-07777", "wf-0123", "hundredth", "wf-0999", "wf-05"]) {
    const expected = { "wf-07777": 1, "wf-0123": 10, hundredth: 50, "wf-0999": 10, "wf-05": 50 }[term];
    const first = term === "hundredth" ? "wf-00000" : term === "wf-05" ? "wf-05000" : term;
    const t = performance.now();
    // In the page: from the input event until the matching rows are in the
    // document (a mutation observer, so no polling interval is counted).
    const inPage = await page.evaluate(
      ([term, n, first]) =>
        new Promise((resolve) => {
          const input = document.querySelector('.filters input[type="search"]');
          const done = () => {
            const list = document.querySelector(".workflow-list");
            const row = list.querySelector(".name");
            return Number(list.dataset.rows) === n && row?.textContent.startsWith(first);
          };
          const t0 = performance.now();
          const mo = new MutationObserver(() => {
            if (done()) {
              mo.disconnect();
              resolve(performance.now() - t0);
            }
          });
          mo.observe(document.querySelector(".workflow-list"), { childList: true, subtree: true, characterData: true, attributes: true });
          const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set;
          set.call(input, term);
          input.dispatchEvent(new Event("input", { bubbles: true }));
        }),
      [term, expected, first],
    );
    record("search until the matches show (test's clock)", performance.now() - t);
    record("search until the matches show (in the page)", inPage);
  }
  await page.getByLabel("Search").fill("");
  await page.getByLabel("Tag").fill("odd");
  await page.getByLabel("Descending").check();
  const t = performance.now();
  await page.waitForFunction(() => document.querySelector(".workflow-list .name")?.textContent === "wf-09999");
  record("tag filter + sort descending until the first row is right", performance.now() - t);
});

test(`all ${RUNS} runs in one list: it opens, loads the next page as it scrolls, keeps only the rows in view in the document`, async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  // Opened by its address (the page keeps the session from the first visit).
  await page.goto(fk.url);
  const base = new URL(fk.url).origin;
  const table = page.getByRole("table", { name: "Run list" });
  const loaded = (n) => page.locator(`table[aria-label="Run list"][data-rows="${n}"]`).waitFor();
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await page.goto(`${base}/runs`);
    await loaded(50);
    record("open All runs until 50 rows show (test's clock)", performance.now() - t);
  }
  const box = page.locator(".run-history .run-scroll");
  for (let p = 2; p <= 10; p++) {
    const t = performance.now();
    await box.evaluate((el) => (el.scrollTop = el.scrollHeight));
    await loaded(p * 50);
    record("All runs: scroll to the end until the next 50 rows show", performance.now() - t);
  }
  const indexes = await table.locator("tbody tr:not(.spacer)").evaluateAll((rows) => rows.map((r) => Number(r.getAttribute("aria-rowindex"))));
  assert.ok(indexes.length < 60, `${indexes.length} rows in the document`);
  assert.ok(indexes[0] > 400, `the rows in view are near the end: ${indexes}`);
  assert.deepEqual(indexes, Array.from({ length: indexes.length }, (_, i) => indexes[0] + i), "consecutive, in order");
  assert.equal(await table.getAttribute("aria-rowcount"), String(RUNS + 1), "the whole count is told");
  record("All runs: rows in the document with 500 loaded (a count, not ms)", indexes.length);
  await page.close();
});
