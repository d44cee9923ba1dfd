// A runner, gateways and a Redis server of their own for the client's
// tests, from the binaries in MSGRUNNER_BIN on the database at
// DATABASE_URL (both provided by js_test.go). Every process is stopped
// when the stack is.
import { spawn } from "node:child_process";
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { join } from "node:path";
import pg from "pg";

const bin = process.env.MSGRUNNER_BIN;
const databaseURL = process.env.DATABASE_URL;
if (!bin || !databaseURL) {
  throw new Error("set MSGRUNNER_BIN (runner and gateway binaries) and DATABASE_URL (a migrated database); go test ./clients/js does");
}

/** A free loopback port. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A child process that can be killed and started again with the same settings. */
class Proc {
  constructor(name, command, args, env, ready) {
    Object.assign(this, { name, command, args, env, ready, log: [] });
  }

  async start() {
    this.child = spawn(this.command, this.args, { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...this.env },
      stdio: ["ignore", "pipe", "pipe"] });
    const keep = (d) => { this.log.push(String(d)); if (this.log.length > 200) this.log.shift(); };
    this.child.stdout.on("data", keep);
    this.child.stderr.on("data", keep);
    this.exited = new Promise((r) => this.child.once("exit", r));
    const deadline = Date.now() + 30_000;
    while (!(await this.ready().catch(() => false))) {
      if (this.child.exitCode !== null) throw new Error(`${this.name} exited at start:\n${this.log.join("")}`);
      if (Date.now() > deadline) throw new Error(`${this.name} not ready within 30 s:\n${this.log.join("")}`);
      await sleep(50);
    }
  }

  /** SIGKILL: no draining, no goodbye. */
  async kill() {
    if (this.child && this.child.exitCode === null) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
  }
}

async function httpReady(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
  return r.ok;
}

async function redisReady(port) {
  // PING over a raw socket: no Redis client library needed.
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("error", () => resolve(false));
    s.once("connect", () => s.write("PING\r\n"));
    s.once("data", (d) => { s.destroy(); resolve(String(d).startsWith("+PONG")); });
  });
}

/** Starts Redis, a runner and `gateways` gateways. */
export async function startStack({ gateways = 2 } = {}) {
  const secret = randomBytes(24).toString("hex");
  const redisPort = await freePort();
  const dir = process.env.TEST_TMP ?? "/tmp";
  const redis = new Proc("redis", "redis-server",
    ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    {}, () => redisReady(redisPort));
  await redis.start();
  const common = { DATABASE_URL: databaseURL, REDIS_URL: `redis://127.0.0.1:${redisPort}/0`, LOG_LEVEL: "warn" };

  const runnerPort = await freePort();
  const runner = new Proc("runner", join(bin, "runner"), [], { ...common, RUNNER_ADDR: `127.0.0.1:${runnerPort}`,
    RUNNER_ID: "js-runner", CLEANUP_SCHEDULE: "off" }, () => httpReady(`http://127.0.0.1:${runnerPort}/readyz`));
  await runner.start();

  const gws = [];
  for (let i = 0; i < gateways; i++) {
    const port = await freePort();
    const g = new Proc(`gateway${i}`, join(bin, "gateway"), [], { ...common, GATEWAY_ADDR: `127.0.0.1:${port}`,
      AUTH_SECRET: secret, RATE_LIMIT_PER_SECOND: "0", GATEWAY_DB_TIMEOUT: "2s" },
      () => httpReady(`http://127.0.0.1:${port}/readyz`));
    g.url = `http://127.0.0.1:${port}`;
    await g.start();
    gws.push(g);
  }
  const db = new pg.Pool({ connectionString: databaseURL, max: 2 });

  return {
    redis, runner, gateways: gws, db,
    endpoints: gws.map((g) => g.url),
    /** An HS256 JWT for user, as `admin token` mints them. */
    token(user, ttlSeconds = 3600) {
      const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
      const now = Math.floor(Date.now() / 1000);
      const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub: user, iat: now, exp: now + ttlSeconds })}`;
      return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
    },
    async stop() {
      await db.end();
      for (const p of [...gws, runner, redis]) await p.kill();
    },
  };
}

export { randomUUID, sleep };
