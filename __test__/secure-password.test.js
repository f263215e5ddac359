// @ts-check
"use strict"
const test = require("node:test")
const assert = require("node:assert/strict")

const { SecurePassword, AuthenticationError } = require("..")
const SubPath = require("../secure-password")
const { loadVectors } = require("./helpers/vectors")

const { securePassword: SP, blitz: BlitzErrors } = require("./helpers/peers")
const sp = SP()
const v = loadVectors("secure-password.json")

/** @param {() => Promise<unknown>} fn */
async function rejectsAuth(fn) {
  await assert.rejects(fn, (/** @type {any} */ e) => {
    assert.ok(e instanceof AuthenticationError, `expected AuthenticationError, got ${e && e.name}`)
    assert.equal(e.name, "AuthenticationError")
    assert.equal(e.statusCode, 401)
    assert.equal(e.message, "You must be logged in to access this")
    return true
  })
}

test("constants and Symbols are secure-password's own", () => {
  for (const [k, val] of Object.entries(v.constants)) {
    if (typeof val === "number") assert.equal(/** @type {any} */ (SecurePassword)[k], val, k)
  }
  for (const k of ["INVALID_UNRECOGNIZED_HASH", "INVALID", "VALID", "VALID_NEEDS_REHASH"]) {
    const s = /** @type {any} */ (SecurePassword)[k]
    assert.equal(typeof s, "symbol")
    assert.equal(s.description, k)
    assert.equal(s, /** @type {any} */ (SP)[k], `${k} is the same Symbol object`)
  }
  assert.equal(SubPath.SecurePassword, SecurePassword)
})

test("errors are the app's blitz classes", async () => {
  assert.equal(AuthenticationError, BlitzErrors.AuthenticationError)
  await assert.rejects(SecurePassword.hash(""), BlitzErrors.AuthenticationError)
})

test("every Blitz-stored hash in the vectors verifies; wrong passwords are AuthenticationError", async () => {
  for (const c of v.hashes) {
    assert.equal(await SecurePassword.verify(c.stored_base64, c.password), SecurePassword.VALID, c.password.slice(0, 20))
    await rejectsAuth(() => SecurePassword.verify(c.stored_base64, c.password + "x"))
  }
})

test("rehash cases: t/m mismatch needs a rehash; argon2i always does (deliberate)", async () => {
  for (const c of v.rehash_cases) {
    const blitz = c.verify_correct_default_policy.result
    const want = c.encoded_string.startsWith("$argon2i$") ? "VALID_NEEDS_REHASH" : blitz
    const got = await SecurePassword.verify(c.stored_base64, c.password)
    assert.equal(got.description, want, c.label)
    await rejectsAuth(() => SecurePassword.verify(c.stored_base64, "wrong"))
  }
})

test("invalid hashes reject like Blitz; garbage after the first NUL is ignored", async () => {
  for (const c of v.invalid_cases) {
    if (c.blitz_verify.result === "VALID") {
      assert.equal(await SecurePassword.verify(c.stored_base64, c.password), SecurePassword.VALID, c.label)
    } else {
      await rejectsAuth(() => SecurePassword.verify(c.stored_base64, c.password))
    }
  }
})

test("Node's lenient base64 is accepted", async () => {
  for (const c of v.base64_leniency) {
    assert.equal((await SecurePassword.verify(c.stored_base64, c.password)).description, c.blitz_verify.result, c.label)
  }
})

test("input validation matches Blitz", async () => {
  const valid = v.hashes[0].stored_base64
  for (const bad of [undefined, null, ""]) await rejectsAuth(() => SecurePassword.hash(/** @type {any} */ (bad)))
  assert.equal((await SecurePassword.hash(" ")).length, 172)
  await assert.rejects(SecurePassword.hash(/** @type {any} */ (12345)), (/** @type {any} */ e) => {
    assert.equal(e.code, "ERR_INVALID_ARG_TYPE")
    assert.ok(e instanceof TypeError)
    return true
  })
  await assert.rejects(SecurePassword.hash(/** @type {any} */ ({ toString: () => "x" })), TypeError)
  await rejectsAuth(() => SecurePassword.verify(/** @type {any} */ (undefined), "pass"))
  await rejectsAuth(() => SecurePassword.verify("pass", /** @type {any} */ (undefined)))
  await rejectsAuth(() => SecurePassword.verify(null, null))
  await rejectsAuth(() => SecurePassword.verify("", ""))
  await rejectsAuth(() => SecurePassword.verify(valid, ""))
  await rejectsAuth(() => SecurePassword.verify(valid, /** @type {any} */ (12345)))
  await rejectsAuth(() => SecurePassword.verify(/** @type {any} */ (12345), "mypass"))
  assert.throws(() => SecurePassword.hashSync(""), AuthenticationError)
  assert.throws(() => SecurePassword.hashSync(/** @type {any} */ (1)), TypeError)
  assert.throws(() => SecurePassword.verifySync(valid, "nope"), AuthenticationError)
})

const crossPasswords = [
  "ascii-password",
  "pässwörd 密码🔑",
  "nul\u0000inside",
  "x".repeat(1000),
  "\ud800 lone surrogate",
]

test("cross-check: our hashes verify in secure-password, both ways", async () => {
  for (const pw of crossPasswords) {
    const ours = await SecurePassword.hash(pw)
    assert.equal(ours.length, 172)
    const buf = Buffer.from(ours, "base64")
    assert.equal(buf.length, 128)
    assert.match(buf.toString("latin1"), /^\$argon2id\$v=19\$m=65536,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}\0+$/)
    assert.equal(await sp.verify(Buffer.from(pw), buf), SP.VALID, `secure-password verifies ours: ${pw.slice(0, 12)}`)
    assert.equal(await sp.verify(Buffer.from(pw + "!"), buf), SP.INVALID)

    const theirs = (await sp.hash(Buffer.from(pw))).toString("base64")
    assert.equal(await SecurePassword.verify(theirs, pw), SecurePassword.VALID, `we verify theirs: ${pw.slice(0, 12)}`)
    await rejectsAuth(() => SecurePassword.verify(theirs, pw + "!"))
  }
})

test("sync twins agree with the async API", async () => {
  const h = SecurePassword.hashSync("sync-pw")
  assert.equal(await SecurePassword.verify(h, "sync-pw"), SecurePassword.VALID)
  const a = await SecurePassword.hash("sync-pw")
  assert.equal(SecurePassword.verifySync(a, "sync-pw"), SecurePassword.VALID)
  assert.equal(SecurePassword.verifySync(Buffer.from(a, "base64"), Buffer.from("sync-pw")), SecurePassword.VALID)
})

test("lenient base64 matches Node's decoder on mutated hashes (differential)", async () => {
  // A cheap hash (m=8 KiB, t=1) makes hundreds of verifications fast.
  const cheap = v.rehash_cases.find((/** @type {any} */ c) => c.label === "weaker_opslimit1_memlimit8192")
  const base = cheap.stored_base64
  const pw = cheap.password
  let seed = 12345
  const rand = (/** @type {number} */ n) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  const noise = [" ", "\n", "\t", "=", "-", "_", "*", "%", "é", "A", "+", "/", ".", "$"]
  let agreeValid = 0
  for (let i = 0; i < 300; i++) {
    let s = base
    const edits = 1 + rand(3)
    for (let e = 0; e < edits; e++) {
      const at = rand(s.length + 1)
      const kind = rand(3)
      if (kind === 0) s = s.slice(0, at) + noise[rand(noise.length)] + s.slice(at)
      else if (kind === 1) s = s.slice(0, at) + s.slice(at + 1)
      else s = s.replace(/\+/g, "-").replace(/\//g, "_")
    }
    const nodeBuf = Buffer.from(s, "base64")
    let expectValid = false
    if (nodeBuf.length === 128) {
      const r = await sp.verify(Buffer.from(pw), nodeBuf)
      expectValid = r === SP.VALID || r === SP.VALID_NEEDS_REHASH
    }
    let gotValid = false
    try {
      await SecurePassword.verify(s, pw)
      gotValid = true
    } catch (e) {
      assert.ok(e instanceof AuthenticationError)
    }
    assert.equal(gotValid, expectValid, `mutation ${i}: ${JSON.stringify(s)}`)
    if (gotValid) agreeValid++
  }
  assert.ok(agreeValid > 20, `only ${agreeValid} mutations stayed valid; the test would prove little`)
})

test("many concurrent calls queue on the bounded pool and all succeed", async () => {
  const { hashPoolStats } = require("..")
  const pws = Array.from({ length: 8 }, (_, i) => `concurrent-${i}`)
  const hashes = await Promise.all(pws.map((p) => SecurePassword.hash(p)))
  const results = await Promise.all(hashes.map((h, i) => SecurePassword.verify(h, pws[i])))
  for (const r of results) assert.equal(r, SecurePassword.VALID)
  const stats = hashPoolStats()
  assert.ok(stats.threads <= stats.maxThreads, JSON.stringify(stats))
  assert.ok(stats.arenas <= stats.maxThreads, JSON.stringify(stats))
})
