"use strict"

// Sessions, side by side with the real @blitzjs/auth 3.0.2, in process, no
// HTTP: a request's getSession + setSession, driven identically for every
// contender. Used by run.js (sections "sessions" and "session-ops"); also a
// child-process entry point (`node bench/sessions.js --diagnose`) for the napi
// crossing counts, so the counting wrappers never exist in the timed process.
//
// Contenders (one process, see "Coexistence" below):
//   ours        require("..") with the embedded in-memory store (no `storage`
//               option): the default an app gets.
//   ours + JS   a second, independent instance of our JS layer (same addon)
//               configured with `storage: memoryStorage()`, the very
//               SessionConfigMethods Blitz gets: like for like.
//   Blitz       require("@blitzjs/auth").AuthServerPlugin({ storage:
//               memoryStorage(), … }) and its getSession.
//   reference   not a contender: ours' SessionEngine.resolve() called
//               directly, to show what the JS layer adds around the one
//               native call (web request scenarios only).
//
// Coexistence: Blitz keeps its configuration in global.sessionConfig and the
// cookie prefix in globalThis.__BLITZ_SESSION_COOKIE_PREFIX; ours in a module
// variable (per instance) plus that same global prefix. All set the prefix to
// "bench", so nothing interferes; the agreement checks prove each contender
// reads back its own sessions.

const http = require("http")
const net = require("net")
const path = require("path")
const { spawn } = require("child_process")

const { ROOT } = require("./contenders")
const { summarize, rotate } = require("./stats")
const { table, num, ratio, cpuSnapshot, foreignCpuShare } = require("./report")

const PREFIX = "bench"
const URL_ = "http://localhost:3000/api/rpc/getCurrentUser"
// What a browser sends besides cookies, so header handling costs what it does
// in an app (Blitz's Node path copies every header into a Headers object).
const BROWSER_HEADERS = Object.freeze({
  host: "localhost:3000",
  "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
  accept: "application/json",
  "accept-language": "en-US,en;q=0.9",
  "accept-encoding": "gzip, deflate, br",
})
const USER = Object.freeze({ userId: 1, role: "user" })
// The issue's figures for Blitz on its machine, and its targets for ours.
const ISSUE = { first: { blitz: 554, target: 10 }, authGet: { blitz: 21, target: 5 } }

const progress = (text) => process.stderr.write(text)

// ------------------------------------------------------------------ storage

/**
 * An in-memory SessionConfigMethods (Blitz's storage contract) over a Map:
 * the same factory serves Blitz and "ours + JS", each its own instance.
 * Async like a database client; rows are copied in, as a database would.
 */
function memoryStorage(counts = null) {
  const rows = new Map()
  const storage = {
    rows,
    getSession: async (handle) => rows.get(handle) ?? null,
    getSessions: async (userId) => {
      const out = []
      for (const row of rows.values()) if (row.userId === userId) out.push(row)
      return out
    },
    createSession: async (session) => {
      const row = { ...session }
      rows.set(session.handle, row)
      return row
    },
    updateSession: async (handle, session) => {
      const row = rows.get(handle)
      if (!row) return undefined
      Object.assign(row, session)
      return row
    },
    deleteSession: async (handle) => {
      const row = rows.get(handle)
      rows.delete(handle)
      return row
    },
  }
  if (counts) {
    // Diagnostic child only: count each SessionConfigMethods call.
    for (const m of ["getSession", "getSessions", "createSession", "updateSession", "deleteSession"]) {
      const orig = storage[m]
      storage[m] = (...args) => {
        counts[m] = (counts[m] || 0) + 1
        return orig(...args)
      }
    }
  }
  return storage
}

// ------------------------------------------------------------------ contenders

/**
 * A second copy of our JS layer (index.js and lib/, minus the addon loader),
 * with its own session configuration; the addon itself is shared. The module
 * cache is restored afterwards, so everything else keeps the first copy.
 */
function freshOursInstance() {
  const libDir = path.join(ROOT, "lib") + path.sep
  const keep = new Set([path.join(libDir, "native.js")])
  const keys = Object.keys(require.cache).filter(
    (k) => (k === path.join(ROOT, "index.js") || k.startsWith(libDir)) && !keep.has(k),
  )
  const saved = keys.map((k) => [k, require.cache[k]])
  for (const k of keys) delete require.cache[k]
  try {
    return require(ROOT)
  } finally {
    for (const [k, v] of saved) require.cache[k] = v
  }
}

/**
 * @param {{ oursJs?: object, blitz?: object }} [storageCounts] diagnostic child only
 */
function loadSessionContenders(storageCounts = {}) {
  const ours = require(ROOT)
  const blitz = require("@blitzjs/auth")
  ours.AuthServerPlugin({ cookiePrefix: PREFIX, isAuthorized: ours.simpleRolesIsAuthorized })
  const oursJs = freshOursInstance()
  if (oursJs.getSession === ours.getSession) throw new Error("bench: could not load a second instance of our JS layer")
  const oursJsStorage = memoryStorage(storageCounts.oursJs)
  oursJs.AuthServerPlugin({ cookiePrefix: PREFIX, storage: oursJsStorage, isAuthorized: oursJs.simpleRolesIsAuthorized })
  const blitzStorage = memoryStorage(storageCounts.blitz)
  blitz.AuthServerPlugin({ cookiePrefix: PREFIX, storage: blitzStorage, isAuthorized: blitz.simpleRolesIsAuthorized })
  // Reference only (not a contender): the addon's SessionEngine with the
  // options ours resolves for this configuration and its own in-memory store,
  // called directly, so the tables show what the JS layer and the
  // Request/Response handling add on top of the one native call.
  const { binding } = require(path.join(ROOT, "lib", "native.js"))
  const { resolveOptions, resolveSecret } = require(path.join(ROOT, "lib", "config.js"))
  const resolved = resolveOptions({ cookiePrefix: PREFIX, isAuthorized: ours.simpleRolesIsAuthorized })
  const secret = resolveSecret()
  if ("error" in secret) throw secret.error
  // The in-memory store answers at once: no ticket is ever issued, so the
  // "results ready" callback has nothing to do.
  const engine = new binding.SessionEngine({ ...resolved.engine, secret: secret.secret, previousSecrets: secret.previous }, binding.NativeStore.memory(), () => {})
  return [
    { key: "ours", name: "blitz-auth-native (embedded in-memory store)", ours: true, lib: ours },
    { key: "oursJs", name: "blitz-auth-native + JS SessionConfigMethods (Map, same as Blitz's)", ours: true, lib: oursJs, storage: oursJsStorage },
    { key: "blitz", name: "@blitzjs/auth 3.0.2 + JS SessionConfigMethods (Map)", blitz: true, lib: blitz, storage: blitzStorage },
    { key: "native", name: "(reference) ours' binding alone: SessionEngine.resolve(), no JS layer, no Request/Response", reference: true, engine },
  ]
}

/**
 * The binding answers with one encoded string (src/session/engine.rs,
 * `RequestSession::encode`): `ok␁flags␁handle␁publicData␁csrf␁userId␁tokenId␁expiresAt␁cookie…`.
 * @param {string} encoded
 */
function nativeView(encoded) {
  const f = encoded.split("\u0001")
  if (f[0] !== "ok") throw new Error(`native ${f[2]}: ${f[3]}`)
  return { state: encoded, handle: f[2], cookies: f.slice(8) }
}

/** Sessions for the reference engine, through the binding (same flows as a browser's). */
function prepareNativeSessions(c) {
  const now = () => Date.now()
  const first = nativeView(c.engine.resolve("GET", undefined, undefined, now()))
  const anonJar = new CookieJar().apply(first.cookies.map(parseSetCookie))
  c.anon = { jar: anonJar, handle: first.handle, csrf: anonJar.csrf }
  const visit = nativeView(c.engine.resolve("GET", undefined, undefined, now()))
  const jar = new CookieJar().apply(visit.cookies.map(parseSetCookie))
  const login = nativeView(c.engine.resolve("POST", jar.header(), jar.csrf, now()))
  const view = nativeView(c.engine.sessionCreate(login.state, JSON.stringify(USER), [], undefined, [], now()))
  jar.apply(view.cookies.map(parseSetCookie))
  c.user = { jar, handle: view.handle, csrf: jar.csrf }
}

// ------------------------------------------------------------------ cookies

/**
 * Set-Cookie values as sent: ours sends one header per cookie, Blitz (web
 * Response) one header joining all with ", ". Split the way Blitz's own
 * splitCookiesString does: a comma starts a new cookie only when a `name=`
 * follows (the comma in "Expires=Thu, 01 Jan" does not).
 * @param {string[]} values
 */
function splitSetCookies(values) {
  const out = []
  for (const value of values) {
    if (!value || value === "null") continue
    let start = 0
    for (let i = 0; i < value.length; i++) {
      if (value[i] !== ",") continue
      const rest = value.slice(i + 1).trimStart()
      if (/^[^=;,\s]+=/.test(rest)) {
        out.push(value.slice(start, i).trim())
        start = value.length - rest.length
        i = start - 1
      }
    }
    out.push(value.slice(start).trim())
  }
  return out.filter(Boolean)
}

/** @param {string} setCookie */
function parseSetCookie(setCookie) {
  const [pair, ...attrs] = setCookie.split(";").map((s) => s.trim())
  const eq = pair.indexOf("=")
  const cookie = { name: pair.slice(0, eq), value: pair.slice(eq + 1), attrs: {}, expiresMs: NaN }
  for (const a of attrs) {
    const i = a.indexOf("=")
    const k = (i === -1 ? a : a.slice(0, i)).toLowerCase()
    const v = i === -1 ? true : a.slice(i + 1)
    cookie.attrs[k] = v
    if (k === "expires") cookie.expiresMs = Date.parse(String(v))
  }
  return cookie
}

/** Parsed Set-Cookies of a web Response or a Node ServerResponse. */
function responseCookies(res) {
  let values
  if (typeof res.getHeader === "function") {
    const h = res.getHeader("set-cookie")
    values = h === undefined ? [] : Array.isArray(h) ? h.map(String) : [String(h)]
  } else {
    values = res.headers.getSetCookie()
  }
  return splitSetCookies(values).map(parseSetCookie)
}

/**
 * The headers a session writes. Not `anti-csrf`: Blitz echoes the request's
 * own `anti-csrf` header into the response (spec Q5), ours deliberately does
 * not, and it never carries a new token.
 */
function sessionHeaders(res) {
  const names = ["public-data-token", "session-created", "csrf-error"]
  const get = (n) => (typeof res.getHeader === "function" ? res.getHeader(n) : res.headers.get(n))
  return Object.fromEntries(names.filter((n) => get(n) != null).map((n) => [n, String(get(n))]))
}

/** A browser's cookie jar, enough for Blitz's cookies. */
class CookieJar {
  constructor() {
    this.cookies = new Map()
  }
  apply(parsed, now = Date.now()) {
    for (const c of parsed) {
      if (c.value === "" || c.expiresMs <= now) this.cookies.delete(c.name)
      else this.cookies.set(c.name, c.value)
    }
    return this
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ")
  }
  clone() {
    const jar = new CookieJar()
    jar.cookies = new Map(this.cookies)
    return jar
  }
  get csrf() {
    return this.cookies.get(`${PREFIX}_sAntiCsrfToken`)
  }
}

// ------------------------------------------------------------------ requests

const webRequest = (method, jar, csrf) => {
  const headers = { ...BROWSER_HEADERS }
  if (jar) headers.cookie = jar.header()
  if (csrf) headers["anti-csrf"] = csrf
  return new Request(URL_, { method, headers })
}

const sharedSocket = new net.Socket()
const nodeRequest = (method, jar, csrf) => {
  const req = new http.IncomingMessage(sharedSocket)
  req.method = method
  req.url = "/api/rpc/getCurrentUser"
  const headers = { ...BROWSER_HEADERS }
  if (jar) headers.cookie = jar.header()
  if (csrf) headers["anti-csrf"] = csrf
  req.headers = headers
  return req
}
const nodeResponse = (req) => new http.ServerResponse(req)

/**
 * Per contender: an anonymous session (first visit) and two logins made the
 * way a browser makes them (first visit, then a POST with the anti-CSRF
 * header that calls $create): user 1 for the request scenarios, user 3 for
 * $setPublicData (so its changing public data cannot trigger refreshes in the
 * others).
 *
 * $setPublicData alternates `theme` between "A" and "B", and each request
 * carries the cookies a browser would hold at that point (the jar after the
 * previous change): ours re-issues the session token when the public data
 * changes (README, Q1/Q2), so replaying a stale cookie would make it re-issue
 * on every request, which no browser causes.
 */
async function prepareSessions(c) {
  if (c.reference) return prepareNativeSessions(c)
  const visit = async () => {
    const session = await c.lib.getSession(webRequest("GET"))
    const res = new Response(null)
    session.setSession(res)
    return { session, res, jar: new CookieJar().apply(responseCookies(res)) }
  }
  const login = async (publicData) => {
    const { jar } = await visit()
    const session = await c.lib.getSession(webRequest("POST", jar, jar.csrf))
    await session.$create({ ...publicData })
    const res = new Response(null)
    session.setSession(res)
    jar.apply(responseCookies(res))
    return { session, res, jar, handle: session.$handle, csrf: jar.csrf }
  }
  const anon = await visit()
  c.anon = { jar: anon.jar, handle: anon.session.$handle, csrf: anon.jar.csrf, firstVisit: anon }
  c.user = await login(USER)
  c.user3 = await login({ userId: 3, role: "user" })
  c.loginCounter = 1000
  const jars = {}
  let jar = c.user3.jar
  for (const theme of ["A", "B"]) {
    const session = await c.lib.getSession(webRequest("GET", jar))
    await session.$setPublicData({ theme })
    const res = new Response(null)
    session.setSession(res)
    jar = jar.clone().apply(responseCookies(res))
    jars[theme] = jar
    c.user3.lastChange = { session, res }
  }
  c.user3.jars = jars
  c.user3.theme = "B" // what the store holds now
}

// ------------------------------------------------------------------ scenarios

// Each scenario: inputs built outside the timed region (a fresh Request and
// Response per request: Blitz writes its cookies into the request's Headers,
// and getSession(req, res) caches the session on res), then one compiled loop
// per contender so every call site inside it sees a single target.
const AsyncFunction = (async () => {}).constructor
const LOOPS = {
  web: `let s
    for (let i = 0; i < reqs.length; i++) {
      s = await getSession(reqs[i])
      s.setSession(resps[i])
    }
    return s`,
  node: `let s
    for (let i = 0; i < reqs.length; i++) s = await getSession(reqs[i], resps[i])
    return s`,
  create: `let s
    for (let i = 0; i < reqs.length; i++) {
      s = await getSession(reqs[i])
      await s.$create(data[i])
      s.setSession(resps[i])
    }
    return s`,
  native: `let r
    for (let i = 0; i < reqs.length; i++) r = engine.resolve(reqs[i].method, reqs[i].cookie, reqs[i].csrf, Date.now())
    return r`,
  setPublicData: `let s
    for (let i = 0; i < reqs.length; i++) {
      s = await getSession(reqs[i])
      await s.$setPublicData(data[i])
      s.setSession(resps[i])
    }
    return s`,
}

const SCENARIOS = [
  {
    key: "first",
    section: "sessions",
    title: "First visit: GET, no cookies → a new anonymous session",
    loop: "web",
    make: (c, n) => ({ reqs: times(n, () => webRequest("GET")), resps: times(n, () => new Response(null)) }),
    verify: (c, s, inputs) => s.userId === null && responseCookies(inputs.resps.at(-1)).length === 4,
    native: { method: "GET", jar: null, csrf: false, verify: (c, r) => nativeView(r).handle.endsWith(":ajwt") && nativeView(r).cookies.length === 4 },
  },
  {
    key: "authGet",
    section: "sessions",
    title: "Authenticated GET (valid session cookie)",
    loop: "web",
    make: (c, n) => ({ reqs: times(n, () => webRequest("GET", c.user.jar)), resps: times(n, () => new Response(null)) }),
    verify: (c, s) => s.$handle === c.user.handle && s.userId === 1,
    native: { method: "GET", jar: "user", csrf: false, verify: (c, r) => nativeView(r).handle === c.user.handle && nativeView(r).cookies.length === 0 },
  },
  {
    key: "authPost",
    section: "sessions",
    title: "Authenticated POST with the right anti-csrf header (no refresh due)",
    loop: "web",
    make: (c, n) => ({
      reqs: times(n, () => webRequest("POST", c.user.jar, c.user.csrf)),
      resps: times(n, () => new Response(null)),
    }),
    verify: (c, s) => s.$handle === c.user.handle && s.userId === 1,
    native: { method: "POST", jar: "user", csrf: true, verify: (c, r) => nativeView(r).handle === c.user.handle && nativeView(r).cookies.length === 0 },
  },
  {
    key: "anonGet",
    section: "sessions",
    title: "Anonymous GET with a valid anonymous-session cookie",
    loop: "web",
    make: (c, n) => ({ reqs: times(n, () => webRequest("GET", c.anon.jar)), resps: times(n, () => new Response(null)) }),
    verify: (c, s) => s.$handle === c.anon.handle && s.userId === null,
    native: { method: "GET", jar: "anon", csrf: false, verify: (c, r) => nativeView(r).handle === c.anon.handle && nativeView(r).cookies.length === 0 },
  },
  {
    key: "nodeAuthGet",
    section: "sessions",
    title: "Node path: getSession(req, res), authenticated GET (http.IncomingMessage / http.ServerResponse, no socket)",
    loop: "node",
    make: (c, n) => {
      const reqs = times(n, () => nodeRequest("GET", c.user.jar))
      return { reqs, resps: reqs.map(nodeResponse) }
    },
    verify: (c, s, inputs) => s.$handle === c.user.handle && s.userId === 1 && inputs.resps.at(-1).blitzCtx.session === s,
  },
  {
    key: "create",
    section: "session-ops",
    title: "Login: anonymous POST (anti-csrf) → $create({ userId, role }) → setSession",
    loop: "create",
    make: (c, n) => ({
      reqs: times(n, () => webRequest("POST", c.anon.jar, c.anon.csrf)),
      resps: times(n, () => new Response(null)),
      data: times(n, () => ({ userId: c.loginCounter++, role: "user" })),
    }),
    verify: (c, s, inputs) => s.userId === inputs.data.at(-1).userId && s.$handle.endsWith(":ots"),
  },
  {
    key: "setPublicData",
    section: "session-ops",
    title: "Authenticated GET → $setPublicData({ theme }) → setSession (the value alternates, cookies as a browser holds them)",
    loop: "setPublicData",
    make: (c, n) => {
      const reqs = new Array(n)
      const data = new Array(n)
      for (let i = 0; i < n; i++) {
        const next = c.user3.theme === "A" ? "B" : "A"
        reqs[i] = webRequest("GET", c.user3.jars[c.user3.theme])
        data[i] = { theme: next }
        c.user3.theme = next
      }
      return { reqs, data, resps: times(n, () => new Response(null)) }
    },
    verify: (c, s, inputs) => s.$handle === c.user3.handle && s.$publicData.theme === inputs.data.at(-1).theme,
  },
]

function times(n, make) {
  const out = new Array(n)
  for (let i = 0; i < n; i++) out[i] = make(i)
  return out
}

function compileLoop(scenario, contender) {
  if (contender.reference) {
    const body = `// ${scenario.key} loop for the reference engine\n${LOOPS.native}`
    const fn = new Function("engine", "reqs", body)
    return async (inputs) => fn(contender.engine, inputs.reqs)
  }
  const body = `// ${scenario.key} loop for ${JSON.stringify(contender.name)}\n${LOOPS[scenario.loop]}`
  const fn = new AsyncFunction("getSession", "reqs", "resps", "data", body)
  return (inputs) => fn(contender.lib.getSession, inputs.reqs, inputs.resps, inputs.data)
}

/** Inputs for the reference engine: what getSession would read from the request. */
function nativeInputs(spec, c, n) {
  const jar = spec.jar ? c[spec.jar].jar : null
  const req = { method: spec.method, cookie: jar ? jar.header() : undefined, csrf: spec.csrf ? jar.csrf : undefined }
  return { reqs: times(n, () => ({ ...req })) }
}

const scenarioInputs = (scenario, c, n) => (c.reference ? nativeInputs(scenario.native, c, n) : scenario.make(c, n))
const scenarioVerify = (scenario, c, last, inputs) => (c.reference ? scenario.native.verify(c, last) : scenario.verify(c, last, inputs))
const contendersFor = (scenario, contenders) => contenders.filter((c) => !c.reference || scenario.native)

/** One batch: build inputs (untimed), run them back to back, check the last session. */
async function runBatch(scenario, c, loop, n) {
  const inputs = scenarioInputs(scenario, c, n)
  const cpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  const last = await loop(inputs)
  const ns = Number(process.hrtime.bigint() - t0)
  const cpu = process.cpuUsage(cpu0)
  if (!scenarioVerify(scenario, c, last, inputs)) {
    throw new Error(`bench: ${c.name} gave an unexpected session in scenario ${scenario.key} (handle ${last && last.$handle})`)
  }
  return { usPerRequest: ns / 1e3 / n, cpuUsPerRequest: (cpu.user + cpu.system) / n }
}

/** Round-robin batches, first mover rotated each round, warm-up discarded. */
async function timeScenario(scenario, allContenders, config) {
  const contenders = contendersFor(scenario, allContenders)
  const loops = contenders.map((c) => compileLoop(scenario, c))
  const batches = contenders.map(() => [])
  const total = config.sessWarmup + config.sessRounds
  const before = cpuSnapshot()
  for (let round = 0; round < total; round++) {
    for (const i of rotate(contenders.map((_, k) => k), round)) {
      const b = await runBatch(scenario, contenders[i], loops[i], config.sessBatch)
      if (round >= config.sessWarmup) batches[i].push(b)
    }
    if (round % 5 === 4) progress(".")
  }
  const share = foreignCpuShare(before, cpuSnapshot())
  const rows = contenders.map((c, i) => {
    const samples = batches[i].map((b) => b.usPerRequest)
    const summary = summarize(samples)
    return {
      key: c.key,
      name: c.name,
      ours: !!c.ours,
      blitz: !!c.blitz,
      reference: !!c.reference,
      samples,
      cpuSamples: batches[i].map((b) => b.cpuUsPerRequest),
      summary,
      cpuUsPerRequest: summarize(batches[i].map((b) => b.cpuUsPerRequest)).median,
      requestsPerSecond: 1e6 / summary.median,
    }
  })
  const blitz = rows.find((r) => r.blitz)
  for (const r of rows) r.blitzOverThis = blitz.summary.median / r.summary.median
  return { key: scenario.key, title: scenario.title, foreignCpuShare: share, rows }
}

// ------------------------------------------------------------------ checks

async function sessionChecks(allContenders) {
  const contenders = allContenders.filter((c) => !c.reference)
  const results = []
  const check = (name, ok, detail = "") => results.push({ name: `sessions: ${name}`, ok: ok === true, detail: ok === true ? "" : [detail, typeof ok === "string" ? ok : ""].filter(Boolean).join("; ") })
  const attempt = async (name, fn) => {
    try {
      await fn()
    } catch (err) {
      check(name, false, `threw ${err && err.stack ? err.stack.split("\n").slice(0, 2).join(" ") : err}`)
    }
  }
  const [ours] = contenders
  const others = contenders.slice(1)
  const names = (cookies) => cookies.map((c) => c.name).sort().join(",")
  // Name, empty or not, and attributes; Expires compared as a time (±60 s).
  const sameCookies = (a, b) => {
    if (names(a) !== names(b)) return `names ${names(a)} vs ${names(b)}`
    for (const x of a) {
      const y = b.find((c) => c.name === x.name)
      const attrs = (c) => JSON.stringify(Object.entries(c.attrs).filter(([k]) => k !== "expires").sort())
      if ((x.value === "") !== (y.value === "")) return `${x.name}: one value empty, the other not`
      if (attrs(x) !== attrs(y)) return `${x.name}: attributes ${attrs(x)} vs ${attrs(y)}`
      if ("expires" in x.attrs !== "expires" in y.attrs || Math.abs(x.expiresMs - y.expiresMs) > 60000 || Number.isNaN(x.expiresMs) !== Number.isNaN(y.expiresMs)) {
        return `${x.name}: Expires ${x.attrs.expires} vs ${y.attrs.expires}`
      }
    }
    return true
  }
  const each = (fn) => {
    for (const c of others) {
      const r = fn(c)
      if (r !== true) return `${c.key}: ${r}`
    }
    return true
  }

  await attempt("setup", async () => {
    for (const c of allContenders) await prepareSessions(c)
  })
  if (results.length) return results

  const fv = (c) => c.anon.firstVisit.res
  check(
    "first visit (web Request → Response): same Set-Cookie names and attributes (Path, HttpOnly, SameSite, Expires ±60 s, cleared or not) and headers — ours, ours + JS storage, Blitz",
    each((c) => {
      const r = sameCookies(responseCookies(fv(ours)), responseCookies(fv(c)))
      if (r !== true) return r
      const h1 = JSON.stringify(sessionHeaders(fv(ours)))
      const h2 = JSON.stringify(sessionHeaders(fv(c)))
      return h1 === h2 || `headers ${h1} vs ${h2}`
    }),
    names(responseCookies(fv(ours))),
  )
  check(
    "first visit: a new anonymous session (…:ajwt handle, userId null) for every contender",
    contenders.every((c) => c.anon.firstVisit.session.$handle.endsWith(":ajwt") && c.anon.firstVisit.session.userId === null),
    contenders.map((c) => `${c.key}: ${c.anon.firstVisit.session.$handle}`).join(", "),
  )
  await attempt("first visit via Node", async () => {
    const got = []
    for (const c of contenders) {
      const req = nodeRequest("GET")
      const res = nodeResponse(req)
      await c.lib.getSession(req, res)
      got.push({ c, cookies: responseCookies(res), headers: sessionHeaders(res) })
    }
    check(
      "first visit via getSession(IncomingMessage, ServerResponse): same cookies and headers for all, and the same as via web Request",
      (() => {
        for (const g of got) {
          const r = sameCookies(responseCookies(fv(ours)), g.cookies)
          if (r !== true) return `${g.c.key}: ${r}`
          if (JSON.stringify(g.headers) !== JSON.stringify(sessionHeaders(fv(ours)))) return `${g.c.key}: headers ${JSON.stringify(g.headers)}`
        }
        return true
      })(),
    )
  })
  await attempt("anonymous read-back", async () => {
    const bad = []
    for (const c of contenders) {
      const s = await c.lib.getSession(webRequest("GET", c.anon.jar))
      if (s.$handle !== c.anon.handle || s.userId !== null) bad.push(`${c.key}: ${s.$handle}`)
    }
    check("anonymous GET with its cookie: each contender reads back the session it created (same handle, userId null)", bad.length === 0, bad.join(", "))
  })
  const readBack = {}
  await attempt("authenticated GET", async () => {
    const bad = []
    for (const c of contenders) {
      const s = await c.lib.getSession(webRequest("GET", c.user.jar))
      const res = new Response(null)
      s.setSession(res)
      readBack[c.key] = { userId: s.userId, publicData: { ...s.$publicData }, role: s.role, cookies: responseCookies(res) }
      if (s.$handle !== c.user.handle) bad.push(`${c.key}: handle ${s.$handle} vs ${c.user.handle}`)
    }
    const want = JSON.stringify(USER)
    const wrong = contenders.filter((c) => readBack[c.key].userId !== 1 || JSON.stringify(readBack[c.key].publicData) !== want || readBack[c.key].role !== "user")
    check(
      `authenticated GET: same handle as $create gave, userId 1 and publicData ${want} (and session.role via the proxy) for all`,
      bad.length === 0 && wrong.length === 0,
      [...bad, ...wrong.map((c) => `${c.key}: ${JSON.stringify(readBack[c.key])}`)].join(", "),
    )
    check(
      "authenticated GET: no cookie re-issued by any contender (Blitz's web setSession appends a literal `Set-Cookie: null`, ignored here)",
      contenders.every((c) => readBack[c.key].cookies.length === 0),
      contenders.map((c) => `${c.key}: ${names(readBack[c.key].cookies)}`).join("; "),
    )
  })
  await attempt("authenticated POST", async () => {
    const bad = []
    for (const c of contenders) {
      const s = await c.lib.getSession(webRequest("POST", c.user.jar, c.user.csrf))
      const res = new Response(null)
      s.setSession(res)
      if (s.$handle !== c.user.handle || s.userId !== 1 || responseCookies(res).length !== 0) bad.push(`${c.key}: ${s.$handle} ${names(responseCookies(res))}`)
    }
    check("authenticated POST with the right anti-csrf header: accepted, same handle, no refresh (no cookies) for all", bad.length === 0, bad.join(", "))
    const verdicts = []
    for (const c of contenders) {
      try {
        await c.lib.getSession(webRequest("POST", c.user.jar, "wrong-token"))
        verdicts.push(`${c.key}: accepted`)
      } catch (err) {
        verdicts.push(`${c.key}: ${err && err.name}`)
      }
    }
    check(
      "authenticated POST with a wrong anti-csrf header: CSRFTokenMismatchError from all (so the POST scenario really checks it)",
      verdicts.every((v) => v.endsWith(": CSRFTokenMismatchError")),
      verdicts.join(", "),
    )
  })
  await attempt("Node authenticated GET", async () => {
    const bad = []
    for (const c of contenders) {
      const req = nodeRequest("GET", c.user.jar)
      const res = nodeResponse(req)
      const s = await c.lib.getSession(req, res)
      if (s.$handle !== c.user.handle || s.userId !== 1 || res.blitzCtx.session !== s || responseCookies(res).length !== 0) bad.push(`${c.key}: ${s.$handle}`)
    }
    check("Node path authenticated GET: same handle and userId, session kept on res.blitzCtx.session, no cookies", bad.length === 0, bad.join(", "))
  })
  check(
    "login ($create): same Set-Cookie names and attributes and headers for all (anonymous cookie cleared, session-created)",
    each((c) => {
      const r = sameCookies(responseCookies(ours.user.res), responseCookies(c.user.res))
      if (r !== true) return r
      const h1 = JSON.stringify(sessionHeaders(ours.user.res))
      const h2 = JSON.stringify(sessionHeaders(c.user.res))
      return h1 === h2 || `headers ${h1} vs ${h2}`
    }),
    names(responseCookies(ours.user.res)),
  )
  check(
    "login: both JS storages received the same row fields from createSession (ours + JS storage vs Blitz)",
    (() => {
      const fields = (c) => {
        const row = c.storage.rows.get(c.user.handle)
        return row ? Object.keys(row).sort().join(",") + (row.expiresAt instanceof Date ? " (expiresAt Date)" : " (expiresAt not a Date)") : "no row"
      }
      const [a, b] = contenders.filter((c) => c.storage)
      return fields(a) === fields(b) || `${fields(a)} vs ${fields(b)}`
    })(),
  )
  await attempt("$setPublicData", async () => {
    // The setup's second change (theme "B", request carrying the jar of "A").
    const pdCookie = `${PREFIX}_sPublicDataToken`
    const got = {}
    for (const c of contenders) {
      const { session, res } = c.user3.lastChange
      const again = await c.lib.getSession(webRequest("GET", c.user3.jars.B))
      const cookies = responseCookies(res)
      got[c.key] = {
        publicData: JSON.stringify(session.$publicData),
        reread: JSON.stringify(again.$publicData),
        publicDataCookie: (cookies.find((x) => x.name === pdCookie) || {}).value,
        headers: JSON.stringify(sessionHeaders(res)),
        cookies: names(cookies),
      }
    }
    const same = (k) => contenders.every((c) => got[c.key][k] === got.ours[k])
    check(
      "$setPublicData({ theme }): same public data (also read back on the next request), same public-data cookie value and headers for all",
      same("publicData") && same("reread") && same("publicDataCookie") && same("headers") && JSON.parse(got.ours.reread).theme === "B" && !!got.ours.publicDataCookie,
      contenders.map((c) => `${c.key}: ${JSON.stringify(got[c.key])}`).join("; "),
    )
    results.push({
      name: `sessions: note — $setPublicData cookies: ours ${got.ours.cookies}; Blitz ${got.blitz.cookies} (ours re-issues the session token with the new public-data hash, README Q1/Q2, so later non-GET requests do not re-write storage as Blitz's do)`,
      ok: true,
      detail: "",
    })
  })
  return results
}

// ------------------------------------------------------------------ diagnostic run (child process)

/**
 * Counters around every function of the addon (JS → native calls), around the
 * storage bridge the addon calls back (native → JS), and a setImmediate ticker
 * counting event-loop turns. Only ever installed in the diagnostic child.
 */
function instrumentBinding(binding) {
  const counts = { calls: {}, promises: 0, nativeToJs: 0 }
  const hit = (label, value) => {
    counts.calls[label] = (counts.calls[label] || 0) + 1
    // A promise, or a ticket number (a session operation that waits for its
    // store; its result arrives through SessionEngine.drain).
    if (value instanceof Promise || (label.startsWith("SessionEngine.") && typeof value === "number")) counts.promises++
    return value
  }
  const classes = ["SessionEngine", "NativeStore"]
  for (const cls of classes) {
    const proto = binding[cls].prototype
    for (const m of Object.getOwnPropertyNames(proto)) {
      if (m === "constructor" || typeof proto[m] !== "function") continue
      const orig = proto[m]
      proto[m] = function (...args) {
        return hit(`${cls}.${m}`, orig.apply(this, args))
      }
    }
  }
  for (const k of Object.keys(binding)) {
    if (typeof binding[k] !== "function" || classes.includes(k)) continue
    const orig = binding[k]
    binding[k] = (...args) => hit(k, orig(...args))
  }
  const Engine = binding.SessionEngine
  binding.SessionEngine = function SessionEngine(...args) {
    hit("new SessionEngine")
    return new Engine(...args)
  }
  // Its statics are read-only, so the class is replaced by a look-alike.
  const Store = binding.NativeStore
  binding.NativeStore = {
    memory: () => hit("NativeStore.memory", Store.memory()),
    fromJs: (bridge) =>
      hit(
        "NativeStore.fromJs",
        Store.fromJs((request) => {
          counts.nativeToJs++
          return bridge(request)
        }),
      ),
  }
  return counts
}

async function diagnose(n) {
  const binding = require(path.join(ROOT, "binding.js"))
  const counts = instrumentBinding(binding)
  const storageCounts = { oursJs: {}, blitz: {} }
  const contenders = loadSessionContenders(storageCounts).filter((c) => !c.reference)
  for (const c of contenders) await prepareSessions(c)
  const out = { requests: n, scenarios: {} }
  const perRequest = (x) => Math.round((x / n) * 100) / 100
  const delta = (now, then) => {
    const d = {}
    for (const [k, v] of Object.entries(now)) if (v - (then[k] || 0)) d[k] = perRequest(v - (then[k] || 0))
    return d
  }
  for (const scenario of SCENARIOS) {
    out.scenarios[scenario.key] = {}
    for (const c of contenders) {
      const loop = compileLoop(scenario, c)
      await loop(scenario.make(c, 20)) // warm-up, not counted
      const inputs = scenario.make(c, n)
      const before = JSON.parse(JSON.stringify({ counts, storageCounts }))
      // Event-loop turns while the batch runs: a batch that only ever awaits
      // already-settled promises (microtasks) lets this ticker run 0 times.
      let turns = 0
      let ticking = true
      const tick = () => {
        if (!ticking) return
        turns++
        setImmediate(tick)
      }
      setImmediate(tick)
      const last = await loop(inputs)
      ticking = false
      if (!scenario.verify(c, last, inputs)) throw new Error(`diagnose: unexpected session from ${c.key} in ${scenario.key}`)
      const calls = delta(counts.calls, before.counts.calls)
      const storage = c.storage ? delta(storageCounts[c.key], before.storageCounts[c.key]) : null
      out.scenarios[scenario.key][c.key] = {
        jsToNative: c.blitz ? null : Object.values(calls).reduce((x, y) => x + y, 0),
        calls: c.blitz ? null : calls,
        nativeToJs: c.blitz ? null : perRequest(counts.nativeToJs - before.counts.nativeToJs),
        promisesFromNative: c.blitz ? null : perRequest(counts.promises - before.counts.promises),
        storageCalls: storage && Object.values(storage).reduce((x, y) => x + y, 0),
        storage,
        eventLoop: turns > 0,
      }
    }
  }
  const cpu = process.cpuUsage()
  out.cpuSeconds = (cpu.user + cpu.system) / 1e6
  return out
}

let childCpuSeconds = 0

/** Run the diagnostic child and parse its JSON. */
function runDiagnostic(n) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, "--diagnose", String(n)], { stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`diagnostic run failed (exit ${code}): ${stderr.trim().split("\n").slice(-3).join(" ")}`))
      try {
        const out = JSON.parse(stdout)
        childCpuSeconds += out.cpuSeconds || 0
        resolve(out)
      } catch (err) {
        reject(new Error(`diagnostic run printed no JSON: ${err.message}`))
      }
    })
  })
}

// ------------------------------------------------------------------ report

const LABELS = { ours: "ours (embedded store)", oursJs: "ours + JS storage", blitz: "Blitz" }

/** Per-request counts: whole numbers as such, averages with two decimals. */
const count = (x) => (Number.isInteger(x) ? String(x) : x.toFixed(2))

function renderScenario(result, diag, letter) {
  const d = diag && diag.scenarios[result.key]
  const rows = result.rows.map((r) => {
    const x = d && d[r.key]
    let crossings = "n/a"
    if (r.reference) crossings = "1 / 0 (direct)"
    else if (x && x.jsToNative === null) crossings = "— (pure JS)"
    else if (x) crossings = `${count(x.jsToNative)} / ${count(x.nativeToJs)}`
    let loop = "n/a"
    if (r.reference) loop = "no"
    else if (x) loop = x.eventLoop ? "yes" : "no"
    return [
      r.key === "ours" ? `**${r.name}**` : r.reference ? `_${r.name}_` : r.name,
      num(r.summary.median),
      `${num(r.summary.p25)}–${num(r.summary.p75)}`,
      num(r.cpuUsPerRequest),
      num(r.requestsPerSecond),
      crossings,
      x && x.storageCalls !== null ? count(x.storageCalls) : "—",
      loop,
      r.summary.n,
      r.blitz ? "1.00× (Blitz)" : ratio(r.blitzOverThis),
    ]
  })
  const text = table(
    ["contender", "median µs/req", "p25–p75 µs", "CPU µs/req", "req/s", "napi calls in / callbacks out", "storage calls", "event loop", "n", "Blitz/this"],
    rows,
    ["l", "r", "r", "r", "r", "r", "r", "l", "r", "r"],
  )
  const lines = [`### ${letter}. ${result.title}`, "", text]
  const ours = result.rows.find((r) => r.key === "ours")
  const blitz = result.rows.find((r) => r.blitz)
  const issue = ISSUE[result.key]
  if (issue) {
    const met = ours.summary.median <= issue.target
    lines.push(
      "",
      `Issue target for ours: ≤ ${issue.target} µs → **${met ? "met" : "not met"}** (median ${num(ours.summary.median)} µs). ` +
        `The issue measured Blitz at ${issue.blitz} µs; here ${num(blitz.summary.median)} µs.`,
    )
  }
  if (Number.isFinite(result.foreignCpuShare)) {
    lines.push("", `Other processes kept ${Math.round(result.foreignCpuShare * 100)}% of the cores busy during this scenario.`)
  }
  return lines.join("\n")
}

function renderCalls(diag, keys) {
  const rows = []
  const list = (o) => (o && Object.keys(o).length ? Object.entries(o).map(([k, v]) => `${k} ×${count(v)}`).join(", ") : "none")
  for (const key of keys) {
    const s = diag.scenarios[key]
    if (!s) continue
    for (const c of ["ours", "oursJs", "blitz"]) {
      const x = s[c]
      rows.push([
        `${key} — ${LABELS[c]}`,
        x.calls ? list(x.calls) : "— (pure JS)",
        x.nativeToJs === null ? "—" : count(x.nativeToJs),
        x.promisesFromNative === null ? "—" : count(x.promisesFromNative),
        x.storage ? list(x.storage) : "— (embedded store)",
        x.eventLoop ? "yes" : "no",
      ])
    }
  }
  return table(
    ["scenario — contender", "JS → native calls per request", "native → JS calls", "promises from native", "SessionConfigMethods calls per request", "needs event loop"],
    rows,
    ["l", "l", "r", "r", "l", "l"],
  )
}

/**
 * The sessions sections: times the selected scenarios, then (in a child
 * process) counts napi crossings. Returns what run.js's section() expects.
 */
async function sessionsSection(sectionKey, contenders, config, number) {
  const scenarios = SCENARIOS.filter((s) => s.section === sectionKey)
  const results = []
  const before = cpuSnapshot()
  for (const scenario of scenarios) {
    progress(` ${scenario.key}`)
    results.push(await timeScenario(scenario, contenders, config))
  }
  // Background load over the timed part only: the diagnostic child below is
  // this benchmark's own work, not another tenant's.
  const share = foreignCpuShare(before, cpuSnapshot())
  progress(" crossings…")
  let diag = null
  let diagError = null
  try {
    diag = await runDiagnostic(config.sessDiagRequests)
  } catch (err) {
    diagError = err.message
  }
  progress("\n")
  const letters = "abcdefghij"
  const what =
    sectionKey === "sessions"
      ? "`getSession(request)` then `session.setSession(new Response(null))` (web), or `getSession(req, res)` (Node)"
      : "`getSession(request)`, the operation, then `session.setSession(new Response(null))`"
  const preface =
    `Per request, in process, no HTTP: ${what}. ` +
    `Each batch runs ${config.sessBatch} requests back to back on one thread, each awaited; a fresh Request/Response per request is built before the timer starts ` +
    `(Blitz writes its cookies into the request's Headers, and getSession(req, res) caches the session on res). ` +
    `${config.sessWarmup} warm-up + ${config.sessRounds} measured batches per contender, round-robin, first mover rotated. ` +
    `Requests carry ${Object.keys(BROWSER_HEADERS).length} typical browser headers besides the cookies.\n\n` +
    "Columns: median and p25–p75 of the per-batch mean. CPU µs/req: the process's CPU time, all threads (V8's GC helpers, the addon's runtime thread), per request. " +
    "req/s = 10⁶ / median on one thread; where \"event loop\" is no, the whole batch ran on microtasks alone (event-loop-free). " +
    "napi calls in / callbacks out, storage calls and event loop come from a separate diagnostic child process whose addon functions and storages are " +
    `wrapped with counters (${config.sessDiagRequests} requests per contender, never in the timed process). ` +
    "The _(reference)_ row is ours' SessionEngine.resolve() called directly with the strings getSession would read: it is not a contender, it shows what the JS layer adds. " +
    "Blitz/this > 1 means the row is faster than Blitz."
  const body = results.map((r, i) => renderScenario(r, diag, `${number}${letters[i]}`))
  const callKeys = results.map((r) => r.key)
  const callsText = diag
    ? `### ${number}${letters[results.length]}. napi crossings and storage calls per request (diagnostic child process, counting wrappers)\n\n${renderCalls(diag, callKeys)}\n\n` +
      "native → JS calls are the addon calling the JS storage bridge (one per SessionConfigMethods call); each promise the addon returns settles " +
      "through the event loop (a thread-safe function call from the addon's runtime thread). Blitz makes no napi calls (pure JS)."
    : `Crossing counts unavailable: ${diagError}`
  return {
    title:
      sectionKey === "sessions"
        ? `${number}. Sessions: one request's getSession + setSession, ours vs @blitzjs/auth 3.0.2 (µs per request, in process)`
        : `${number}. Session operations: $create (login) and $setPublicData, ours vs @blitzjs/auth 3.0.2 (µs per request, in process)`,
    rows: Object.fromEntries(results.map((r) => [r.key, r.rows])),
    foreignCpuShare: share,
    extra: {
      scenarios: results.map(({ key, title, foreignCpuShare: s }) => ({ key, title, foreignCpuShare: s })),
      crossings: diag ? Object.fromEntries(callKeys.map((k) => [k, diag.scenarios[k]])) : null,
      crossingsError: diagError,
      issueTargets: ISSUE,
      method: {
        batch: config.sessBatch,
        warmup: config.sessWarmup,
        rounds: config.sessRounds,
        diagnosticRequests: config.sessDiagRequests,
        browserHeaders: Object.keys(BROWSER_HEADERS),
        foreignCpuShareExcludes: "the diagnostic child process",
      },
    },
    text: [preface, ...body, callsText].join("\n\n"),
  }
}

module.exports = {
  loadSessionContenders,
  sessionChecks,
  sessionsSection,
  memoryStorage,
  splitSetCookies,
  SCENARIOS,
  /** CPU seconds used by the diagnostic child processes so far (for the background-load gauge). */
  childCpuSeconds: () => childCpuSeconds,
}

if (require.main === module) {
  const [flag, n] = process.argv.slice(2)
  if (flag !== "--diagnose") {
    console.error("usage: node bench/sessions.js --diagnose [requests] (run.js runs this itself)")
    process.exit(2)
  }
  diagnose(Number(n) || 200).then(
    (out) => {
      process.stdout.write(`${JSON.stringify(out)}\n`)
      process.exit(0)
    },
    (err) => {
      console.error(err && err.stack ? err.stack : err)
      process.exit(1)
    },
  )
}
