// @ts-check
"use strict"
// Sessions on an app's own JS storage (Blitz's SessionConfigMethods), the way a
// database-backed storage behaves: every call answers later (a timer, like a
// round trip), calls overlap, and a failing call must reach the request with
// a stable code. The engine polls these operations on the JS thread
// (src/napi/completion.rs); these tests hold that path to the same results.
const test = require("node:test")
const assert = require("node:assert/strict")
const { execFileSync } = require("node:child_process")
const { Browser } = require("./helpers/session-kit")

const { AuthServerPlugin, getSession, setPublicDataForUser, simpleRolesIsAuthorized } = require("..")

process.env.SESSION_SECRET_KEY ||= "js-storage-test-secret-0123456789abcdef"

/** A SessionConfigMethods over a Map whose every call resolves after `delayMs`. */
function slowStorage(delayMs = 1) {
  /** @type {Map<string, any>} */
  const rows = new Map()
  const later = (/** @type {() => any} */ f) => new Promise((resolve, reject) => setTimeout(() => {
    try {
      resolve(f())
    } catch (e) {
      reject(e)
    }
  }, delayMs))
  const calls = { getSession: 0, getSessions: 0, createSession: 0, updateSession: 0, deleteSession: 0 }
  return {
    rows,
    calls,
    /** @type {string | null} a method that throws while set */
    failing: /** @type {string | null} */ (null),
    /** @param {string} m */
    check(m) {
      calls[/** @type {keyof typeof calls} */ (m)]++
      if (this.failing === m) throw Object.assign(new Error(`database said no to ${m}`), { code: "P1001" })
    },
    getSession(/** @type {string} */ handle) {
      return later(() => (this.check("getSession"), rows.get(handle) ?? null))
    },
    getSessions(/** @type {any} */ userId) {
      return later(() => (this.check("getSessions"), [...rows.values()].filter((r) => r.userId === userId)))
    },
    createSession(/** @type {any} */ session) {
      return later(() => (this.check("createSession"), rows.set(session.handle, { ...session }), session))
    },
    updateSession(/** @type {string} */ handle, /** @type {any} */ session) {
      return later(() => {
        this.check("updateSession")
        const cur = rows.get(handle)
        if (!cur) return undefined
        const next = { ...cur, ...session }
        rows.set(handle, next)
        return next
      })
    },
    deleteSession(/** @type {string} */ handle) {
      return later(() => {
        this.check("deleteSession")
        const cur = rows.get(handle)
        rows.delete(handle)
        return cur
      })
    },
  }
}

test("overlapping requests on a storage that answers later each get their own session", async () => {
  const storage = slowStorage(2)
  AuthServerPlugin({ cookiePrefix: "js", isAuthorized: simpleRolesIsAuthorized, storage })
  const users = Array.from({ length: 40 }, (_, i) => ({ userId: i + 1, jar: new Browser("js", getSession) }))
  await Promise.all(users.map((u) => u.jar.visit("POST", (s) => s.$create({ userId: u.userId, role: "user" }, { n: u.userId }))))
  assert.equal(storage.rows.size, 40)
  for (let round = 0; round < 2; round++) {
    const sessions = await Promise.all(users.map((u) => getSession(u.jar.request("GET"))))
    sessions.forEach((s, i) => assert.equal(s.userId, users[i].userId))
    const privates = await Promise.all(sessions.map((s) => s.$getPrivateData()))
    privates.forEach((p, i) => assert.deepEqual(p, { n: users[i].userId }))
  }
  // Several operations on one session, not awaited in between, still run in order.
  const s = await getSession(users[0].jar.request("POST"))
  const done = [s.$setPublicData({ a: 1 }), s.$setPublicData({ b: 2 }), s.$setPrivateData({ c: 3 })]
  await Promise.all(done)
  assert.deepEqual({ a: s.$publicData.a, b: s.$publicData.b }, { a: 1, b: 2 })
  assert.deepEqual(await s.$getPrivateData(), { n: 1, c: 3 })

  await setPublicDataForUser(2, { role: "admin" })
  assert.equal((await users[1].jar.visit("GET")).role, "admin")
  await Promise.all(users.map((u) => u.jar.visit("POST", (x) => x.$revoke())))
  assert.equal(storage.rows.size, 0)
})

test("a storage call that fails reaches the request as SESSION_STORE_FAILED with the storage's message", async () => {
  const storage = slowStorage(1)
  AuthServerPlugin({ cookiePrefix: "js", isAuthorized: simpleRolesIsAuthorized, storage })
  const jar = new Browser("js", getSession)
  await jar.visit("POST", (s) => s.$create({ userId: 5 }))
  storage.failing = "getSession"
  await assert.rejects(getSession(jar.request("GET")), (/** @type {any} */ e) => {
    assert.equal(e.code, "SESSION_STORE_FAILED")
    assert.match(e.message, /database said no to getSession/)
    return true
  })
  storage.failing = "updateSession"
  const s = await getSession(jar.request("POST")) // reads only: unaffected
  await assert.rejects(s.$setPublicData({ x: 1 }), (/** @type {any} */ e) => e.code === "SESSION_STORE_FAILED")
  storage.failing = null
  await s.$setPublicData({ x: 2 })
  assert.equal((await jar.visit("GET")).x, 2)
})

test("a script waiting only on a storage that answers from microtasks runs to completion and exits", () => {
  // No timer, socket or other handle keeps this child alive: only the
  // engine's pending results do, and only while they are pending.
  const script = `
    const lib = require(${JSON.stringify(require.resolve(".."))})
    const rows = new Map()
    const storage = {
      getSession: async (h) => rows.get(h) ?? null,
      getSessions: async (u) => [...rows.values()].filter((r) => r.userId === u),
      createSession: async (s) => (rows.set(s.handle, { ...s }), s),
      updateSession: async (h, s) => { const c = rows.get(h); if (!c) return; const n = { ...c, ...s }; rows.set(h, n); return n },
      deleteSession: async (h) => { const c = rows.get(h); rows.delete(h); return c },
    }
    lib.AuthServerPlugin({ isAuthorized: lib.simpleRolesIsAuthorized, storage })
    ;(async () => {
      const s = await lib.getSession(new Request("http://127.0.0.1/", { method: "POST" }))
      await s.$create({ userId: 1 }, { k: "v" })
      console.log("created", s.userId, rows.size)
      console.log("private", JSON.stringify(await s.$getPrivateData()))
      await s.$revoke()
      console.log("revoked", rows.size)
    })()
  `
  const out = execFileSync(process.execPath, ["-e", script], {
    encoding: "utf8",
    timeout: 20_000,
    env: { ...process.env, SESSION_SECRET_KEY: "s".repeat(32) },
  })
  assert.equal(out, 'created 1 1\nprivate {"k":"v"}\nrevoked 0\n')
})
