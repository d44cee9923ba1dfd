// The client against a real runner and gateways (see ../harness/stack.mjs).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ApiError, MemoryOutbox, MsgrunnerClient } from "../dist/index.js";
import { randomUUID, sleep, startStack } from "../harness/stack.mjs";

let stack;
before(async () => { stack = await startStack({ gateways: 2 }); });
after(async () => { await stack?.stop(); });

function client(user, extra = {}) {
  return new MsgrunnerClient({ endpoints: stack.endpoints, token: stack.token(user),
    minBackoffMs: 20, maxBackoffMs: 500, requestTimeoutMs: 3000, ...extra });
}

async function until(what, check, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function storedCount(senders) {
  const { rows } = await stack.db.query("SELECT count(*)::int AS n FROM messages WHERE sender_id = ANY($1::uuid[])", [senders]);
  return rows[0].n;
}

test("every message shown once, in seq order, through a gateway SIGKILL and a Redis restart", async () => {
  const pairs = 10, each = 100;
  const people = [];
  for (let i = 0; i < pairs; i++) {
    const alice = randomUUID(), bob = randomUUID();
    const shown = new Map(); // conversation → seqs in the order shown
    const ids = new Map();   // message id → times shown
    const receiver = client(bob);
    receiver.on("message", (m) => {
      if (!shown.has(m.conversation_id)) shown.set(m.conversation_id, []);
      shown.get(m.conversation_id).push(m.seq);
      ids.set(m.id, (ids.get(m.id) ?? 0) + 1);
    });
    const live = new Promise((r) => receiver.on("connection", (e) => e.state === "live" && r()));
    receiver.connect();
    await live;
    people.push({ alice, bob, sender: client(alice), receiver, shown, ids });
  }

  let acked = 0;
  const sending = Promise.all(people.map(async (p) => {
    for (let k = 0; k < each; k++) {
      await p.sender.send({ recipient_id: p.bob, content: `message ${k}` });
      acked++;
      await sleep(5);
    }
  }));

  // Mid-stream: the first gateway is SIGKILLed and started again; then Redis.
  await until("a fifth acknowledged", () => acked > pairs * each / 5);
  await stack.gateways[0].kill();
  await sleep(1000);
  await stack.gateways[0].start();
  await until("half acknowledged", () => acked > pairs * each / 2);
  await stack.redis.kill();
  await sleep(1000);
  await stack.redis.start();
  await sending;

  assert.equal(acked, pairs * each);
  assert.equal(await storedCount(people.map((p) => p.alice)), pairs * each, "retries stored nothing twice");
  const totals = { duplicates: 0, gaps: 0, reconnects: 0, retries: 0 };
  for (const p of people) {
    await until("every message shown", () => p.ids.size === each);
    for (const [conv, seqs] of p.shown) {
      assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), `conversation ${conv} shown in order, once`);
    }
    for (const [id, n] of p.ids) assert.equal(n, 1, `message ${id} shown ${n} times`);
    totals.duplicates += p.receiver.stats.duplicates;
    totals.gaps += p.receiver.stats.gaps;
    totals.reconnects += p.receiver.stats.reconnects;
    totals.retries += p.sender.stats.retries;
    p.receiver.close();
    p.sender.close();
  }
  console.log(`FIGURES js client faults: ${pairs * each} messages shown once in order; dropped duplicates ${totals.duplicates}, ` +
    `gaps held ${totals.gaps}, reconnects ${totals.reconnects}, send retries ${totals.retries}`);
});

test("a message sent while no gateway answers waits in the outbox and is stored once", async () => {
  const alice = randomUUID(), bob = randomUUID();
  const conversation = (await (await fetch(`${stack.endpoints[0]}/v1/dm/${bob}`,
    { headers: { Authorization: `Bearer ${stack.token(alice)}` } })).json()).conversation_id;
  const outbox = new MemoryOutbox();
  const sender = client(alice, { outbox });
  for (const g of stack.gateways) await g.kill();
  const sent = sender.send({ conversation_id: conversation, recipient_id: bob, content: "from a tunnel" });
  await sleep(800);
  assert.equal((await sender.outbox()).length, 1, "kept in the outbox while offline");
  assert.equal(await storedCount([alice]), 0);
  for (const g of stack.gateways) await g.start();
  const result = await sent;
  assert.equal(result.seq, 1);
  assert.equal(await storedCount([alice]), 1);
  assert.equal((await sender.outbox()).length, 0);
  assert.ok(sender.stats.retries > 0);
  sender.close();
});

test("a refused send is rejected with the API's code and field, never retried, and leaves the outbox", async () => {
  const alice = randomUUID(), bob = randomUUID();
  const sender = client(alice);
  const refused = [];
  sender.on("refused", (r) => refused.push(r));
  await assert.rejects(sender.send({ recipient_id: bob, content: "   " }), (err) => {
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 400);
    assert.equal(err.code, "invalid_field");
    assert.equal(err.field, "content");
    return true;
  });
  assert.equal(sender.stats.retries, 0);
  assert.equal(refused.length, 1);
  assert.equal((await sender.outbox()).length, 0);
  assert.equal(await storedCount([alice]), 0);

  // The same id twice: one message.
  const id = randomUUID();
  const first = await sender.send({ id, recipient_id: bob, content: "once" });
  const again = await sender.send({ id, recipient_id: bob, content: "once" });
  assert.equal(first.id, id);
  assert.equal(again.seq, first.seq);
  assert.equal(await storedCount([alice]), 1);
  sender.close();
});

test("a refused token stops reconnecting", async () => {
  const c = new MsgrunnerClient({ endpoints: stack.endpoints, token: "not-a-token", minBackoffMs: 20, maxBackoffMs: 200 });
  const stopped = new Promise((r) => c.on("connection", (e) => e.state === "stopped" && r(e)));
  c.connect();
  const e = await stopped;
  assert.match(e.error, /401/);
  c.close();
});

test("HTTP helpers: history, unread, preferences", async () => {
  const alice = randomUUID(), bob = randomUUID();
  const a = client(alice), b = client(bob);
  const sent = await a.send({ recipient_id: bob, content: "hello helpers" });
  const page = await b.history(sent.conversation_id, 0, 10);
  assert.equal(page.messages.length, 1);
  assert.equal(page.messages[0].id, sent.id);
  const unread = await b.unread();
  assert.equal(unread.conversations[sent.conversation_id], 1);
  const prefs = await b.setPreferences({ push: false, in_app: true, email: false, sms: false, notify_when_online: false });
  assert.equal(prefs.push, false);
  assert.deepEqual((await b.preferences()).push, false);
  await assert.rejects(b.profile(), (err) => err instanceof ApiError && err.code === "not_found");
  a.close();
  b.close();
});
