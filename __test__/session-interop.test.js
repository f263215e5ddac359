// @ts-check
"use strict"
// Wire compatibility with the real @blitzjs/auth 3.0.2: sessions created by
// Blitz with the same storage and secret are read by ours and the other way
// round, and Blitz's browser client parses the cookies we write.
//
// Both servers run in this process. Blitz keeps its configuration in
// `global.sessionConfig` and ours in a module variable; both set
// `globalThis.__BLITZ_SESSION_COOKIE_PREFIX`, here to the same value, so they
// do not disturb each other (checked by the first test).

// One secret for both sides, non-ASCII on purpose (the HMAC key is its UTF-8 bytes).
const SECRET = "interop-secret-ключ-😀-0123456789abcdef"
process.env.SESSION_SECRET_KEY = SECRET

const test = require("node:test")
const assert = require("node:assert/strict")
const crypto = require("node:crypto")

const ours = require("..")
const { blitzAuth, blitz } = require("./helpers/peers")
const { createMemoryStorage, CookieJar, decodeJwt, decodePublicDataCookie, setCookies, parseSetCookie, startServer } = require("./helpers/session-kit")

const PREFIX = "interop"
const C = {
  anon: `${PREFIX}_sAnonymousSessionToken`,
  session: `${PREFIX}_sSessionToken`,
  csrf: `${PREFIX}_sAntiCsrfToken`,
  publicData: `${PREFIX}_sPublicDataToken`,
}

const { storage: shared, rows } = createMemoryStorage()
const g = /** @type {any} */ (globalThis)

blitzAuth.AuthServerPlugin({ cookiePrefix: PREFIX, storage: shared, isAuthorized: blitzAuth.simpleRolesIsAuthorized })
ours.AuthServerPlugin({ cookiePrefix: PREFIX, storage: shared, isAuthorized: ours.simpleRolesIsAuthorized })

/**
 * A web Request from the browser holding `jar`.
 * @param {CookieJar} jar
 * @param {string} [method]
 * @param {Record<string, string>} [headers]
 */
function request(jar, method = "GET", headers = {}) {
  return new Request("http://localhost:3000/api/x", { method, headers: { cookie: jar.header(), ...headers } })
}

/** @param {CookieJar} jar the anti-csrf header Blitz's client would send */
function csrf(jar) {
  return { "anti-csrf": decodeURIComponent(jar.get(C.csrf) ?? "") }
}

/**
 * End the request: write the session to a Response and let the browser keep the cookies.
 * @param {any} session ours or Blitz's
 * @param {CookieJar} jar
 */
function respond(session, jar) {
  const res = new Response("ok")
  session.setSession(res)
  jar.absorb(res)
  return res
}

/** Blitz's side of a request. @param {CookieJar} jar @param {string} [method] @param {Record<string, string>} [headers] */
const viaBlitz = (jar, method, headers) => blitzAuth.getSession(request(jar, method, headers))
/** Our side of a request. @param {CookieJar} jar @param {string} [method] @param {Record<string, string>} [headers] */
const viaOurs = (jar, method, headers) => ours.getSession(request(jar, method, headers))

/** A browser with a fresh anonymous session created by Blitz. */
async function blitzAnonymous() {
  const jar = new CookieJar()
  const s = await viaBlitz(jar)
  respond(s, jar)
  return { jar, handle: s.$handle, token: s.$antiCSRFToken() }
}

/** A browser with a fresh anonymous session created by ours. */
async function oursAnonymous() {
  const jar = new CookieJar()
  const s = await viaOurs(jar)
  respond(s, jar)
  return { jar, handle: s.$handle, token: s.$antiCSRFToken() }
}

/**
 * Blitz warns on the console about a missing anti-csrf header; keep test output clean.
 * @template T @param {() => Promise<T>} fn @returns {Promise<T>}
 */
async function quiet(fn) {
  const warn = console.warn
  console.warn = () => {}
  try {
    return await fn()
  } finally {
    console.warn = warn
  }
}

/** @param {any} e */
const isCsrfError = (e) => e instanceof blitz.CSRFTokenMismatchError && e.statusCode === 401

test("both plugins live side by side in one process", async () => {
  assert.equal(g.__BLITZ_SESSION_COOKIE_PREFIX, PREFIX)
  assert.equal(g.sessionConfig.cookiePrefix, PREFIX, "Blitz's global config")
  assert.equal(g.sessionConfig.getSession, shared.getSession, "Blitz spreads the storage into its config")
  const a = await blitzAnonymous()
  const b = await oursAnonymous()
  assert.deepEqual([...a.jar.cookies.keys()].sort(), [C.anon, C.csrf, C.publicData].sort())
  assert.deepEqual([...b.jar.cookies.keys()].sort(), [C.anon, C.csrf, C.publicData].sort())
  // Configuring ours after Blitz left Blitz's global configuration in place.
  assert.equal(g.sessionConfig.isAuthorized, blitzAuth.simpleRolesIsAuthorized)
})

test("a Blitz anonymous session is ours: same handle, token and public data; POST needs its anti-csrf", async () => {
  const { jar, handle, token } = await blitzAnonymous()
  assert.match(handle, /^[A-Za-z0-9_-]{32}:ajwt$/)

  const s = await viaOurs(jar)
  assert.equal(s.$handle, handle)
  assert.equal(s.$antiCSRFToken(), token)
  assert.deepEqual(s.$publicData, { userId: null })
  assert.equal(s.userId, null)
  assert.deepEqual(setCookies(respond(s, jar)), [], "reading a valid anonymous session writes nothing")

  const post = await viaOurs(jar, "POST", csrf(jar))
  assert.equal(post.$handle, handle)
  assert.deepEqual(setCookies(respond(post, jar)), [])

  await assert.rejects(viaOurs(jar, "POST"), isCsrfError)
  await assert.rejects(viaOurs(jar, "PUT", { "anti-csrf": "x".repeat(32) }), isCsrfError)
})

test("Blitz's anonymous $setPublicData (re-signed JWT) is read by ours", async () => {
  const { jar, handle } = await blitzAnonymous()
  const b = await viaBlitz(jar, "POST", csrf(jar))
  await b.$setPublicData({ theme: "dark", name: "Zoë 😀 中文" })
  respond(b, jar)

  const s = await viaOurs(jar, "POST", csrf(jar))
  assert.equal(s.$handle, handle)
  assert.deepEqual(s.$publicData, { userId: null, theme: "dark", name: "Zoë 😀 中文" })
  assert.equal(s.theme, "dark")
})

test("Blitz's anonymous private data is carried over by our $create", async () => {
  const { jar, handle } = await blitzAnonymous()
  const b = await viaBlitz(jar, "POST", csrf(jar))
  await b.$setPrivateData({ cart: [1, 2], note: "ü" })
  respond(b, jar)
  assert.ok(rows.has(handle), "Blitz stored a handle-only row")

  const s = await viaOurs(jar, "POST", csrf(jar))
  await s.$create({ userId: 42 }, { extra: true })
  respond(s, jar)
  assert.deepEqual(await s.$getPrivateData(), { cart: [1, 2], note: "ü", extra: true })
  assert.ok(!rows.has(handle), "the anonymous row is deleted at login")

  const row = rows.get(s.$handle)
  assert.ok(row)
  assert.equal(row.userId, 42)
  assert.ok(row.expiresAt instanceof Date, "expiresAt reaches the app's storage as a Date")
  assert.equal(row.publicData, '{"userId":42}')

  // Blitz reads the session we created, including the private data.
  const back = await viaBlitz(jar)
  assert.equal(back.userId, 42)
  assert.deepEqual(await back.$getPrivateData(), { cart: [1, 2], note: "ü", extra: true })
})

test("Blitz $create → ours reads it; our $setPublicData reaches Blitz; our $revoke ends it for Blitz", async () => {
  const { jar } = await blitzAnonymous()
  const b = await viaBlitz(jar, "POST", csrf(jar))
  await b.$create({ userId: 7, role: "admin", name: "Zoë" })
  respond(b, jar)
  const handle = b.$handle
  assert.match(handle, /:ots$/)

  // GET and POST on ours: the same session, nothing rewritten.
  const s = await viaOurs(jar)
  assert.equal(s.$handle, handle)
  assert.equal(s.userId, 7)
  assert.deepEqual(s.$publicData, { userId: 7, role: "admin", name: "Zoë" })
  assert.equal(s.$antiCSRFToken(), b.$antiCSRFToken())
  s.$authorize("admin")
  assert.equal(s.$isAuthorized("user"), false)
  assert.deepEqual(setCookies(respond(s, jar)), [])
  const post = await viaOurs(jar, "POST", csrf(jar))
  assert.equal(post.userId, 7)
  assert.deepEqual(setCookies(respond(post, jar)), [])
  await assert.rejects(viaOurs(jar, "POST"), isCsrfError)

  // Our $setPublicData: Blitz sees the change and still accepts the cookies we re-issued.
  const set = await viaOurs(jar, "POST", csrf(jar))
  await set.$setPublicData({ role: "user", nick: "Zoë 😀" })
  respond(set, jar)
  assert.equal(JSON.parse(rows.get(handle)?.publicData ?? "null").role, "user")
  const seen = await viaBlitz(jar)
  assert.equal(seen.$handle, handle)
  assert.deepEqual(seen.$publicData, { userId: 7, role: "user", name: "Zoë", nick: "Zoë 😀" })
  const seenPost = await viaBlitz(jar, "POST", csrf(jar))
  assert.equal(seenPost.userId, 7, "Blitz accepts the session token we re-issued")
  assert.deepEqual(decodePublicDataCookie(/** @type {string} */ (jar.get(C.publicData))), { userId: 7, role: "user", name: "Zoë", nick: "Zoë 😀" })

  // Our $revoke: the row is gone, Blitz treats the old cookies as no session.
  const before = jar.clone()
  const out = await viaOurs(jar, "POST", csrf(jar))
  await out.$revoke()
  respond(out, jar)
  assert.ok(!rows.has(handle))
  const gone = await viaBlitz(before)
  assert.equal(gone.userId, null)
  assert.notEqual(gone.$handle, handle)
  // And the browser, holding our fresh anonymous session, is anonymous on Blitz with the same handle.
  const fresh = await viaBlitz(jar)
  assert.equal(fresh.userId, null)
  assert.equal(fresh.$handle, out.$handle)
})

test("our anonymous session is Blitz's: same handle and token; Blitz enforces its anti-csrf", async () => {
  const { jar, handle, token } = await oursAnonymous()
  const b = await viaBlitz(jar)
  assert.equal(b.$handle, handle)
  assert.equal(b.$antiCSRFToken(), token)
  assert.deepEqual(b.$publicData, { userId: null })
  const post = await viaBlitz(jar, "POST", csrf(jar))
  assert.equal(post.$handle, handle)
  await assert.rejects(quiet(() => viaBlitz(jar, "POST")), isCsrfError)
})

test("our anonymous $setPublicData (re-signed with the shared secret) is read by Blitz", async () => {
  const { jar, handle } = await oursAnonymous()
  const s = await viaOurs(jar, "POST", csrf(jar))
  await s.$setPublicData({ lang: "uk", name: "Ґанна 👩‍💻" })
  respond(s, jar)
  const b = await viaBlitz(jar, "POST", csrf(jar))
  assert.equal(b.$handle, handle)
  assert.deepEqual(b.$publicData, { userId: null, lang: "uk", name: "Ґанна 👩‍💻" })
})

test("our $create → Blitz reads it; Blitz $setPublicData reaches ours; Blitz $revoke ends it for ours", async () => {
  const { jar } = await oursAnonymous()
  const s = await viaOurs(jar, "POST", csrf(jar))
  await s.$create({ userId: "user-ü", role: "admin", tags: ["a", "b"] }, { secret: 1 })
  respond(s, jar)
  const handle = s.$handle

  const b = await viaBlitz(jar)
  assert.equal(b.$handle, handle)
  assert.equal(b.userId, "user-ü")
  assert.deepEqual(b.$publicData, { userId: "user-ü", role: "admin", tags: ["a", "b"] })
  assert.equal(b.$antiCSRFToken(), s.$antiCSRFToken())
  assert.equal(b.$isAuthorized("admin"), true)
  assert.deepEqual(await b.$getPrivateData(), { secret: 1 })

  // Blitz changes the public data (it writes the row and the publicData cookie, not the token).
  const bp = await viaBlitz(jar, "POST", csrf(jar))
  await bp.$setPublicData({ role: "editor", motto: "😀 ok" })
  respond(bp, jar)
  const want = { userId: "user-ü", role: "editor", tags: ["a", "b"], motto: "😀 ok" }
  assert.deepEqual(JSON.parse(rows.get(handle)?.publicData ?? "null"), want)

  const o = await viaOurs(jar)
  assert.equal(o.$handle, handle)
  assert.deepEqual(o.$publicData, want)
  o.$authorize("editor")
  respond(o, jar)
  // Whatever ours wrote back (a re-issued token, Q2), Blitz still reads the session.
  const again = await viaBlitz(jar, "POST", csrf(jar))
  assert.equal(again.$handle, handle)
  assert.deepEqual(again.$publicData, want)
  respond(again, jar)

  // Blitz logs out: ours no longer finds the session behind the old cookies.
  const before = jar.clone()
  const out = await viaBlitz(jar, "POST", csrf(jar))
  await out.$revoke()
  respond(out, jar)
  assert.ok(!rows.has(handle))
  const gone = await viaOurs(before)
  assert.equal(gone.userId, null)
  assert.notEqual(gone.$handle, handle)
  const fresh = await viaOurs(jar)
  assert.equal(fresh.$handle, out.$handle, "Blitz's new anonymous session is ours too")
})

test("setPublicDataForUser and getAllSessionHandlesForUser agree across both servers", async () => {
  const user = 9001
  const a = await blitzAnonymous()
  const bs = await viaBlitz(a.jar, "POST", csrf(a.jar))
  await bs.$create({ userId: user, role: "user" })
  respond(bs, a.jar)
  const o = await oursAnonymous()
  const os = await viaOurs(o.jar, "POST", csrf(o.jar))
  await os.$create({ userId: user, role: "user" })
  respond(os, o.jar)

  const handles = [bs.$handle, os.$handle]
  assert.deepEqual(await ours.getAllSessionHandlesForUser(user), handles)
  assert.deepEqual(await blitzAuth.getAllSessionHandlesForUser(user), handles)

  await blitzAuth.setPublicDataForUser(user, { role: "admin" })
  for (const jar of [a.jar, o.jar]) {
    const s = await viaOurs(jar)
    assert.equal(s.role, "admin")
    respond(s, jar) // keep what ours re-issues (see the mixed-deployment test below)
  }

  await ours.setPublicDataForUser(user, { plan: "pro" })
  for (const jar of [a.jar, o.jar]) {
    const b = await viaBlitz(jar)
    assert.deepEqual(b.$publicData, { userId: user, role: "admin", plan: "pro" })
  }
})

test("our $revokeAll also ends the sessions Blitz created for that user", async () => {
  const user = "revoke-all-user"
  const a = await blitzAnonymous()
  const bs = await viaBlitz(a.jar, "POST", csrf(a.jar))
  await bs.$create({ userId: user })
  respond(bs, a.jar)
  const o = await oursAnonymous()
  const os = await viaOurs(o.jar, "POST", csrf(o.jar))
  await os.$create({ userId: user })
  respond(os, o.jar)

  const s = await viaOurs(o.jar, "POST", csrf(o.jar))
  await s.$revokeAll()
  assert.deepEqual(await blitzAuth.getAllSessionHandlesForUser(user), [])
  assert.equal((await viaBlitz(a.jar)).userId, null)
})

test("anonymous JWTs: Blitz's header bytes, claim order and HMAC over the shared secret", async () => {
  const a = await blitzAnonymous()
  const o = await oursAnonymous()
  const theirs = decodeJwt(/** @type {string} */ (a.jar.get(C.anon)))
  const mine = decodeJwt(/** @type {string} */ (o.jar.get(C.anon)))
  assert.equal(mine.headerText, theirs.headerText)
  assert.equal(mine.headerText, '{"alg":"HS256","typ":"JWT"}')
  assert.deepEqual(Object.keys(mine.payload), Object.keys(theirs.payload))
  assert.deepEqual(Object.keys(mine.payload.blitzjs), Object.keys(theirs.payload.blitzjs))
  assert.deepEqual(
    { ...mine.payload, iat: 0, blitzjs: { ...mine.payload.blitzjs, handle: "", antiCSRFToken: "" } },
    { ...theirs.payload, iat: 0, blitzjs: { ...theirs.payload.blitzjs, handle: "", antiCSRFToken: "" } },
  )
  assert.ok(Number.isInteger(mine.payload.iat) && Math.abs(mine.payload.iat - Date.now() / 1000) < 60)
  for (const t of [mine, theirs]) {
    const mac = crypto.createHmac("sha256", Buffer.from(SECRET, "utf8")).update(t.signingInput).digest("base64url")
    assert.equal(t.signature, mac)
  }
})

test("cookie layout: same names, attributes and encodings as Blitz for new anonymous and logged-in sessions", async () => {
  /** @param {string[]} lines */
  const shape = (lines) =>
    lines
      .map(parseSetCookie)
      .map((c) => ({ name: c.name, attributes: c.attributes, httpOnly: c.httpOnly, cleared: c.value === "" }))
      .sort((x, y) => x.name.localeCompare(y.name))

  const bj = new CookieJar()
  const b = await viaBlitz(bj)
  const bAnon = setCookies(respond(b, bj))
  const oj = new CookieJar()
  const o = await viaOurs(oj)
  const oAnon = setCookies(respond(o, oj))
  assert.deepEqual(shape(oAnon), shape(bAnon))

  const b2 = await viaBlitz(bj, "POST", csrf(bj))
  await b2.$create({ userId: 5, name: "Zoë" })
  const bLogin = setCookies(respond(b2, bj))
  const o2 = await viaOurs(oj, "POST", csrf(oj))
  await o2.$create({ userId: 5, name: "Zoë" })
  const oLogin = setCookies(respond(o2, oj))
  assert.deepEqual(shape(oLogin), shape(bLogin))
  // The public data cookie carries the same bytes (base64 of the same JSON, URI-encoded).
  assert.equal(oj.get(C.publicData), bj.get(C.publicData))
  // The session token: base64 of handle;id;sha256(publicData);v0, URI-encoded.
  const token = decodeURIComponent(/** @type {string} */ (oj.get(C.session)))
  const [h, id, hash, v] = Buffer.from(token, "base64").toString("utf8").split(";")
  assert.equal(h, o2.$handle)
  assert.match(id, /^[A-Za-z0-9_-]{32}$/)
  assert.equal(hash, ours.hash256(/** @type {string} */ (rows.get(h)?.publicData)))
  assert.equal(v, "v0")
  assert.equal(rows.get(h)?.hashedSessionToken, ours.hash256(token))
})

/**
 * Log in on both servers with the same public data and return the JSON text
 * each one put in the publicData cookie.
 * @param {Record<string, any> & { userId: unknown }} publicData
 */
async function publicDataTexts(publicData) {
  const bj = new CookieJar()
  const b = await viaBlitz(bj)
  await b.$create({ ...publicData })
  respond(b, bj)
  const oj = new CookieJar()
  const o = await viaOurs(oj)
  await o.$create({ ...publicData })
  respond(o, oj)
  /** @param {CookieJar} j */
  const text = (j) => Buffer.from(decodeURIComponent(/** @type {string} */ (j.get(C.publicData))), "base64").toString("utf8")
  return { blitzText: text(bj), oursText: text(oj), ours: o, blitzSession: b }
}

test("publicData JSON is byte-identical to Blitz's: Unicode, escapes, nesting", async () => {
  const data = {
    userId: 11,
    s: 'a\u2028b\u2029c\u0000\u001f"\\/<>&\'é😀\u007f',
    nested: { b: [1, { c: null }], a: true },
    empty: {},
    list: [],
    int: 42,
    neg: -7,
    frac: 1.5,
  }
  const { blitzText, oursText, ours: o } = await publicDataTexts(data)
  assert.equal(oursText, blitzText)
  assert.equal(oursText, JSON.stringify(data))
  assert.deepEqual(o.$publicData, data)
})

test(
  "publicData numbers survive unchanged (doubles that need exact parsing)",
  async () => {
    const data = { userId: 12, a: 380658.60827818996, b: 0.000056590139100374996, c: 2.3808096766785634e27, d: 123456789012345680000 }
    const { blitzText, oursText, ours: o } = await publicDataTexts(data)
    assert.equal(oursText, blitzText)
    assert.deepEqual(o.$publicData, data)
  },
)

test(
  "publicData key order follows JavaScript (integer-like keys first)",
  async () => {
    const { blitzText, oursText } = await publicDataTexts({ userId: 13, z: 1, 10: "ten", 2: "two", a: 0 })
    assert.equal(oursText, blitzText)
  },
)

test(
  "publicData with a lone surrogate is accepted (documented: the lone surrogate is stored as U+FFFD)",
  async () => {
    const { blitzText, oursText } = await publicDataTexts({ userId: 14, name: "cut emoji \ud83d" })
    assert.equal(blitzText, '{"userId":14,"name":"cut emoji \\ud83d"}')
    // Deliberate (README): Rust strings cannot hold a lone surrogate; it becomes
    // U+FFFD instead of failing the request. Everything else is byte-identical.
    assert.equal(oursText, '{"userId":14,"name":"cut emoji \ufffd"}')
  },
)

test(
  "a Blitz session whose publicData holds a lone surrogate is read by ours (the surrogate as U+FFFD)",
  async () => {
    for (const anonymous of [false, true]) {
      const { jar, handle } = await blitzAnonymous()
      const b = await viaBlitz(jar, "POST", csrf(jar))
      if (anonymous) await b.$setPublicData({ name: "cut \ud83d" })
      else await b.$create({ userId: 16, name: "cut \ud83d" })
      respond(b, jar)
      const o = await viaOurs(jar)
      assert.equal(o.$handle, anonymous ? handle : b.$handle)
      assert.equal(o.name, "cut \ufffd")
    }
  },
)

test("mixed deployment: once ours re-issues a session token (public data changed), Blitz rejects the superseded cookie", async () => {
  // Documents a consequence of fixing Q2 while Blitz and ours serve one site:
  // the browser gets the new token with the response, but a request already
  // in flight with the old cookie that lands on Blitz finds a hash mismatch
  // and starts an anonymous session. Ours accepts both tokens.
  const { jar } = await oursAnonymous()
  const s = await viaOurs(jar, "POST", csrf(jar))
  await s.$create({ userId: 15, role: "user" })
  respond(s, jar)
  const old = jar.clone()
  await ours.setPublicDataForUser(15, { role: "admin" })
  const next = await viaOurs(jar)
  assert.equal(next.role, "admin")
  respond(next, jar)
  assert.notEqual(jar.get(C.session), old.get(C.session), "ours re-issued the token")
  assert.equal((await viaBlitz(jar)).userId, 15, "the new token works on Blitz")
  assert.equal((await viaOurs(old)).userId, 15, "ours still accepts the superseded token")
  assert.equal((await viaBlitz(old)).userId, null, "Blitz does not")
})

test("the Cookie header is parsed like Blitz's (cookie@0.4.1): spacing, quotes, encoding, duplicates", async () => {
  const { jar, handle } = await oursAnonymous()
  const token = /** @type {string} */ (jar.get(C.anon))
  const N = C.anon
  /** @type {Record<string, string>} */
  const variants = {
    plain: `${N}=${token}`,
    spaces: `  ${N} =  ${token}  ; x=1`,
    noSpace: `x=1;${N}=${token};y=2`,
    tab: `x=1;\t${N}=${token}`,
    quoted: `${N}="${token}"`,
    percentEncoded: `${N}=${token.replace(/\./g, "%2E")}`,
    duplicateFirstGood: `${N}=${token}; ${N}=bad`,
    duplicateFirstBad: `${N}=bad; ${N}=${token}`,
    emptyFirst: `${N}=; ${N}=${token}`,
    upperCaseName: `${N.toUpperCase()}=${token}`,
    badPercent: `${N}=${token}%`,
    commaSeparated: `x=1, ${N}=${token}`,
    pairWithoutEquals: `junk; ${N}=${token}`,
    extraSemicolons: `;;; ${N}=${token};;;`,
    longerName: `x${N}=${token}`,
    trailingEquals: `${N}=${token}=`,
  }
  for (const [name, cookie] of Object.entries(variants)) {
    const req = () => new Request("http://localhost:3000/", { headers: { cookie } })
    const b = await blitzAuth.getSession(req())
    const o = await ours.getSession(req())
    assert.equal(o.$handle === handle, b.$handle === handle, name)
  }
})

test("over real HTTP: Blitz's and our Node (IncomingMessage/ServerResponse) servers share the sessions", async (t) => {
  /**
   * @param {(req: any, res?: any) => Promise<any>} getSession
   * @returns {(req: import("http").IncomingMessage, res: import("http").ServerResponse) => Promise<void>}
   */
  const app = (getSession) => async (req, res) => {
    let session
    try {
      session = await getSession(req, res)
    } catch (e) {
      res.statusCode = /** @type {any} */ (e).statusCode ?? 500
      res.end(/** @type {any} */ (e).name)
      return
    }
    if (req.url === "/login") await session.$create({ userId: 71, role: "admin" })
    if (req.url === "/logout") await session.$revoke()
    if (req.url === "/promote") await session.$setPublicData({ role: "owner" })
    res.setHeader("content-type", "application/json")
    res.end(JSON.stringify({ userId: session.userId, role: session.role ?? null, handle: session.$handle }))
  }
  const blitzServer = await startServer(app(blitzAuth.getSession))
  const ourServer = await startServer(app(ours.getSession))
  t.after(() => Promise.all([blitzServer.close(), ourServer.close()]))
  const jar = new CookieJar() // cookies are per host, not per port: one browser for both
  /** @param {string} base @param {string} path @param {string} [method] @returns {Promise<{ status: number, body: any }>} */
  const call = async (base, path, method = "GET") => {
    const r = await fetch(base + path, { method, headers: { cookie: jar.header(), ...(method === "GET" ? {} : csrf(jar)) } })
    jar.absorb(r)
    return { status: r.status, body: r.headers.get("content-type") === "application/json" ? await r.json() : await r.text() }
  }

  const first = await call(blitzServer.base, "/")
  assert.equal(first.body.userId, null)
  assert.equal((await call(ourServer.base, "/")).body.handle, first.body.handle)

  const inBlitz = await call(blitzServer.base, "/login", "POST")
  assert.equal(inBlitz.body.userId, 71)
  assert.deepEqual((await call(ourServer.base, "/")).body, inBlitz.body)
  assert.deepEqual((await call(ourServer.base, "/promote", "POST")).body, { ...inBlitz.body, role: "owner" })
  assert.deepEqual((await call(blitzServer.base, "/")).body, { ...inBlitz.body, role: "owner" })
  const outOurs = await call(ourServer.base, "/logout", "POST")
  assert.equal(outOurs.body.userId, null)
  assert.deepEqual((await call(blitzServer.base, "/")).body, outOurs.body)

  const inOurs = await call(ourServer.base, "/login", "POST")
  assert.equal(inOurs.body.userId, 71)
  assert.deepEqual((await call(blitzServer.base, "/")).body, inOurs.body)
  assert.deepEqual((await call(blitzServer.base, "/promote", "POST")).body, { ...inOurs.body, role: "owner" })
  assert.deepEqual((await call(ourServer.base, "/")).body, { ...inOurs.body, role: "owner" })
  assert.deepEqual((await call(blitzServer.base, "/")).body, { ...inOurs.body, role: "owner" })

  // A POST without the header fails on both with Blitz's CSRF error.
  for (const base of [blitzServer.base, ourServer.base]) {
    const r = await quiet(() => fetch(`${base}/`, { method: "POST", headers: { cookie: jar.header() } }))
    assert.equal(r.status, 401)
    assert.equal(await r.text(), "CSRFTokenMismatchError")
  }
})

// ---------------------------------------------------------------------------
// Blitz's browser client against our cookies.

/**
 * Run `fn` with a browser-like global environment holding `jar`'s cookies.
 * @template T
 * @param {CookieJar} jar
 * @param {(local: Map<string, string>) => T} fn
 * @returns {T}
 */
function inBrowser(jar, fn) {
  /** @type {Map<string, string>} */
  const local = new Map()
  const saved = { document: g.document, localStorage: g.localStorage, window: g.window }
  g.document = { cookie: jar.documentCookie() }
  g.localStorage = {
    /** @param {string} k */ getItem: (k) => (local.has(k) ? local.get(k) : null),
    /** @param {string} k @param {string} v */ setItem: (k, v) => void local.set(k, String(v)),
    /** @param {string} k */ removeItem: (k) => void local.delete(k),
  }
  g.window = { addEventListener() {} }
  try {
    return fn(local)
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete g[k]
      else g[k] = v
    }
  }
}

test("Blitz's client API is importable under Node from @blitzjs/auth", () => {
  for (const name of ["parsePublicDataToken", "getAntiCSRFToken", "backupAntiCSRFTokenToLocalStorage", "getPublicDataStore", "AuthClientPlugin"]) {
    assert.equal(typeof blitzAuth[name], "function", name)
  }
})

test("Blitz's client parses our cookies: anonymous session", async () => {
  const { jar, token } = await oursAnonymous()
  assert.equal(g.__BLITZ_SESSION_COOKIE_PREFIX, PREFIX)
  inBrowser(jar, (local) => {
    assert.ok(!g.document.cookie.includes(C.anon), "the JWT is HttpOnly")
    assert.equal(blitzAuth.getAntiCSRFToken(), token)
    const raw = /** @type {string} */ (jar.get(C.publicData))
    assert.deepEqual(blitzAuth.parsePublicDataToken(decodeURIComponent(raw)), { publicData: { userId: null } })
    blitzAuth.backupAntiCSRFTokenToLocalStorage()
    assert.equal(local.get(C.csrf), token)
  })
})

test("Blitz's client parses our cookies: anonymous and logged-in sessions with Unicode public data", async () => {
  const { jar } = await oursAnonymous()
  const s = await viaOurs(jar, "POST", csrf(jar))
  await s.$setPublicData({ greeting: "Grüß Gott 👋 你好" })
  respond(s, jar)
  inBrowser(jar, () => {
    const raw = /** @type {string} */ (jar.get(C.publicData))
    assert.deepEqual(blitzAuth.parsePublicDataToken(decodeURIComponent(raw)).publicData, { userId: null, greeting: "Grüß Gott 👋 你好" })
    assert.equal(blitzAuth.getAntiCSRFToken(), s.$antiCSRFToken())
  })

  const login = await viaOurs(jar, "POST", csrf(jar))
  const publicData = { userId: 77, role: "admin", name: "Zoë 😀 中文", bio: 'quote " and \\ and ;,=' }
  await login.$create(publicData)
  respond(login, jar)
  inBrowser(jar, (local) => {
    assert.ok(!g.document.cookie.includes(C.session), "the session token is HttpOnly")
    const raw = /** @type {string} */ (jar.get(C.publicData))
    assert.deepEqual(blitzAuth.parsePublicDataToken(decodeURIComponent(raw)), { publicData: { greeting: "Grüß Gott 👋 你好", ...publicData } })
    assert.equal(blitzAuth.getAntiCSRFToken(), login.$antiCSRFToken())
    // The client's public-data store (what useSession reads) sees the same.
    const store = blitzAuth.getPublicDataStore()
    assert.deepEqual(store.getData(), { greeting: "Grüß Gott 👋 你好", ...publicData })
    assert.equal(local.get(C.publicData), decodeURIComponent(raw), "backed up to localStorage, URI-decoded")
    delete g.window.__publicDataStore
  })

  // Without the cookie (e.g. blocked), the client falls back to its localStorage backup.
  inBrowser(jar, (local) => {
    blitzAuth.backupAntiCSRFTokenToLocalStorage()
    g.document.cookie = ""
    assert.equal(blitzAuth.getAntiCSRFToken(), login.$antiCSRFToken())
    assert.equal(local.size, 1)
  })
})
