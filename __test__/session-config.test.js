// @ts-check
"use strict"
// AuthServerPlugin options and environment against spec/vectors/session-config.json.
// Defaults depend on the environment at configuration time, so every mode runs
// in its own child process with the clock frozen at 2025-01-15T12:00:00Z.
// Deliberate differences from Blitz are asserted as ours, with their §16 Q number.

const test = require("node:test")
const assert = require("node:assert/strict")
const path = require("node:path")
const crypto = require("node:crypto")
const { execFileSync } = require("node:child_process")

const ours = require("..")
const { loadVectors } = require("./helpers/vectors")
const { decodeJwt, parseSetCookie } = require("./helpers/session-kit")

const vectors = loadVectors("session-config.json")
const ROOT = path.resolve(__dirname, "..")
const FROZEN = "2025-01-15T12:00:00Z"

/**
 * @typedef {{ op: "get", method?: string, cookie?: string, csrf?: string }
 *   | { op: "create", publicData: Record<string, any> }
 *   | { op: "setPublicData", data: Record<string, any> }} Step
 * @typedef {{ name: string, message: string, code?: string }} Thrown
 * @typedef {{ ok: true, handle: string, userId: unknown, antiCsrf: string, setCookie: string[] } | { ok: false, thrown: Thrown }} StepResult
 * @typedef {{ plugin: { ok: true } | { ok: false, thrown: Thrown }, prefix: string, steps: StepResult[] }} ChildResult
 */

// The child: configure ours with the options (the string "__undefined__"
// stands for an option present with the value undefined), then run the steps
// against one browser. `cookie: "$jar"` sends the cookies collected so far,
// `csrf: "$csrf"` the anti-CSRF cookie's value.
const CHILD = `
"use strict"
const FROZEN = Date.parse(${JSON.stringify(FROZEN)})
Date.now = () => FROZEN
const ours = require(${JSON.stringify(ROOT)})
const input = JSON.parse(process.env.TEST_INPUT)
const options = {}
for (const [k, v] of Object.entries(input.options)) options[k] = v === "__undefined__" ? undefined : v
const thrown = (e) => ({ name: e && e.name, message: e && e.message, code: e && e.code })
const out = { steps: [] }
const jar = new Map()
;(async () => {
  try {
    ours.AuthServerPlugin({ cookiePrefix: "test", isAuthorized: ours.simpleRolesIsAuthorized, ...options })
    out.plugin = { ok: true }
  } catch (e) {
    out.plugin = { ok: false, thrown: thrown(e) }
  }
  out.prefix = globalThis.__BLITZ_SESSION_COOKIE_PREFIX
  let session = null
  for (const step of input.steps) {
    try {
      if (step.op === "get") {
        const cookie = step.cookie === "$jar" ? [...jar].map(([n, v]) => n + "=" + v).join("; ") : step.cookie || ""
        const headers = { host: "localhost:3000", cookie }
        const csrfName = globalThis.__BLITZ_SESSION_COOKIE_PREFIX + "_sAntiCsrfToken"
        if (step.csrf !== undefined) headers["anti-csrf"] = step.csrf === "$csrf" ? decodeURIComponent(jar.get(csrfName) || "") : step.csrf
        session = await ours.getSession(new Request("http://localhost:3000/", { method: step.method || "GET", headers }))
      } else if (step.op === "create") {
        await session.$create(step.publicData)
      } else if (step.op === "setPublicData") {
        await session.$setPublicData(step.data)
      }
      const res = new Response("")
      session.setSession(res)
      const setCookie = res.headers.getSetCookie()
      for (const c of setCookie) {
        const nv = c.split(";")[0]
        const i = nv.indexOf("=")
        if (/Expires=Thu, 01 Jan 1970/.test(c)) jar.delete(nv.slice(0, i))
        else jar.set(nv.slice(0, i), nv.slice(i + 1))
      }
      out.steps.push({ ok: true, handle: session.$handle, userId: session.userId, antiCsrf: session.$antiCSRFToken(), setCookie })
    } catch (e) {
      out.steps.push({ ok: false, thrown: thrown(e) })
    }
  }
  process.stdout.write(JSON.stringify(out))
})()
`

/** Environment variables the modes set; removed from the child's environment unless given. */
const ENV_KEYS = [
  "NODE_ENV",
  "DISABLE_SECURE_COOKIES",
  "DANGEROUSLY_DISABLE_CSRF_PROTECTION",
  "SESSION_SECRET_KEY",
  "SESSION_SECRET_KEY_PREVIOUS",
  "SECRET_SESSION_KEY",
]

/**
 * @param {{ env?: Record<string, string | undefined>, options?: Record<string, any>, steps?: Step[] }} input
 * @returns {ChildResult}
 */
function runChild({ env = {}, options = {}, steps = [{ op: "get" }] }) {
  /** @type {Record<string, string>} */
  const childEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !ENV_KEYS.includes(k)) childEnv[k] = v
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v
  childEnv.TEST_INPUT = JSON.stringify({ options, steps })
  const stdout = execFileSync(process.execPath, ["-e", CHILD], { env: childEnv, encoding: "utf8" })
  return JSON.parse(stdout)
}

/** The environment of a vector run. @param {any} runEnv */
function envOf(runEnv) {
  /** @type {Record<string, string | undefined>} */
  const env = {}
  if (runEnv.NODE_ENV) env.NODE_ENV = runEnv.NODE_ENV
  if (runEnv.DISABLE_SECURE_COOKIES) env.DISABLE_SECURE_COOKIES = runEnv.DISABLE_SECURE_COOKIES
  if (runEnv.SESSION_SECRET_KEY_length) env.SESSION_SECRET_KEY = "k".repeat(runEnv.SESSION_SECRET_KEY_length)
  if (runEnv.SECRET_SESSION_KEY_set) env.SECRET_SESSION_KEY = "s".repeat(40)
  return env
}

/** Cookie values replaced by `<value>`, as in the vector file. @param {string[]} lines */
const normalize = (lines) => lines.map((c) => c.replace(/^([^=]+)=[^;]*/, "$1=<value>"))

/** @param {StepResult} r @returns {Extract<StepResult, { ok: true }>} */
function ok(r) {
  if (!r.ok) assert.fail(`step threw ${r.thrown.name}: ${r.thrown.message}`)
  return r
}

/** @param {string} mode */
const run = (mode) => vectors.runs.find((/** @type {any} */ r) => r.mode === mode)

// ---------------------------------------------------------------------------
// The vector modes.

for (const r of vectors.runs) {
  test(`mode ${r.mode}`, () => {
    const options = vectors.modes_options[r.mode] ?? {}
    const steps = /** @type {Step[]} */ (r.after_create ? [{ op: "get" }, { op: "create", publicData: { userId: 1 } }] : [{ op: "get" }])
    const got = runChild({ env: envOf(r.env), options, steps })

    if (r.mode === "badsamesite") {
      // Deliberate (§3.2; no Q number in §16): Blitz throws TypeError("option sameSite is invalid") on every
      // request while building a cookie; ours rejects the option once, at AuthServerPlugin(...).
      assert.equal(got.plugin.ok, false)
      const t = /** @type {Thrown} */ (/** @type {any} */ (got.plugin).thrown)
      assert.equal(t.name, r.thrown.name)
      assert.equal(t.code, "INVALID_CONFIG")
      assert.ok(t.message.startsWith(r.thrown.message), t.message)
      return
    }
    assert.deepEqual(got.plugin, { ok: true })
    assert.equal(got.prefix, "test")

    if (r.thrown) {
      // The production secret checks: thrown by the first getSession (not at start-up), verbatim.
      const [first] = got.steps
      assert.equal(first.ok, false)
      const t = /** @type {any} */ (first).thrown
      assert.equal(t.name, r.thrown.name)
      assert.equal(t.message, r.thrown.message)
      return
    }

    const [first, second] = got.steps.map(ok)
    let want = r.set_cookie
    if (r.mode === "prod_disable_secure_false_string") {
      // Q20 (deliberate): DISABLE_SECURE_COOKIES acts only on "1"/"true"; "false" keeps Secure,
      // so ours writes what production writes without it (Blitz dropped Secure).
      assert.ok(!want[0].includes("Secure"), "the vector shows Blitz's behaviour")
      want = run("prod_localhost").set_cookie
    }
    assert.deepEqual(normalize(first.setCookie), want)
    if (r.after_create) assert.deepEqual(normalize(second.setCookie), r.after_create)
  })
}

test("the production secret errors are thrown by every getSession until the environment is fixed", () => {
  for (const mode of ["prod_no_key", "prod_old_name", "prod_short_key"]) {
    const r = run(mode)
    const got = runChild({ env: envOf(r.env), steps: [{ op: "get" }, { op: "get", method: "POST" }] })
    assert.deepEqual(got.plugin, { ok: true }, "a production build without the secret still configures")
    for (const s of got.steps) {
      assert.equal(s.ok, false)
      assert.equal(/** @type {any} */ (s).thrown.message, r.thrown.message)
    }
  }
})

test("the secret's minimum length counts UTF-16 code units, as Blitz's .length check does", () => {
  const short = runChild({ env: { NODE_ENV: "production", SESSION_SECRET_KEY: "é".repeat(16) } })
  assert.equal(short.steps[0].ok, false, "16 units (32 UTF-8 bytes) is too short")
  assert.equal(/** @type {any} */ (short.steps[0]).thrown.message, run("prod_short_key").thrown.message)
  const emoji = runChild({ env: { NODE_ENV: "production", SESSION_SECRET_KEY: "😀".repeat(16) } })
  assert.equal(emoji.steps[0].ok, true, "32 units are enough")
})

// ---------------------------------------------------------------------------
// Deliberate differences and options beyond the vector modes.

test("Q21: an option given as undefined keeps its default (Blitz would drop SameSite, Expires=Invalid Date…)", () => {
  const undef = "__undefined__"
  const got = runChild({
    options: {
      cookiePrefix: undef,
      sessionExpiryMinutes: undef,
      anonSessionExpiryMinutes: undef,
      method: undef,
      sameSite: undef,
      secureCookies: undef,
      domain: undef,
      publicDataKeysToSyncAcrossSessions: undef,
    },
    steps: [{ op: "get" }, { op: "create", publicData: { userId: 1 } }],
  })
  assert.deepEqual(got.plugin, { ok: true })
  assert.equal(got.prefix, "blitz")
  const [anon, created] = got.steps.map(ok)
  assert.deepEqual(
    normalize(anon.setCookie),
    run("dev_default").set_cookie.map((/** @type {string} */ c) => c.replace(/^test_/, "blitz_")),
  )
  const exp = "Fri, 14 Feb 2025 12:00:00 GMT" // + 43200 minutes
  assert.deepEqual(normalize(created.setCookie), [
    "blitz_sAnonymousSessionToken=<value>; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax",
    `blitz_sAntiCsrfToken=<value>; Path=/; Expires=${exp}; SameSite=Lax`,
    `blitz_sPublicDataToken=<value>; Path=/; Expires=${exp}; SameSite=Lax`,
    `blitz_sSessionToken=<value>; Path=/; Expires=${exp}; HttpOnly; SameSite=Lax`,
  ])
})

test("Q21: non-integer minute values are truncated, as Blitz's addMinutes does", () => {
  const got = runChild({
    options: { sessionExpiryMinutes: 60.9, anonSessionExpiryMinutes: 10.5, sameSite: "strict", domain: "example.com" },
    steps: [{ op: "get" }, { op: "create", publicData: { userId: 1 } }],
  })
  const [anon, created] = got.steps.map(ok)
  const strict = run("strict_domain") // 60 and 10 minutes
  assert.deepEqual(normalize(anon.setCookie), strict.set_cookie)
  assert.deepEqual(normalize(created.setCookie), strict.after_create)
})

test("sameSite spellings: strings case-insensitively, true is Strict, false omits the attribute", () => {
  /** @type {Array<[any, string | undefined]>} */
  const cases = [
    ["Strict", "Strict"],
    ["NONE", "None"],
    ["lax", "Lax"],
    [true, "Strict"],
    [false, undefined],
    ["", undefined],
  ]
  for (const [sameSite, want] of cases) {
    const got = runChild({ options: { sameSite } })
    for (const line of ok(got.steps[0]).setCookie) assert.equal(parseSetCookie(line).sameSite, want, `${sameSite}: ${line}`)
  }
  // Invalid values of other types fail at set-up too (deliberate, see mode badsamesite).
  for (const sameSite of [1, "bogus", {}]) {
    const got = runChild({ options: { sameSite } })
    assert.equal(got.plugin.ok, false, String(sameSite))
    assert.equal(/** @type {any} */ (got.plugin).thrown.code, "INVALID_CONFIG")
  }
})

test("Q20: DISABLE_SECURE_COOKIES disables Secure only for '1' or 'true'", () => {
  for (const [value, secure] of /** @type {Array<[string, boolean]>} */ ([
    ["1", false],
    ["true", false],
    ["false", true],
    ["0", true],
    ["", true],
  ])) {
    const got = runChild({ env: { NODE_ENV: "production", SESSION_SECRET_KEY: "k".repeat(40), DISABLE_SECURE_COOKIES: value } })
    for (const line of ok(got.steps[0]).setCookie) assert.equal(parseSetCookie(line).secure, secure, `${JSON.stringify(value)}: ${line}`)
  }
  // An explicit option wins over the environment both ways.
  const off = runChild({ env: { NODE_ENV: "production", SESSION_SECRET_KEY: "k".repeat(40) }, options: { secureCookies: false } })
  assert.ok(ok(off.steps[0]).setCookie.every((l) => !parseSetCookie(l).secure))
  const on = runChild({ options: { secureCookies: true } })
  assert.ok(ok(on.steps[0]).setCookie.every((l) => parseSetCookie(l).secure))
})

test("Q20: DANGEROUSLY_DISABLE_CSRF_PROTECTION disables the check only for '1' or 'true'", () => {
  for (const [value, disabled] of /** @type {Array<[string | undefined, boolean]>} */ ([
    [undefined, false],
    ["1", true],
    ["true", true],
    ["false", false],
    ["0", false],
  ])) {
    const got = runChild({
      env: { DANGEROUSLY_DISABLE_CSRF_PROTECTION: value },
      steps: [{ op: "get" }, { op: "get", method: "POST", cookie: "$jar" }, { op: "get", method: "POST", cookie: "$jar", csrf: "$csrf" }],
    })
    const [anon, noHeader, withHeader] = got.steps
    assert.equal(noHeader.ok, disabled, `${value}: POST without anti-csrf`)
    if (!noHeader.ok) assert.equal(noHeader.thrown.name, "CSRFTokenMismatchError")
    else assert.equal(noHeader.handle, ok(anon).handle, "the same session, not a new one")
    assert.equal(ok(withHeader).handle, ok(anon).handle)
  }
})

test("other invalid options fail at set-up with INVALID_CONFIG", () => {
  for (const options of /** @type {Record<string, any>[]} */ ([
    { sessionExpiryMinutes: 0 },
    { anonSessionExpiryMinutes: -1 },
    { anonSessionExpiryMinutes: Infinity },
    { domain: 5 },
    { publicDataKeysToSyncAcrossSessions: "role" },
    { publicDataKeysToSyncAcrossSessions: [1] },
    { method: "advanced" },
    { method: "bogus" },
  ])) {
    assert.throws(
      () => ours.AuthServerPlugin({ isAuthorized: ours.simpleRolesIsAuthorized, ...options }),
      (/** @type {any} */ e) => e instanceof TypeError && /** @type {any} */ (e).code === "INVALID_CONFIG",
      JSON.stringify(options),
    )
  }
})

// ---------------------------------------------------------------------------
// Plugin set-up errors (in this process: they do not depend on the environment).

test("plugin set-up errors: messages verbatim, thrown by AuthServerPlugin(...) itself", () => {
  const byLabel = Object.fromEntries(vectors.plugin_setup_errors.results.map((/** @type {any} */ r) => [r.label, r]))
  const isAuthorized = ours.simpleRolesIsAuthorized
  /** @type {Record<string, any>} */
  const options = {
    no_isAuthorized: { cookiePrefix: "fine" },
    bad_prefix: { cookiePrefix: "bad prefix!", isAuthorized },
    empty_prefix: { cookiePrefix: "", isAuthorized },
    ok_prefix: { cookiePrefix: "My-App_1", isAuthorized },
  }
  assert.deepEqual(Object.keys(byLabel).sort(), Object.keys(options).sort())
  for (const [label, r] of Object.entries(byLabel)) {
    const call = () => ours.AuthServerPlugin(options[label])
    if (r.ok) {
      const plugin = call()
      assert.equal(/** @type {any} */ (globalThis).__BLITZ_SESSION_COOKIE_PREFIX, r.prefix_global)
      assert.equal(plugin.requestMiddlewares.length, 1)
    } else {
      assert.throws(call, (/** @type {any} */ e) => e.name === r.thrown.name && e.message === r.thrown.message, label)
    }
  }
  // Other characters outside [a-zA-Z0-9_-] are rejected too.
  for (const cookiePrefix of ["a.b", "ä", "a=b", "a;b", " a"]) {
    assert.throws(() => ours.AuthServerPlugin({ cookiePrefix, isAuthorized }), /^Error: The cookie prefix used has invalid characters/)
  }
})

// ---------------------------------------------------------------------------
// Secret rotation.

/** @param {string} line @param {string} secret */
function signedWith(line, secret) {
  const jwt = decodeJwt(decodeURIComponent(parseSetCookie(line).value))
  return crypto.createHmac("sha256", secret).update(jwt.signingInput).digest("base64url") === jwt.signature
}

test("SESSION_SECRET_KEY_PREVIOUS: cookies signed with a previous key still verify; new ones use the current key", () => {
  const A = "previous-key-".padEnd(40, "a")
  const B = "current-key-".padEnd(40, "b")
  const before = runChild({ env: { SESSION_SECRET_KEY: A } })
  const anon = ok(before.steps[0])
  const anonLine = /** @type {string} */ (anon.setCookie.find((l) => l.startsWith("test_sAnonymousSessionToken=")))
  assert.ok(signedWith(anonLine, A))
  const cookie = anon.setCookie.map((l) => l.split(";")[0]).filter((c) => !c.endsWith("=")).join("; ")

  // Rotated: B signs, A (in a comma-separated list, spaces allowed) still verifies.
  const rotated = runChild({
    env: { SESSION_SECRET_KEY: B, SESSION_SECRET_KEY_PREVIOUS: `older-key-${"x".repeat(30)} , ${A}` },
    steps: [
      { op: "get", method: "POST", cookie, csrf: anon.antiCsrf },
      { op: "setPublicData", data: { theme: "dark" } },
      { op: "get", cookie: "" },
    ],
  })
  const [read, changed, fresh] = rotated.steps.map(ok)
  assert.equal(read.handle, anon.handle, "the old cookie is still the same session")
  assert.equal(read.antiCsrf, anon.antiCsrf)
  assert.deepEqual(read.setCookie, [], "and nothing is rewritten just for the rotation")
  const resigned = /** @type {string} */ (changed.setCookie.find((l) => l.startsWith("test_sAnonymousSessionToken=")))
  assert.ok(signedWith(resigned, B), "a re-signed token uses the current key")
  assert.ok(!signedWith(resigned, A))
  const newLine = /** @type {string} */ (fresh.setCookie.find((l) => l.startsWith("test_sAnonymousSessionToken=")))
  assert.ok(signedWith(newLine, B), "new sessions use the current key")

  // Without the previous key the old cookie is no session: a new anonymous one replaces it.
  const dropped = runChild({ env: { SESSION_SECRET_KEY: B }, steps: [{ op: "get", method: "POST", cookie, csrf: anon.antiCsrf }] })
  const s = ok(dropped.steps[0])
  assert.notEqual(s.handle, anon.handle)
  assert.ok(s.setCookie.some((l) => l.startsWith("test_sAnonymousSessionToken=") && signedWith(l, B)))
})
