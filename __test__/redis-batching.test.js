// @ts-check
"use strict"
// What Redis itself sees when many requests arrive together: one command per
// authenticated request, sent in batches (the requests of one event-loop turn
// share one write on one connection). Runs its own redis-server on a free
// loopback port, so the counters are ours alone (the shared Redis serves the
// other test files at the same time).
const test = require("node:test")
const assert = require("node:assert/strict")
const net = require("node:net")
const { spawn, execFileSync } = require("node:child_process")
const { Browser } = require("./helpers/session-kit")

const { AuthServerPlugin, RedisStorage, getSession, simpleRolesIsAuthorized } = require("..")

process.env.SESSION_SECRET_KEY ||= "redis-batching-test-secret-0123456789"

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const port = /** @type {net.AddressInfo} */ (srv.address()).port
      srv.close(() => resolve(port))
    })
  })
}

/** @param {number} port @param {string[]} args */
const cli = (port, ...args) => execFileSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { encoding: "utf8" })

/** @param {number} port */
function stats(port) {
  const text = cli(port, "info", "stats") + cli(port, "info", "commandstats")
  const num = (/** @type {RegExp} */ re) => Number((re.exec(text) || [])[1] || 0)
  return {
    reads: num(/total_reads_processed:(\d+)/),
    hmget: num(/cmdstat_hmget:calls=(\d+)/),
    commands: num(/total_commands_processed:(\d+)/),
  }
}

test("a burst of authenticated requests: one HMGET each, sent in batches", async (t) => {
  const port = await freePort()
  const server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  })
  t.after(() => server.kill("SIGKILL"))
  for (let i = 0; ; i++) {
    try {
      if (cli(port, "ping").trim() === "PONG") break
    } catch {
      // not up yet
    }
    if (i > 100) throw new Error("redis-server did not start")
    await new Promise((r) => setTimeout(r, 50))
  }

  AuthServerPlugin({
    cookiePrefix: "rb",
    isAuthorized: simpleRolesIsAuthorized,
    storage: RedisStorage({ url: `redis://127.0.0.1:${port}`, prefix: "batching:" }),
  })
  const tabs = Array.from({ length: 100 }, () => new Browser("rb", getSession))
  await Promise.all(tabs.map((b, i) => b.visit("POST", (s) => s.$create({ userId: i + 1 }))))

  const before = stats(port)
  const sessions = await Promise.all(tabs.map((b) => getSession(b.request("GET"))))
  const after = stats(port)
  sessions.forEach((s, i) => assert.equal(s.userId, i + 1))

  // Two `info` calls of redis-cli itself are counted too.
  assert.equal(after.hmget - before.hmget, 100, "one HMGET per request")
  assert.equal(after.commands - before.commands - 2, 100, "and nothing else")
  // All 100 were started in one event-loop turn: they leave in one write;
  // Redis may still read them in a few chunks, never one read each.
  const reads = after.reads - before.reads - 2
  assert.ok(reads <= 10, `100 commands arrived in ${reads} reads`)
})
