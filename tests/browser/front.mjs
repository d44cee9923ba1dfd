// Checks the admin server's front page in Chromium: a viewer sees the
// counts the test produced and no button; an operator pauses a queue
// from it; a running long job shows its progress bar. Usage:
//   node front.mjs <base URL> <operator token> <viewer token> <queue> <waiting> <job id> [screenshot.png]
// CHROMIUM overrides the browser binary (default /usr/bin/chromium).
import { chromium } from "playwright-core";

const [base, operatorToken, viewerToken, queue, waiting, jobID, shot] = process.argv.slice(2);
if (!jobID) {
  console.error("usage: node front.mjs <base URL> <operator token> <viewer token> <queue> <waiting> <job id> [screenshot.png]");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const row = `tr[data-queue="${queue}"]`;
try {
  // A viewer: the counts, the progress bar, and no mutating button.
  const viewer = await (await browser.newContext({ httpCredentials: { username: "viewer", password: viewerToken } })).newPage();
  await viewer.goto(base + "/");
  await viewer.waitForFunction(([sel, n]) => document.querySelector(sel)?.textContent === n,
    [`${row} td[data-count="waiting"]`, waiting], { timeout: 15000 });
  const value = await viewer.getAttribute(`tr[data-job="${jobID}"] progress`, "value", { timeout: 15000 });
  if (value !== "40") throw new Error(`the running job's progress bar says ${value}, not 40`);
  if (await viewer.$("button")) throw new Error("a viewer sees a mutating button");
  if (!/viewer/.test(await viewer.textContent("main"))) throw new Error("the page does not say the caller is a viewer");

  // An operator pauses the queue: its waiting jobs become paused.
  const operator = await (await browser.newContext({ httpCredentials: { username: "ops", password: operatorToken } })).newPage();
  await operator.goto(base + "/");
  await operator.click(`${row} button[data-action="pause"]`, { timeout: 15000 });
  await operator.waitForSelector(`${row} .paused-tag`, { timeout: 15000 });
  await operator.waitForFunction(([sel, n]) => document.querySelector(sel)?.textContent === n,
    [`${row} td[data-count="paused"]`, waiting], { timeout: 15000 });
  await operator.waitForSelector(`${row} button[data-action="resume"]`, { timeout: 15000 });
  if (shot) await operator.screenshot({ path: shot, fullPage: true });
  console.log(`front page: the viewer saw ${waiting} waiting in ${queue}, job ${jobID} at 40 %, and no button; the operator paused ${queue}`);
} finally {
  await browser.close();
}
