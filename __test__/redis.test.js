// @ts-check
"use strict"
// Sessions in the real Redis (REDIS_URL, default 127.0.0.1:6379; CI starts one):
// the whole JS API on RedisStorage, and the failure policy against a port
// where nothing listens. Keys live under a prefix of this run and are deleted.
const test = require("node:test")
const assert = require("node:assert/strict")
const net = require("node:net")
const { execFileSync } = require("node:child_process")
const { Browser } = require("./helpers/session-kit")

const {
  AuthServerPlugin,
  RedisStorage,
  getSession,
  setPublicDataForUser,
  getAllSessionHandlesForUser,
  simpleRolesIsAuthorized,
} = require("..")

const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379"
const PREFIX = `bantest:${process.pid}:${Date.now()}:`

/** Keys of this run, through redis-cli (installed with redis-server). */
function keys() {
  const { hostname, port } = new URL(REDIS_URL)
  const out = execFileSync("redis-cli", ["-h", hostname, "-p", port || "6379", "--scan", "--pattern", `${PREFIX}*`], {
    encoding: "utf8",
  })
  return out.split("\n").filter(Boolean)
}

test.after(() => {
  const { hostname, port } = new URL(REDIS_URL)
  const k = keys()
  if (k.length) execFileSync("redis-cli", ["-h", hostname, "-p", port || "6379", "del", ...k])
})

test("the session API on Redis: login, read, role change for every session, revokeAll", async () => {
  AuthServerPlugin({
    cookiePrefix: "rt",
    isAuthorized: simpleRolesIsAuthorized,
    storage: RedisStorage({ url: REDIS_URL, prefix: PREFIX }),
  })
  const userId = 4242
  const tabs = [new Browser("rt", getSession), new Browser("rt", getSession), new Browser("rt", getSession)]
  for (const jar of tabs) {
    await jar.visit("GET") // anonymous: nothing stored in Redis
    await jar.visit("POST", (s) => s.$create({ userId, role: "user" }, { cart: [1] }))
  }
  assert.ok(keys().length >= 4, "three sessions and the user's index are in Redis")

  const s = await tabs[0].visit("GET")
  assert.equal(s.userId, userId)
  assert.equal(s.role, "user")
  assert.deepEqual(await s.$getPrivateData(), { cart: [1] })
  assert.equal((await getAllSessionHandlesForUser(userId)).length, 3)

  await setPublicDataForUser(userId, { role: "admin" })
  for (const jar of tabs) {
    const t = await jar.visit("GET")
    assert.equal(t.role, "admin")
    assert.equal(t.$isAuthorized("admin"), true)
  }

  await tabs[1].visit("POST", (x) => x.$revokeAll())
  assert.deepEqual(await getAllSessionHandlesForUser(userId), [])
  for (const jar of tabs) assert.equal((await jar.visit("GET")).userId, null, "every tab is logged out")
})

test("Redis down: requests that need it fail fast with SESSION_STORE_UNAVAILABLE (503); first visits still work", async () => {
  // A loopback port where nothing listens.
  const port = await new Promise((resolve) => {
    const srv = net.createServer()
    srv.listen(0, "127.0.0.1", () => {
      const p = /** @type {net.AddressInfo} */ (srv.address()).port
      srv.close(() => resolve(p))
    })
  })
  // Log in against the real Redis, then point a second configuration at the dead port.
  AuthServerPlugin({ cookiePrefix: "rt", isAuthorized: simpleRolesIsAuthorized, storage: RedisStorage({ url: REDIS_URL, prefix: PREFIX }) })
  const jar = new Browser("rt", getSession)
  await jar.visit("GET")
  await jar.visit("POST", (s) => s.$create({ userId: 7 }))

  AuthServerPlugin({
    cookiePrefix: "rt",
    isAuthorized: simpleRolesIsAuthorized,
    storage: RedisStorage({ url: `redis://127.0.0.1:${port}`, prefix: PREFIX, timeoutMs: 300 }),
  })
  const fresh = new Browser("rt", getSession)
  const anon = await fresh.visit("GET") // needs no store
  assert.equal(anon.userId, null)

  const started = Date.now()
  await assert.rejects(getSession(jar.request("GET")), (/** @type {any} */ e) => {
    assert.equal(e.code, "SESSION_STORE_UNAVAILABLE")
    assert.equal(e.statusCode, 503)
    assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}`))
    return true
  })
  assert.ok(Date.now() - started < 3000, `failed after ${Date.now() - started} ms`)

  // The wrapper answers 503 instead of throwing.
  const { withBlitzAuth } = require("..")
  const handler = withBlitzAuth(async () => new Response("ok"))
  const reply = await handler(jar.request("GET"), {})
  assert.equal(reply.status, 503)
  const body = /** @type {any} */ (await reply.json())
  assert.equal(body.error.code, "SESSION_STORE_UNAVAILABLE")
})

test("RedisStorage validates its options", () => {
  assert.throws(() => RedisStorage({ url: "" }), (/** @type {any} */ e) => e.code === "INVALID_CONFIG")
  assert.throws(() => RedisStorage({ url: REDIS_URL, prefix: "a{b" }), (/** @type {any} */ e) => e.code === "INVALID_CONFIG")
  assert.throws(() => RedisStorage({ url: REDIS_URL, timeoutMs: -1 }), (/** @type {any} */ e) => e.code === "INVALID_CONFIG")
  assert.throws(() => RedisStorage({ url: "http://nope" }), (/** @type {any} */ e) => e.code === "INVALID_CONFIG")
})

test("concurrent requests on Redis each settle with their own session", async () => {
  AuthServerPlugin({ cookiePrefix: "rt", isAuthorized: simpleRolesIsAuthorized, storage: RedisStorage({ url: REDIS_URL, prefix: PREFIX }) })
  const users = Array.from({ length: 60 }, (_, i) => ({ userId: `conc-${i}`, jar: new Browser("rt", getSession) }))
  await Promise.all(users.map((u) => u.jar.visit("POST", (s) => s.$create({ userId: u.userId, n: u.userId }))))
  for (let round = 0; round < 3; round++) {
    // Results come back in batches and out of order: each must reach its own request.
    const sessions = await Promise.all(users.map((u) => getSession(u.jar.request("GET"))))
    sessions.forEach((s, i) => {
      assert.equal(s.userId, users[i].userId)
      assert.equal(s.$publicData.n, users[i].userId)
    })
  }
  await Promise.all(users.map((u) => u.jar.visit("POST", (s) => s.$revoke())))
})

test("a script that only waits on Redis runs to completion, then exits by itself", () => {
  // Nothing but the pending Redis replies keeps this child's event loop
  // alive: it must neither exit early (results lost) nor hang afterwards.
  const script = `
    const lib = require(${JSON.stringify(require.resolve(".."))})
    lib.AuthServerPlugin({ isAuthorized: lib.simpleRolesIsAuthorized, storage: lib.RedisStorage({ url: ${JSON.stringify(REDIS_URL)}, prefix: ${JSON.stringify(PREFIX)} }) })
    ;(async () => {
      const s = await lib.getSession(new Request("http://127.0.0.1/", { method: "POST" }))
      await s.$create({ userId: "exit-check" })
      console.log("created", s.userId, (await lib.getAllSessionHandlesForUser("exit-check")).length)
      await s.$setPrivateData({ a: 1 })
      console.log("private", JSON.stringify(await s.$getPrivateData()))
      await s.$revokeAll()
      console.log("revoked", (await lib.getAllSessionHandlesForUser("exit-check")).length)
    })()
  `
  const out = execFileSync(process.execPath, ["-e", script], {
    encoding: "utf8",
    timeout: 20_000,
    env: { ...process.env, SESSION_SECRET_KEY: "s".repeat(32) },
  })
  assert.equal(out, 'created exit-check 1\nprivate {"a":1}\nrevoked 0\n')
})
