// BullMQ on the local Redis, measured the way make bench measures
// msgrunner, so the README can compare with the stack we replace:
//   enqueue rate: BULL_JOBS (20,000) adds by 8 concurrent producers;
//   drain rate: a Worker with concurrency 100 and a no-op processor
//     works them off; jobs/s from its start to the last completion;
//   latency: add → completed (the worker's completed event) at a fixed
//     200 jobs/s for BULL_LATENCY_SECONDS (10), p50/p95/p99/max.
// Each is run BULL_RUNS (3) times; median, min and max go to
// ../results/bullmq.json (or the path in argv[2]). Every key lives under a
// prefix of its own (msgrunner-bench-bull:<pid>) and is deleted at the end.
'use strict';

const fs = require('fs');
const path = require('path');
const { Queue, Worker } = require('bullmq');
const IORedis = require('ioredis');

const redisURL = process.env.REDIS_URL || 'redis://127.0.0.1:6379/0';
const jobs = Number(process.env.BULL_JOBS || 20000);
const runs = Number(process.env.BULL_RUNS || 3);
const latencySeconds = Number(process.env.BULL_LATENCY_SECONDS || 10);
const prefix = `msgrunner-bench-bull:${process.pid}`;
const out = process.argv[2] || path.join(__dirname, '..', 'results', 'bullmq.json');

const connection = () => new IORedis(redisURL, { maxRetriesPerRequest: null });

function stats(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { runs: values, median: mid, min: s[0], max: s[s.length - 1] };
}

function quantile(sorted, p) {
  return sorted[Math.floor(p * (sorted.length - 1))];
}

async function enqueueAndDrain(name) {
  const queue = new Queue(name, { connection: connection(), prefix });
  const opts = { removeOnComplete: true, removeOnFail: true };
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < jobs) {
      next++;
      await queue.add('noop', { n: next }, opts);
    }
  }));
  const enqueue = jobs / (Number(process.hrtime.bigint() - t0) / 1e9);

  let done = 0;
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const t1 = process.hrtime.bigint();
  const worker = new Worker(name, async () => {}, { connection: connection(), prefix, concurrency: 100 });
  worker.on('completed', () => { if (++done === jobs) finish(); });
  await finished;
  const drain = jobs / (Number(process.hrtime.bigint() - t1) / 1e9);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return { enqueue, drain };
}

async function latency(name) {
  const queue = new Queue(name, { connection: connection(), prefix });
  const lat = [];
  const total = 200 * latencySeconds;
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const worker = new Worker(name, async () => {}, { connection: connection(), prefix, concurrency: 100 });
  worker.on('completed', (job) => {
    lat.push(Number(process.hrtime.bigint() - BigInt(job.data.t)) / 1e6);
    if (lat.length === total) finish();
  });
  await worker.waitUntilReady();
  const start = Date.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / 200;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    queue.add('timed', { t: process.hrtime.bigint().toString() }, { removeOnComplete: true, removeOnFail: true });
  }
  await finished;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  lat.sort((a, b) => a - b);
  return { p50: quantile(lat, 0.5), p95: quantile(lat, 0.95), p99: quantile(lat, 0.99), max: lat[lat.length - 1] };
}

async function cleanup() {
  const r = connection();
  let cursor = '0';
  do {
    const [c, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = c;
    if (keys.length) await r.del(...keys);
  } while (cursor !== '0');
  await r.quit();
}

async function main() {
  const enqueue = [];
  const drain = [];
  const p50 = [];
  const p95 = [];
  const p99 = [];
  const max = [];
  try {
    for (let i = 1; i <= runs; i++) {
      const d = await enqueueAndDrain(`drain-${i}`);
      enqueue.push(d.enqueue);
      drain.push(d.drain);
      const l = await latency(`latency-${i}`);
      p50.push(l.p50); p95.push(l.p95); p99.push(l.p99); max.push(l.max);
      console.log(`bullmq run ${i}/${runs}: enqueue ${d.enqueue.toFixed(0)} jobs/s, drain ${d.drain.toFixed(0)} jobs/s, ` +
        `add→complete at 200/s p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms`);
    }
  } finally {
    await cleanup();
  }
  const version = require('bullmq/package.json').version;
  const doc = {
    date: new Date().toISOString(), bullmq: version, node: process.version, jobs,
    settings: { producers: 8, concurrency: 100, latency_rate_per_s: 200, latency_seconds: latencySeconds },
    figures: {
      'enqueue jobs/s': stats(enqueue), 'drain jobs/s': stats(drain),
      'add→complete p50-ms': stats(p50), 'add→complete p95-ms': stats(p95),
      'add→complete p99-ms': stats(p99), 'add→complete max-ms': stats(max),
    },
  };
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
  console.log(`wrote ${out}`);
  process.exit(0);
}

main().catch((err) => { console.error(err); process.exit(1); });
