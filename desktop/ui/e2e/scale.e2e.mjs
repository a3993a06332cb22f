// 10,000 workflows in the browser: the list still opens, pages, searches
// and sorts. Timings are printed as a table (medians), never asserted.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, startFlowkeep } from "./support.mjs";

const N = 10_000;
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
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await fk?.stop();
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log("\n| step (10,000 workflows, headless Chromium) | runs | median ms |\n|---|---|---|");
  for (const [name, xs] of Object.entries(timings)) console.log(`| ${name} | ${xs.length} | ${median(xs).toFixed(0)} |`);
});

test("10,000 workflows: first page, scrolling pages, search, sort", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const names = page.locator(".workflow-list .name");
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await page.goto(fk.url);
    await names.nth(49).waitFor();
    record("open the app until 50 rows show", performance.now() - t);
  }
  assert.equal(await names.count(), 50, "only the first page is in the page");
  assert.equal(await names.first().textContent(), "wf-00000");

  // Scrolling to the end of the list loads the next page each time.
  for (let p = 2; p <= 20; p++) {
    const t = performance.now();
    await page.locator(".workflow-list .sentinel").scrollIntoViewIfNeeded();
    await names.nth(p * 50 - 1).waitFor();
    record("scroll to the end until the next 50 rows show", performance.now() - t);
  }
  assert.equal(await names.count(), 1000);
  const shown = await names.allTextContents();
  assert.deepEqual(shown, Array.from({ length: 1000 }, (_, i) => `wf-${String(i).padStart(5, "0")}`));

  for (const term of ["wf-07777", "wf-0123", "hundredth"]) {
    const t = performance.now();
    await page.getByLabel("Search").fill(term);
    const expected = term === "wf-07777" ? 1 : term === "wf-0123" ? 10 : 50;
    await page.waitForFunction(
      ([n, first]) => {
        const rows = [...document.querySelectorAll(".workflow-list .name")];
        return rows.length === n && rows[0].textContent.startsWith(first);
      },
      [expected, term === "hundredth" ? "wf-00000" : term],
    );
    record("search until the matches show (incl. 200 ms typing pause)", performance.now() - t);
  }
  await page.getByLabel("Search").fill("");
  await page.getByLabel("Tag").fill("odd");
  await page.getByLabel("Descending").check();
  const t = performance.now();
  await page.waitForFunction(() => document.querySelector(".workflow-list .name")?.textContent === "wf-09999");
  record("tag filter + sort descending until the first row is right", performance.now() - t);
});
