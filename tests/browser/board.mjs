// A team lead at the board, in a real browser: Debian's Chromium driven by
// playwright-core. tests/suite/board.rs starts a lab run paused at its gate
// and `ferry board --allow-approve`, then runs this with:
//
//   BOARD_URL   the board's base URL (http://127.0.0.1:PORT)
//   TOKEN       the one-time token the board printed
//   RUN, GATE   the paused run and the gate it waits at
//   APP         an app the run has cut over
//   SHOTS       where to save screenshots
//   CHROMIUM    the browser (default /usr/bin/chromium)
//
// Every check throws with what it saw; the exit code says pass or fail.

import { chromium } from "playwright-core";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = need("BOARD_URL");
const token = need("TOKEN");
const run = need("RUN");
const gate = need("GATE");
const app = need("APP");
const shots = need("SHOTS");
mkdirSync(shots, { recursive: true });

const check = (ok, what) => {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok: ${what}`);
};

// Each person is a browser of their own, with a fresh profile (cookies
// and all), so the stranger below has nothing the approver has.
const profiles = [];
const browsers = [];
const person = async (viewport) => {
  const profile = mkdtempSync(join(tmpdir(), "ferry-board-chromium-"));
  profiles.push(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  browsers.push(context);
  return context;
};
try {
  // 1. The fleet: the app matrix, with the app's phases ticked.
  const watcher = await person({ width: 1280, height: 900 });
  const page = watcher.pages()[0] || (await watcher.newPage());
  await page.goto(`${base}/`);
  const row = page.locator(`#fleet tr[data-app="${app}"]`);
  await row.waitFor();
  const ticked = await row.locator("td.cell a").evaluateAll((cells) =>
    cells.map((a) => a.parentElement.dataset.phase),
  );
  check(
    JSON.stringify(ticked) === JSON.stringify(["bridged", "prepared", "cut over"]),
    `${app} is bridged, prepared and cut over (${ticked.join(", ")})`,
  );
  check((await page.locator("#waiting").innerText()).includes(gate), `the fleet lists ${run} waiting at ${gate}`);
  await page.screenshot({ path: join(shots, "fleet.png"), fullPage: true });

  // 2. Open the run from the app's row: its guard charts are drawn.
  await row.locator("td a", { hasText: run }).click();
  await page.waitForURL(`${base}/runs/${run}`);
  const charts = page.locator(".guard .chart svg");
  check((await charts.count()) >= 1, "the run shows a guard chart");
  const box = await charts.first().boundingBox();
  check(box && box.width > 300 && box.height > 150, `the chart is rendered (${box && Math.round(box.width)}x${box && Math.round(box.height)})`);
  const lines = await charts.first().locator("polyline, path").count();
  check(lines >= 3, `the chart has its series drawn (${lines} lines)`);
  check((await charts.first().innerHTML()).includes("flip"), "the flip is marked");
  check(
    (await page.locator(`tr[data-gate="${gate}"]`).getAttribute("class")) === "waiting",
    "the gate waits",
  );
  // Mark this page: a live update must not reload it.
  await page.evaluate(() => (window.stillTheSamePage = true));

  // 3. Approve with the token, in another browser context.
  const lead = await person({ width: 1280, height: 1400 });
  const approver = lead.pages()[0] || (await lead.newPage());
  await approver.goto(`${base}/?token=${token}`);
  check(approver.url() === `${base}/`, "the token URL leads to the fleet");
  await approver.goto(`${base}/runs/${run}`);
  const form = approver.locator(`tr[data-gate="${gate}"] form.approve`);
  await form.locator('input[name="name"]').fill("dana");
  await Promise.all([approver.waitForURL(`${base}/runs/${run}`), form.locator("button").click()]);
  const approvedCell = approver.locator(`tr[data-gate="${gate}"].approved td.approval`);
  await approvedCell.waitFor();
  check((await approvedCell.innerText()).includes("approved by dana"), "the gate shows dana's approval");
  await approver.screenshot({ path: join(shots, "run.png"), fullPage: false });

  // 4. The first page followed without a reload.
  await page.locator(`tr[data-gate="${gate}"].approved`).waitFor({ timeout: 5000 });
  check(await page.evaluate(() => window.stillTheSamePage === true), "the open page updated in place");

  // 5. Without the token, approving is refused.
  const stranger = await person({ width: 1280, height: 900 });
  const other = stranger.pages()[0] || (await stranger.newPage());
  const reused = await other.goto(`${base}/?token=${token}`);
  check(reused.status() === 403, `the spent token is refused (${reused.status()})`);
  await other.goto(`${base}/runs/${run}`);
  check((await other.locator("form.approve").count()) === 0, "no approve form without a session");
  const refused = await other.evaluate(
    async ([run, gate]) => {
      const r = await fetch(`/runs/${run}/gates/${gate}/approve`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "csrf=guess&name=mallory",
      });
      return { status: r.status, text: await r.text() };
    },
    [run, gate],
  );
  check(refused.status === 403 && refused.text.includes("no approval session"), `a second approve without the token is refused (${refused.status})`);
  check(
    (await other.locator(`tr[data-gate="${gate}"] td.approval`).innerText()).includes("approved by dana"),
    "the approval stays dana's",
  );
  console.log("all checks passed");
} finally {
  for (const context of browsers) await context.close();
  for (const profile of profiles) rmSync(profile, { recursive: true, force: true });
}
