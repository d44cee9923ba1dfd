// Sends a message from Alice's demo page and checks that Bob's page shows
// it and that Alice's page then shows the receipt. Usage:
//   node demo.mjs <alice page URL> <bob page URL> [screenshot.png]
// CHROMIUM overrides the browser binary (default /usr/bin/chromium).
import { chromium } from "playwright-core";

const [aliceURL, bobURL, shot] = process.argv.slice(2);
if (!aliceURL || !bobURL) {
  console.error("usage: node demo.mjs <alice URL> <bob URL> [screenshot.png]");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const alice = await (await browser.newContext()).newPage();
  const bob = await (await browser.newContext()).newPage();
  await alice.goto(aliceURL);
  await bob.goto(bobURL);
  await alice.waitForSelector("#state.live", { timeout: 15000 });
  await bob.waitForSelector("#state.live", { timeout: 15000 });

  const text = "hello from the browser " + Date.now();
  await alice.fill("#text", text);
  await alice.click("#send");

  await bob.waitForFunction((t) => [...document.querySelectorAll(".msg .bubble")].some((b) => b.textContent.startsWith(t)),
    text, { timeout: 15000 });
  await alice.waitForFunction(() => {
    const meta = document.querySelector(".msg.mine .meta");
    return meta && /delivered|read/.test(meta.textContent);
  }, null, { timeout: 15000 });
  // The page has its icon, and "later" holds a message as scheduled.
  if (!(await alice.$('link[rel="icon"]'))) throw new Error("the demo page has no favicon");
  const inAnHour = new Date(Date.now() + 3600_000);
  const local = new Date(inAnHour.getTime() - inAnHour.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  await alice.fill("#text", "see you in an hour");
  await alice.fill("#later", local);
  await alice.click("#send");
  await alice.waitForFunction(() => /scheduled for/.test(document.querySelector("#status").textContent), null, { timeout: 15000 });

  // A group: Alice starts one with Bob, Bob finds it in his list, and
  // Alice's message there shows how many members read it.
  await alice.click("#newgroup");
  await alice.waitForURL(/group=/, { timeout: 15000 });
  await alice.waitForSelector("#state.live", { timeout: 15000 });
  const link = await bob.waitForSelector("#grouplinks a:has-text('Demo group')", { timeout: 15000 });
  await link.click();
  await bob.waitForURL(/group=/, { timeout: 15000 });
  await bob.waitForSelector("#state.live", { timeout: 15000 });
  await bob.waitForFunction(() => /created the group/.test(document.querySelector("#log").textContent), null, { timeout: 15000 });
  const groupText = "hello group " + Date.now();
  await alice.fill("#text", groupText);
  await alice.click("#send");
  await bob.waitForFunction((t) => [...document.querySelectorAll(".msg .bubble")].some((b) => b.textContent.includes(t)),
    groupText, { timeout: 15000 });
  await alice.waitForFunction(() => {
    const metas = [...document.querySelectorAll(".msg.mine .meta")];
    return metas.some((m) => / of 1,/.test(m.textContent));
  }, null, { timeout: 15000 });
  if (shot) await alice.screenshot({ path: shot });
  console.log("browser: Bob received Alice's message, Alice saw the receipt, a message for later was scheduled, " +
    "and in a group Alice started Bob got her message and she saw it counted");
} finally {
  await browser.close();
}
