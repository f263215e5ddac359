// @ts-check
"use strict"
// The session API surface: simpleRolesIsAuthorized and $authorize against the
// vectors, the SessionContext object, constants, setPublicDataForUser, the
// framework wrappers on real Request/Response objects and a real node:http
// server, bad input, and the examples of Blitz's "Auth Server-Side APIs" page.

const test = require("node:test")
const assert = require("node:assert/strict")

const ours = require("..")
const { blitzAuth, blitz } = require("./helpers/peers")
const { loadVectors } = require("./helpers/vectors")
const { createMemoryStorage, CookieJar, setCookies, parseSetCookie, decodePublicDataCookie, startServer } = require("./helpers/session-kit")

const PREFIX = "api"
const C = {
  anon: `${PREFIX}_sAnonymousSessionToken`,
  session: `${PREFIX}_sSessionToken`,
  csrf: `${PREFIX}_sAntiCsrfToken`,
  publicData: `${PREFIX}_sPublicDataToken`,
}
const URL_BASE = "http://localhost:3000"

const { storage, rows } = createMemoryStorage()

/**
 * (Re)configure ours; the configuration is process-global, so tests that
 * change it call `configure()` again when done.
 * @param {Record<string, any>} [extra]
 */
function configure(extra = {}) {
  return ours.AuthServerPlugin({ cookiePrefix: PREFIX, storage, isAuthorized: ours.simpleRolesIsAuthorized, ...extra })
}
configure()

// Blitz, for side-by-side checks of the object shape (its own storage; same prefix).
blitzAuth.AuthServerPlugin({ cookiePrefix: PREFIX, storage: createMemoryStorage().storage, isAuthorized: blitzAuth.simpleRolesIsAuthorized })

/**
 * @param {CookieJar} [jar]
 * @param {string} [method]
 * @param {Record<string, string>} [headers]
 */
function request(jar = new CookieJar(), method = "GET", headers = {}) {
  return new Request(`${URL_BASE}/x`, { method, headers: { cookie: jar.header(), ...headers } })
}

/** @param {CookieJar} jar */
const csrf = (jar) => ({ "anti-csrf": decodeURIComponent(jar.get(C.csrf) ?? "") })

/**
 * @param {ours.SessionContext} session
 * @param {CookieJar} jar
 */
function respond(session, jar) {
  const res = new Response("ok")
  session.setSession(res)
  jar.absorb(res)
  return res
}

/**
 * A browser logged in with `publicData`.
 * @param {Record<string, any> & { userId: unknown }} publicData
 */
async function login(publicData) {
  const jar = new CookieJar()
  const session = await ours.getSession(request(jar))
  await session.$create(publicData)
  respond(session, jar)
  return { session, jar }
}

/** @param {any} e */
const isAuthenticationError = (e) =>
  e instanceof blitz.AuthenticationError && e.name === "AuthenticationError" && e.statusCode === 401 && e.message === "You must be logged in to access this"
/** @param {any} e */
const isAuthorizationError = (e) =>
  e instanceof blitz.AuthorizationError && e.name === "AuthorizationError" && e.statusCode === 403 && e.message === "You are not authorized to access this"

// ---------------------------------------------------------------------------
// simpleRolesIsAuthorized and $isAuthorized / $authorize.

const roleVectors = loadVectors("simple-roles-is-authorized.json")
assert.match(roleVectors.args_encoding_note, /'__undefined__'.*undefined/)
/** @param {any[]} args */
const decodeArgs = (args) => args.map((a) => (a === "__undefined__" ? undefined : a))
/** @param {any} v */
const label = (v) => `${JSON.stringify(v.publicData)} args=${JSON.stringify(v.args)}`

test("simpleRolesIsAuthorized: every vector, and Blitz's own function agrees", () => {
  assert.equal(roleVectors.vectors.length, 90)
  for (const v of roleVectors.vectors) {
    for (const fn of [ours.simpleRolesIsAuthorized, blitzAuth.simpleRolesIsAuthorized]) {
      const input = { ctx: { session: /** @type {any} */ ({ $publicData: structuredClone(v.publicData) }) }, args: decodeArgs(v.args) }
      if ("throws" in v) {
        assert.throws(() => fn(input), (/** @type {any} */ e) => e.constructor === Error && e.message === v.message, label(v))
      } else {
        assert.equal(fn(input), v.result, label(v))
      }
    }
  }
})

test("$isAuthorized(...args) and $authorize(...args) on real sessions: every vector", async () => {
  /** @type {Map<string, any[]>} */
  const byData = new Map()
  for (const v of roleVectors.vectors) {
    const k = JSON.stringify(v.publicData)
    byData.set(k, [...(byData.get(k) ?? []), v])
  }
  for (const [data, vs] of byData) {
    const { jar, session: created } = await login(JSON.parse(data))
    const reread = await ours.getSession(request(jar))
    for (const session of [created, reread]) {
      assert.deepEqual(session.$publicData, JSON.parse(data))
      for (const v of vs) {
        const args = decodeArgs(v.args)
        if ("throws" in v) {
          const same = (/** @type {any} */ e) => e.constructor === Error && e.message === v.message
          assert.throws(() => session.$isAuthorized(...args), same, label(v))
          assert.throws(() => session.$thisIsAuthorized(...args), same, label(v))
          assert.throws(() => session.$authorize(...args), same, `plain Error from $authorize (Q28): ${label(v)}`)
        } else {
          assert.equal(session.$isAuthorized(...args), v.result, label(v))
          assert.equal(session.$thisIsAuthorized(...args), v.result, label(v))
          if (v.result) assert.equal(session.$authorize(...args), undefined)
          else assert.throws(() => session.$authorize(...args), isAuthorizationError, label(v))
        }
      }
    }
  }
})

test("$isAuthorized without a user is false without asking isAuthorized; the rule gets the session proxy and the args", async () => {
  /** @type {ours.IsAuthorizedArgs[]} */
  const seen = []
  try {
    configure({
      isAuthorized: (/** @type {ours.IsAuthorizedArgs} */ input) => {
        seen.push(input)
        return input.args[0] === "yes"
      },
    })
    const anon = await ours.getSession(request())
    assert.equal(anon.$isAuthorized("yes"), false)
    assert.throws(() => anon.$authorize(), isAuthenticationError)
    assert.throws(() => anon.$authorize("yes"), isAuthenticationError)
    assert.equal(seen.length, 0)

    const { session } = await login({ userId: 3, role: "user", org: "acme" })
    assert.equal(session.$isAuthorized("yes", undefined, 2), true)
    assert.equal(seen.length, 1)
    assert.equal(seen[0].ctx.session, session, "the proxy itself")
    assert.equal(seen[0].ctx.session.org, "acme")
    assert.deepEqual(Object.keys(seen[0].ctx), ["session"])
    assert.deepEqual(seen[0].args, ["yes", undefined, 2])
    assert.throws(() => session.$authorize("no"), isAuthorizationError)
    session.$authorize("yes")
  } finally {
    configure()
  }
})

test("Q14: userId 0 is a user like any other", async () => {
  const { session, jar } = await login({ userId: 0, role: "admin" })
  assert.equal(session.userId, 0)
  session.$authorize("admin")
  assert.equal(session.$isAuthorized("admin"), true)
  const again = await ours.getSession(request(jar))
  assert.equal(again.userId, 0)
  again.$authorize("admin")
  assert.deepEqual(await ours.getAllSessionHandlesForUser(0), [...rows.values()].filter((r) => r.userId === 0).map((r) => r.handle))
})

test(
  "Q14: userId \"\" and false, accepted by $create, are logged in for $authorize too",
  async () => {
    for (const userId of ["", false]) {
      const { session } = await login({ userId, role: "admin" })
      assert.equal(session.userId, userId)
      assert.equal(session.$isAuthorized("admin"), true, JSON.stringify(userId))
      session.$authorize("admin")
    }
  },
)

// ---------------------------------------------------------------------------
// The SessionContext object.

test("SessionContext: a Proxy reading unknown properties from $publicData, not thenable, like Blitz's", async () => {
  const publicData = { userId: 1, role: "admin", orgId: 5, toString: "from publicData", $handle: "shadowed" }
  const { session } = await login(publicData)
  // Blitz's session for the same public data, through its own getSession.
  const b = await blitzAuth.getSession(request())
  await b.$create({ ...publicData })

  /** @param {any} s */
  const probe = (s) => ({
    then: s.then,
    role: s.role,
    orgId: s.orgId,
    missing: s.missing,
    toStringIsObjects: s.toString === Object.prototype.toString,
    handleIsString: typeof s.$handle === "string" && s.$handle !== "shadowed",
    antiCsrfIsMethod: typeof s.$antiCSRFToken === "function",
    userId: s.userId,
    publicDataLive: s.$publicData === s.$publicData,
    hasCreate: typeof s.$create === "function" && typeof s.setSession === "function",
  })
  assert.deepEqual(probe(session), probe(b))
  assert.deepEqual(probe(session), {
    then: undefined,
    role: "admin",
    orgId: 5,
    missing: undefined,
    toStringIsObjects: true,
    handleIsString: true,
    antiCsrfIsMethod: true,
    userId: 1,
    publicDataLive: true,
    hasCreate: true,
  })

  assert.ok(session instanceof ours.SessionContextClass)
  assert.equal(await Promise.resolve(session), session, "awaiting it gives the session back")
  assert.match(session.$handle, /^[A-Za-z0-9_-]{32}:ots$/)
})

test("SessionContext: $antiCSRFToken() is the CSRF cookie's token; $publicData is live; writes stay on the object", async () => {
  const jar = new CookieJar()
  const session = await ours.getSession(request(jar))
  respond(session, jar)
  assert.equal(session.$antiCSRFToken(), decodeURIComponent(/** @type {string} */ (jar.get(C.csrf))))
  assert.match(session.$antiCSRFToken(), /^[A-Za-z0-9_-]{32}$/)

  const pd = /** @type {any} */ (session.$publicData)
  pd.flag = "on"
  assert.equal(session.flag, "on", "mutating $publicData changes the session in memory")
  assert.equal(session.$publicData, pd)

  const loose = /** @type {any} */ (session)
  loose.written = 1
  assert.equal(session.written, 1)
  assert.equal(/** @type {any} */ (session.$publicData).written, undefined, "writes are not redirected to $publicData (as in Blitz)")

  // After $setPublicData the context holds the new public data.
  const post = await ours.getSession(request(jar, "POST", csrf(jar)))
  await post.$setPublicData({ theme: "dark" })
  assert.equal(post.theme, "dark")
  assert.deepEqual(post.$publicData, { userId: null, theme: "dark" })
})

test("constants and cookie-name functions equal @blitzjs/auth's", () => {
  const names = [
    "TOKEN_SEPARATOR",
    "HANDLE_SEPARATOR",
    "SESSION_TYPE_OPAQUE_TOKEN_SIMPLE",
    "SESSION_TYPE_ANONYMOUS_JWT",
    "SESSION_TOKEN_VERSION_0",
    "HEADER_CSRF",
    "HEADER_CSRF_ERROR",
    "HEADER_PUBLIC_DATA_TOKEN",
    "HEADER_SESSION_CREATED",
    "LOCALSTORAGE_PREFIX",
  ]
  for (const n of names) assert.equal(/** @type {any} */ (ours)[n], blitzAuth[n], n)
  const fns = [
    "COOKIE_ANONYMOUS_SESSION_TOKEN",
    "COOKIE_SESSION_TOKEN",
    "COOKIE_REFRESH_TOKEN",
    "COOKIE_CSRF_TOKEN",
    "COOKIE_PUBLIC_DATA_TOKEN",
    "LOCALSTORAGE_CSRF_TOKEN",
    "LOCALSTORAGE_PUBLIC_DATA_TOKEN",
  ]
  const g = /** @type {any} */ (globalThis)
  const saved = g.__BLITZ_SESSION_COOKIE_PREFIX
  try {
    for (const prefix of ["blitz", PREFIX, "My-App_1"]) {
      g.__BLITZ_SESSION_COOKIE_PREFIX = prefix
      for (const n of fns) {
        const fn = /** @type {any} */ (ours)[n]
        assert.equal(typeof fn, "function", n)
        assert.equal(fn.length, 0)
        assert.equal(fn(), blitzAuth[n](), `${n} with prefix ${prefix}`)
        assert.ok(fn().startsWith(`${prefix}_s`))
      }
    }
  } finally {
    g.__BLITZ_SESSION_COOKIE_PREFIX = saved
  }
})

// ---------------------------------------------------------------------------
// setPublicDataForUser and getAllSessionHandlesForUser.

test("setPublicDataForUser updates every live session of the user and only theirs; strips userId; leaves the argument alone", async () => {
  const a1 = await login({ userId: 501, role: "user", keep: 1 })
  const a2 = await login({ userId: 501, role: "user" })
  const expired = await login({ userId: 501, role: "user" })
  const other = await login({ userId: 502, role: "user" })
  const stringId = await login({ userId: "501", role: "user" })
  const expiredRow = /** @type {any} */ (rows.get(expired.session.$handle))
  expiredRow.expiresAt = new Date(Date.now() - 1000)

  assert.deepEqual(await ours.getAllSessionHandlesForUser(501), [a1.session.$handle, a2.session.$handle])
  assert.deepEqual(await ours.getAllSessionHandlesForUser("501"), [stringId.session.$handle])
  assert.deepEqual(await ours.getAllSessionHandlesForUser(123456789), [])

  const untouched = [expired, other, stringId].map((x) => rows.get(x.session.$handle)?.publicData)
  const data = { role: "admin", userId: 999, plan: "pro" }
  const copy = structuredClone(data)
  await ours.setPublicDataForUser(501, data)
  assert.deepEqual(data, copy, "Q13: the caller's object keeps its userId")

  assert.deepEqual(JSON.parse(/** @type {string} */ (rows.get(a1.session.$handle)?.publicData)), { userId: 501, role: "admin", keep: 1, plan: "pro" })
  assert.deepEqual(JSON.parse(/** @type {string} */ (rows.get(a2.session.$handle)?.publicData)), { userId: 501, role: "admin", plan: "pro" })
  assert.deepEqual(
    [expired, other, stringId].map((x) => rows.get(x.session.$handle)?.publicData),
    untouched,
    "expired sessions, other users and the user \"501\" are not touched",
  )

  // The user's next request (even a GET) sees it, and the browser gets the new publicData cookie.
  const next = await ours.getSession(request(a1.jar))
  assert.equal(next.role, "admin")
  assert.equal(next.userId, 501)
  const res = respond(next, a1.jar)
  assert.equal(res.headers.get("public-data-token"), "updated")
  assert.deepEqual(decodePublicDataCookie(/** @type {string} */ (a1.jar.get(C.publicData))), { userId: 501, role: "admin", keep: 1, plan: "pro" })
  next.$authorize("admin")

  // A member set to undefined is removed (as JSON.stringify drops it in Blitz).
  await ours.setPublicDataForUser(501, { plan: undefined })
  assert.deepEqual(JSON.parse(/** @type {string} */ (rows.get(a2.session.$handle)?.publicData)), { userId: 501, role: "admin" })
})

test("setPublicDataForUser and getAllSessionHandlesForUser with the built-in in-memory store", async () => {
  try {
    configure({ storage: new ours.MemoryStorage() })
    const a = await login({ userId: "u", role: "user" })
    const b = await login({ userId: "u", role: "user" })
    const c = await login({ userId: "v", role: "user" })
    assert.deepEqual(await ours.getAllSessionHandlesForUser("u"), [a.session.$handle, b.session.$handle])
    await ours.setPublicDataForUser("u", { role: "admin", userId: "w" })
    for (const x of [a, b]) {
      const s = await ours.getSession(request(x.jar))
      assert.deepEqual(s.$publicData, { userId: "u", role: "admin" })
    }
    assert.equal((await ours.getSession(request(c.jar))).role, "user")
    assert.deepEqual(await ours.getAllSessionHandlesForUser("w"), [])
  } finally {
    configure()
  }
})

// ---------------------------------------------------------------------------
// The wrappers.

test("withBlitzAuth with one handler: session in ctx, params passed through, cookies on the returned response", async () => {
  const params = { params: { id: "7" } }
  /** @type {any[]} */
  const calls = []
  const GET = ours.withBlitzAuth(async (req, p, ctx) => {
    calls.push([req, p, ctx])
    return new Response(JSON.stringify({ userId: ctx.session.userId }), { status: 200, headers: { "x-handler": "1" } })
  })
  const req = request()
  const res = await GET(req, params)
  assert.equal(calls.length, 1)
  assert.equal(calls[0][0], req)
  assert.equal(calls[0][1], params)
  assert.deepEqual(Object.keys(calls[0][2]), ["session"])
  assert.ok(calls[0][2].session instanceof ours.SessionContextClass)
  assert.equal(res.status, 200)
  assert.equal(res.headers.get("x-handler"), "1")
  assert.deepEqual(await res.json(), { userId: null })
  assert.deepEqual(setCookies(res).map((l) => parseSetCookie(l).name).sort(), [C.anon, C.csrf, C.publicData, C.session].sort())
  assert.equal(res.headers.get("session-created"), "true")
  assert.equal(res.headers.get("public-data-token"), "updated")
})

test("withBlitzAuth with an object of handlers: same keys, each wrapped; a login's cookies reach the browser", async () => {
  const handlers = ours.withBlitzAuth({
    GET: async (_r, _p, { session }) => Response.json({ userId: session.userId }),
    POST: async (_r, _p, { session }) => {
      await session.$create({ userId: 21, role: "admin" })
      return Response.json({ ok: true })
    },
  })
  assert.deepEqual(Object.keys(handlers), ["GET", "POST"])
  const jar = new CookieJar()
  jar.absorb(await handlers.GET(request(jar), {}))
  const res = await handlers.POST(request(jar, "POST", csrf(jar)), {})
  jar.absorb(res)
  assert.equal(res.headers.get("session-created"), "true")
  assert.deepEqual(await (await handlers.GET(request(jar), {})).json(), { userId: 21 })
})

test("withBlitzAuth: a CSRF failure is a 401 with csrf-error: true, and the handler does not run", async () => {
  let ran = false
  const { POST } = ours.withBlitzAuth({
    POST: async () => {
      ran = true
      return new Response("nope")
    },
  })
  const { jar } = await login({ userId: 22 })
  for (const headers of /** @type {Record<string, string>[]} */ ([{}, { "anti-csrf": "wrong" }])) {
    const res = await POST(request(jar, "POST", headers), {})
    assert.equal(res.status, 401)
    assert.equal(res.headers.get("csrf-error"), "true")
    const body = /** @type {any} */ (await res.json())
    assert.equal(body.error.name, "CSRFTokenMismatchError")
    assert.equal(body.error.statusCode, 401)
  }
  assert.equal(ran, false)
  assert.equal((await POST(request(jar, "POST", csrf(jar)), {})).status, 200)
})

test("withBlitzAuth: an error thrown by the handler propagates unchanged", async () => {
  const boom = new Error("boom")
  const h = ours.withBlitzAuth(async () => {
    throw boom
  })
  await assert.rejects(h(request(), {}), (/** @type {any} */ e) => e === boom)
  const { GET } = ours.withBlitzAuth({
    GET: async (_r, _p, { session }) => {
      session.$authorize()
      return new Response("unreachable")
    },
  })
  await assert.rejects(GET(request(), {}), isAuthenticationError)
})

test("withBlitzAuth: a Response.redirect(...) still gets its cookies (Q27: Blitz threw on immutable headers)", async () => {
  const h = ours.withBlitzAuth(async () => Response.redirect(`${URL_BASE}/dashboard`, 303))
  const res = await h(request(), {})
  assert.equal(res.status, 303)
  assert.equal(res.headers.get("location"), `${URL_BASE}/dashboard`)
  assert.equal(setCookies(res).length, 4)
  assert.equal(res.headers.get("session-created"), "true")
})

test("withBlitzAuth: a handler that calls setSession itself (like rpcAppHandler) gets no duplicate cookies (Q6)", async () => {
  const h = ours.withBlitzAuth(async (_r, _p, { session }) => {
    const response = new Response("rpc", { headers: [["set-cookie", "app=1; Path=/"]] })
    session.setSession(response)
    return response
  })
  const res = await h(request(), {})
  const names = res.headers.getSetCookie().map((l) => parseSetCookie(l).name)
  assert.deepEqual([...names].sort(), ["app", C.anon, C.csrf, C.publicData, C.session].sort())
  assert.equal(names.length, new Set(names).size)
  assert.ok(!res.headers.getSetCookie().includes("null"))
})

test("api(handler) and gSSP(handler) on a real node:http server", async (t) => {
  const apiRoute = ours.api(async (req, res, ctx) => {
    if (req.method === "POST" && req.url === "/api/login") await ctx.session.$create({ userId: 31, role: "admin" })
    res.setHeader("content-type", "application/json")
    res.end(JSON.stringify({ userId: ctx.session.userId, method: req.method }))
  })
  const failing = ours.api(async () => {
    throw new Error("handler failed")
  })
  const page = ours.gSSP(async ({ ctx, query, req }) => ({
    props: { userId: ctx.session.userId, query, url: req.url },
  }))
  const server = await startServer(async (req, res) => {
    if (req.url?.startsWith("/page")) {
      const out = await page({ req, res, query: { q: "1" } })
      res.setHeader("content-type", "application/json")
      res.end(JSON.stringify(out))
    } else if (req.url === "/api/fail") {
      await failing(req, res).catch((/** @type {any} */ e) => {
        res.statusCode = 500
        res.end(`caught: ${e.message}`)
      })
    } else {
      await apiRoute(req, res)
    }
  })
  t.after(() => server.close())
  const jar = new CookieJar()

  let r = await fetch(`${server.base}/api/me`, { headers: { cookie: jar.header() } })
  jar.absorb(r)
  assert.equal(r.status, 200)
  assert.deepEqual(await r.json(), { userId: null, method: "GET" })
  assert.equal(r.headers.get("session-created"), "true")
  assert.equal(r.headers.getSetCookie().length, 4, "one Set-Cookie line per cookie")

  r = await fetch(`${server.base}/api/login`, { method: "POST", headers: { cookie: jar.header() } })
  assert.equal(r.status, 401, "CSRF errors answer with their own status (Q24: Blitz answered 400)")
  assert.equal(r.headers.get("csrf-error"), "true")
  assert.equal(/** @type {any} */ (await r.json()).error.name, "CSRFTokenMismatchError")

  r = await fetch(`${server.base}/api/login`, { method: "POST", headers: { cookie: jar.header(), ...csrf(jar) } })
  jar.absorb(r)
  assert.deepEqual(await r.json(), { userId: 31, method: "POST" })
  assert.equal(jar.cookies.has(C.anon), false)
  assert.ok(jar.get(C.session))

  r = await fetch(`${server.base}/page?q=1`, { headers: { cookie: jar.header() } })
  assert.deepEqual(await r.json(), { props: { userId: 31, query: { q: "1" }, url: "/page?q=1" } })

  r = await fetch(`${server.base}/page`)
  assert.equal(r.headers.getSetCookie().length, 4, "gSSP puts a new session's cookies on res")
  assert.deepEqual(/** @type {any} */ (await r.json()).props.userId, null)

  r = await fetch(`${server.base}/api/fail`)
  assert.equal(r.status, 500)
  assert.equal(await r.text(), "caught: handler failed", "a handler error rejects api's promise")
})

test("AuthServerPlugin(...) returns Blitz's plugin shape; its middleware sets res.blitzCtx.session and calls next", async (t) => {
  const plugin = configure()
  assert.deepEqual(Object.keys(plugin).sort(), ["exports", "requestMiddlewares"])
  assert.equal(plugin.requestMiddlewares.length, 1)
  const [mw] = plugin.requestMiddlewares
  assert.equal(typeof mw, "function")
  assert.deepEqual(/** @type {any} */ (mw).config, { name: "blitzSessionMiddleware", cookiePrefix: PREFIX })
  const exported = plugin.exports()
  assert.deepEqual(Object.keys(exported).sort(), ["getBlitzContext", "useAuthenticatedBlitzContext", "withBlitzAuth"])
  for (const fn of Object.values(exported)) assert.equal(typeof fn, "function")
  assert.equal(exported.withBlitzAuth, ours.withBlitzAuth)

  const server = await startServer(async (req, res) => {
    const r = /** @type {any} */ (res)
    if (req.url === "/preset") r.blitzCtx = { session: { preset: true }, other: 1 }
    let nextCalls = 0
    const result = await mw(req, res, () => {
      nextCalls++
      return "next-result"
    })
    res.setHeader("content-type", "application/json")
    res.end(
      JSON.stringify({
        nextCalls,
        result,
        isSession: r.blitzCtx.session instanceof ours.SessionContextClass,
        preset: r.blitzCtx.session.preset ?? null,
        userId: r.blitzCtx.session.userId ?? null,
      }),
    )
  })
  t.after(() => server.close())
  let r = await fetch(`${server.base}/`)
  assert.deepEqual(await r.json(), { nextCalls: 1, result: "next-result", isSession: true, preset: null, userId: null })
  assert.equal(r.headers.getSetCookie().length, 4)
  r = await fetch(`${server.base}/preset`)
  assert.deepEqual(await r.json(), { nextCalls: 1, result: "next-result", isSession: false, preset: true, userId: null })
  assert.equal(r.headers.getSetCookie().length, 0, "an existing ctx.session is kept and nothing is written")
})

test("getSession(req, res) keeps other res.blitzCtx members (Q23) and returns an existing session as is", async (t) => {
  const server = await startServer(async (req, res) => {
    const r = /** @type {any} */ (res)
    r.blitzCtx = { other: "kept" }
    const session = await ours.getSession(req, res)
    const again = await ours.getSession(req, res)
    res.end(JSON.stringify({ other: r.blitzCtx.other, same: again === session && r.blitzCtx.session === session }))
  })
  t.after(() => server.close())
  const r = await fetch(server.base)
  assert.deepEqual(await r.json(), { other: "kept", same: true })
})

test("getBlitzContext without next installed: Blitz's message", async () => {
  await assert.rejects(ours.getBlitzContext(), {
    message: "Usage of `getBlitzContext` is supported only in next.js 13.0.0 and above. Please upgrade your next.js version.",
  })
})

// ---------------------------------------------------------------------------
// React Server Components (next is not installed: next/headers and
// next/navigation are stand-ins registered in the module cache).

/**
 * @typedef {{ cookies: Map<string, string>, headers: Record<string, string> }} FakeRequest
 */

/** Blitz's URL formatting (not re-exported by the package entry; no exports map, so the deep path resolves). */
const blitzClientInternals = /** @type {any} */ ((/** @type {string} */ name) => require(name))("@blitzjs/auth/dist/chunks/index.cjs")

/**
 * Run `fn` with fake `next/headers` (serving `req`) and `next/navigation`
 * (whose `redirect(url)` throws an Error carrying `url`, as Next's does).
 * @template T
 * @param {FakeRequest} req
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
async function withFakeNext(req, fn) {
  const Module = /** @type {any} */ (require("node:module"))
  /** @type {Record<string, string>} */
  const ids = { "next/headers": "/__fake__/next/headers.js", "next/navigation": "/__fake__/next/navigation.js" }
  /** @type {Record<string, any>} */
  const fakes = {
    [ids["next/headers"]]: {
      cookies: async () => ({ get: (/** @type {string} */ name) => (req.cookies.has(name) ? { name, value: req.cookies.get(name) } : undefined) }),
      headers: async () => new Headers(req.headers),
    },
    [ids["next/navigation"]]: {
      redirect: (/** @type {string} */ url) => {
        throw Object.assign(new Error("NEXT_REDIRECT"), { url })
      },
    },
  }
  const resolve = Module._resolveFilename
  Module._resolveFilename = function (/** @type {string} */ request, /** @type {any[]} */ ...rest) {
    return ids[request] ?? resolve.call(this, request, ...rest)
  }
  for (const [id, exports] of Object.entries(fakes)) {
    const m = new Module(id)
    Object.assign(m, { filename: id, loaded: true, exports })
    require.cache[id] = m
  }
  try {
    return await fn()
  } finally {
    Module._resolveFilename = resolve
    for (const id of Object.values(ids)) delete require.cache[id]
  }
}

/** What Next gives a server component for the browser holding `jar`. @param {CookieJar} jar @returns {FakeRequest} */
const rscRequest = (jar) => ({
  cookies: new Map([...jar.cookies.values()].map((c) => [c.name, decodeURIComponent(c.value)])),
  headers: { cookie: jar.header(), host: "localhost:3000" },
})

/** The URL `useAuthenticatedBlitzContext(options)` redirected to, or null. @param {FakeRequest} req @param {any} options */
async function redirectOf(req, options) {
  return withFakeNext(req, async () => {
    try {
      await ours.useAuthenticatedBlitzContext(options)
      return null
    } catch (e) {
      const err = /** @type {any} */ (e)
      if (err.message !== "NEXT_REDIRECT") throw e
      return /** @type {string} */ (err.url)
    }
  })
}

test("RSC: getBlitzContext reads the request's session; mutations are no-ops", async () => {
  const { jar, session } = await login({ userId: 61, role: "user" })
  const ctx = await withFakeNext(rscRequest(jar), () => ours.getBlitzContext())
  assert.deepEqual(Object.keys(ctx), ["session"])
  assert.equal(ctx.session.$handle, session.$handle)
  assert.equal(ctx.session.userId, 61)
  ctx.session.$authorize("user")
  const log = console.log
  console.log = () => {}
  try {
    const before = rows.get(session.$handle)?.publicData
    assert.equal(await ctx.session.$setPublicData({ role: "admin" }), undefined)
    assert.equal(await ctx.session.$revoke(), undefined)
    assert.equal(rows.get(session.$handle)?.publicData, before, "nothing written")
    assert.equal(ctx.session.userId, 61)
  } finally {
    console.log = log
  }
  const anon = await withFakeNext({ cookies: new Map(), headers: {} }, () => ours.getBlitzContext())
  assert.equal(anon.session.userId, null)
})

test("RSC: useAuthenticatedBlitzContext redirects as Blitz's does", async () => {
  const user = rscRequest((await login({ userId: 62, role: "user" })).jar)
  const anon = rscRequest(new CookieJar())
  /** @type {Array<[FakeRequest, any, string | null]>} */
  const cases = [
    [user, {}, null],
    [user, { redirectTo: "/login" }, null],
    [user, { redirectAuthenticatedTo: "/home" }, "/home"],
    [user, { redirectAuthenticatedTo: "/home", role: "user" }, null],
    [user, { redirectAuthenticatedTo: "/home", role: "admin" }, "/home"],
    [user, { redirectTo: "/login", role: "admin" }, "/login"],
    [user, { redirectTo: "/login", role: ["admin", "user"] }, null],
    [user, { redirectAuthenticatedTo: (/** @type {any} */ c) => `/u/${c.session.userId}` }, "/u/62"],
    [user, { redirectTo: { pathname: "/login", query: { next: "/a b" } }, role: "admin" }, "/login?next=%2Fa+b"],
    [anon, {}, null],
    [anon, { redirectAuthenticatedTo: "/home" }, null],
    [anon, { redirectTo: "/login" }, "/login"],
    [anon, { redirectTo: { pathname: "/login" } }, "/login"],
  ]
  for (const [req, options, want] of cases) {
    assert.equal(await redirectOf(req, options), want, `${req === user ? "user" : "anon"} ${JSON.stringify(options)}`)
  }
})

test(
  "RSC: URL objects are formatted like Blitz's formatWithValidation",
  async () => {
    const anon = rscRequest(new CookieJar())
    for (const url of [
      { pathname: "/login", query: { tab: ["a", "b"] } },
      { pathname: "/login", hash: "top" },
      { pathname: "/login", search: "?a=1" },
      { protocol: "https", host: "example.com", pathname: "/login" },
    ]) {
      assert.equal(await redirectOf(anon, { redirectTo: url }), blitzClientInternals.formatWithValidation(url), JSON.stringify(url))
    }
  },
)

test(
  "RSC (Q25): a render does not write to storage, even when the session is due for a refresh",
  async () => {
    const realNow = Date.now
    let now = realNow()
    Date.now = () => now
    try {
      configure({ sessionExpiryMinutes: 60 })
      const { jar, session } = await login({ userId: 63 })
      const row = /** @type {any} */ (rows.get(session.$handle))
      const before = { ...row }
      now += 20 * 60_000 // more than a quarter of the window
      await withFakeNext(rscRequest(jar), () => ours.getBlitzContext())
      assert.deepEqual({ ...rows.get(session.$handle) }, before, "no refresh of the expiry from a render")
      await ours.setPublicDataForUser(63, { role: "admin" })
      const afterSet = { ...rows.get(session.$handle) }
      await withFakeNext(rscRequest(jar), () => ours.getBlitzContext())
      assert.deepEqual({ ...rows.get(session.$handle) }, afterSet, "no re-issued token hash from a render")
    } finally {
      Date.now = realNow
      configure()
    }
  },
)

// ---------------------------------------------------------------------------
// Bad input.

test("garbage, oversized and malformed cookies give a valid new anonymous session (GET and POST)", async () => {
  const b64 = (/** @type {string} */ s) => Buffer.from(s).toString("base64")
  const jwtPart = (/** @type {any} */ o) => Buffer.from(JSON.stringify(o)).toString("base64url")
  const cookies = [
    "garbage",
    "=;;=;",
    `${C.session}=${"A".repeat(5000)}`,
    `${C.session}=%%%`,
    `${C.session}=${b64("a;b;c;v0")}`,
    `${C.session}=${b64("only;two")}`,
    `${C.session}=${b64("x:ots;id;hash;v1")}`,
    `${C.session}="quoted"`,
    `${C.session}=${encodeURIComponent(b64("\u0000\uffff;;;;"))}`,
    `${C.anon}=not-a-jwt`,
    `${C.anon}=eyJ.eyJ.sig`,
    `${C.anon}=${jwtPart({ alg: "none" })}.${jwtPart({ blitzjs: { handle: "h:ajwt", publicData: { userId: 1 }, antiCSRFToken: "t" }, aud: "blitzjs", iss: "blitzjs", sub: "anonymous" })}.`,
    `${C.anon}=${jwtPart({ alg: "HS256", typ: "JWT" })}.${jwtPart([1, 2])}.${"A".repeat(43)}`,
    `${C.anon}=${"x".repeat(5000)}`,
    `${C.publicData}=!!!; ${C.csrf}=zzz`,
    `${C.publicData}=${b64("{not json")}`,
    `${PREFIX}_sIdRefreshToken=x`,
    `big=${"b".repeat(10000)}`,
    `${C.session}=${b64("a;b;c;v0")}; ${C.session}=second`,
  ]
  for (const cookie of cookies) {
    for (const method of ["GET", "POST"]) {
      const jar = new CookieJar()
      const session = await ours.getSession(new Request(`${URL_BASE}/`, { method, headers: { cookie } }))
      assert.equal(session.userId, null, cookie.slice(0, 60))
      assert.match(session.$handle, /:ajwt$/)
      assert.deepEqual(session.$publicData, { userId: null })
      const res = respond(session, jar)
      assert.equal(res.headers.get("session-created"), "true", cookie.slice(0, 60))
      assert.ok(jar.get(C.anon) && jar.get(C.csrf) && jar.get(C.publicData))
      const cleared = setCookies(res).map(parseSetCookie).find((c) => c.name === C.session)
      assert.ok(cleared && cleared.value === "" && cleared.expires === "Thu, 01 Jan 1970 00:00:00 GMT")
      // The new session works on the next request.
      assert.equal((await ours.getSession(request(jar, "POST", csrf(jar)))).$handle, session.$handle)
    }
  }
})

test("a plain { headers, method } request and array header values are accepted", async () => {
  const jar = new CookieJar()
  const first = await ours.getSession({ headers: {}, method: "GET" })
  respond(first, jar)
  const again = await ours.getSession({ headers: { cookie: jar.header(), "anti-csrf": decodeURIComponent(/** @type {string} */ (jar.get(C.csrf))) }, method: "POST" })
  assert.equal(again.$handle, first.$handle)
})

test("bad arguments: TypeError/Error with a stable code, and the session is unchanged", async () => {
  const jar = new CookieJar()
  const session = await ours.getSession(request(jar))
  respond(session, jar)
  const before = structuredClone(session.$publicData)
  /** @param {string} code */
  const hasCode = (code) => (/** @type {any} */ e) => e instanceof TypeError && /** @type {any} */ (e).code === code
  const any = /** @type {any} */ (null)

  await assert.rejects(ours.getSession(/** @type {any} */ (undefined)), hasCode("INVALID_ARGUMENT"))
  await assert.rejects(ours.getSession(/** @type {any} */ ("GET /")), hasCode("INVALID_ARGUMENT"))
  await assert.rejects(session.$setPublicData(/** @type {any} */ ("x")), hasCode("INVALID_ARGUMENT"))
  await assert.rejects(session.$setPublicData(any), hasCode("INVALID_ARGUMENT"))
  await assert.rejects(session.$setPublicData(/** @type {any} */ ([1])), hasCode("INVALID_ARGUMENT"))
  await assert.rejects(session.$setPublicData({ n: 1n }), hasCode("INVALID_ARGUMENT"))
  const circular = /** @type {any} */ ({ a: 1 })
  circular.self = circular
  await assert.rejects(session.$setPublicData(circular), hasCode("INVALID_ARGUMENT"))
  await assert.rejects(session.$setPrivateData({ n: 1n }), hasCode("INVALID_ARGUMENT"))
  await assert.rejects(session.$create({ userId: 1, n: 1n }), hasCode("INVALID_ARGUMENT"))
  await assert.rejects(session.$create({ userId: 1n }), hasCode("INVALID_ARGUMENT"))
  await assert.rejects(ours.setPublicDataForUser(1, /** @type {any} */ ("x")), hasCode("INVALID_ARGUMENT"))
  await assert.rejects(ours.setPublicDataForUser(undefined, { a: 1 }), hasCode("INVALID_ARGUMENT"))
  assert.throws(() => session.setSession(/** @type {any} */ (undefined)), hasCode("INVALID_ARGUMENT"))
  assert.throws(() => ours.withBlitzAuth(/** @type {any} */ (null)), hasCode("INVALID_ARGUMENT"))

  // $create's own checks keep Blitz's messages.
  await assert.rejects(session.$create(any), { message: "You must provide publicData.userId" })
  await assert.rejects(session.$create(/** @type {any} */ ({})), { message: "You must provide publicData.userId" })
  await assert.rejects(session.$create({ userId: null }), { message: "You must provide a non-empty userId as publicData.userId" })

  assert.deepEqual(session.$publicData, before)
  assert.match(session.$handle, /:ajwt$/)
  const res = new Response("")
  session.setSession(res)
  assert.deepEqual(setCookies(res).map((l) => parseSetCookie(l).name).sort(), [C.anon, C.csrf, C.publicData, C.session].sort(), "only the cookies of the new session")
  assert.deepEqual(decodePublicDataCookie(/** @type {string} */ (jar.get(C.publicData))), { userId: null })
})

test(
  "$create(null) and friends carry an error code too",
  async () => {
    const session = await ours.getSession(request())
    for (const arg of [null, {}, { userId: null }, "x"]) {
      await assert.rejects(session.$create(/** @type {any} */ (arg)), (/** @type {any} */ e) => typeof e.code === "string", JSON.stringify(arg))
    }
  },
)

test(
  "numbers in public data keep their exact value",
  async () => {
    const session = await ours.getSession(request())
    for (const v of [380658.60827818996, 0.000056590139100374996, 2.3808096766785634e27, 59767440365694930000]) {
      await session.$setPublicData({ v })
      assert.equal(session.$publicData.v, v)
    }
  },
)

// ---------------------------------------------------------------------------
// The examples of the docs page (spec/blitz-docs-auth-server-side-apis.txt),
// server-side logic as an app writes it.

test("docs: getServerSideProps with gSSP returns the session's userId and publicData", async (t) => {
  const getServerSideProps = ours.gSSP(async ({ ctx }) => {
    const { session } = ctx
    return {
      props: {
        userId: session.userId,
        publicData: session.$publicData,
        publishedAt: new Date(0),
      },
    }
  })
  /** @type {any} */
  let result
  const server = await startServer(async (req, res) => {
    result = await getServerSideProps({ req, res, query: {}, resolvedUrl: "/page" })
    res.end("<html></html>")
  })
  t.after(() => server.close())
  const { jar } = await login({ userId: 41, role: "user", name: "Zoë" })
  const r = await fetch(`${server.base}/page`, { headers: { cookie: jar.header() } })
  assert.equal(r.status, 200)
  assert.deepEqual(result.props.publicData, { userId: 41, role: "user", name: "Zoë" })
  assert.equal(result.props.userId, 41)
  assert.deepEqual(result.props.publishedAt, new Date(0))
})

test("docs: App Router POST = withBlitzAuth(handler) that logs out", async () => {
  const POST = ours.withBlitzAuth(async (_request, _params, ctx) => {
    const session = ctx.session
    await session.$revoke()
    return new Response(JSON.stringify({ userId: session.userId }), { status: 200 })
  })
  const { jar, session } = await login({ userId: 42 })
  const res = await POST(request(jar, "POST", csrf(jar)), {})
  assert.equal(res.status, 200)
  assert.deepEqual(await res.json(), { userId: null })
  assert.ok(!rows.has(session.$handle), "the session row is deleted")
  jar.absorb(res)
  assert.equal(jar.cookies.has(C.session), false)
  assert.equal(res.headers.get("session-created"), "true")
  assert.equal((await ours.getSession(request(jar))).userId, null)
})

test("docs: export const { POST } = withBlitzAuth({ POST }) and { GET, POST } with several handlers", async () => {
  const { POST: logout } = ours.withBlitzAuth({
    POST: async (_request, _params, { session }) => {
      await session.$revoke()
      return new Response(JSON.stringify({ userId: session.userId }), { status: 200 })
    },
  })
  const { GET, POST } = ours.withBlitzAuth({
    GET: async (_request, _params, { session }) => new Response(JSON.stringify({ userId: session.userId }), { status: 200 }),
    POST: async (_request, _params, { session }) => new Response(JSON.stringify({ userId: session.userId }), { status: 200 }),
  })
  const { jar } = await login({ userId: 43 })
  assert.deepEqual(await (await GET(request(jar), {})).json(), { userId: 43 })
  assert.deepEqual(await (await POST(request(jar, "POST", csrf(jar)), {})).json(), { userId: 43 })
  const out = await logout(request(jar, "POST", csrf(jar)), {})
  assert.deepEqual(await out.json(), { userId: null })
  jar.absorb(out)
  assert.deepEqual(await (await GET(request(jar), {})).json(), { userId: null })
})

test("docs: Pages API route with api() returns the session's publicData", async (t) => {
  const handler = ours.api(async (_req, res, ctx) => {
    const publicData = ctx.session.$publicData
    res.statusCode = 200
    res.setHeader("content-type", "application/json")
    res.end(JSON.stringify({ userId: ctx.session.userId, publicData: { ...publicData } }))
  })
  const server = await startServer((req, res) => handler(req, res))
  t.after(() => server.close())
  const { jar } = await login({ userId: 44, role: "admin" })
  const r = await fetch(`${server.base}/api/me`, { headers: { cookie: jar.header() } })
  assert.deepEqual(await r.json(), { userId: 44, publicData: { userId: 44, role: "admin" } })
})

test("docs: generateToken() and hash256(token) for a password-reset token", () => {
  const token = ours.generateToken()
  assert.match(token, /^[A-Za-z0-9_-]{32}$/)
  const hashedToken = ours.hash256(token)
  assert.equal(hashedToken, blitzAuth.hash256(token), "the same hash Blitz stored")
  assert.match(hashedToken, /^[0-9a-f]{64}$/)
  // The app stores only the hash and finds the token again by hashing what the user brings back.
  const tokens = new Map([[hashedToken, { userId: 1, type: "RESET_PASSWORD" }]])
  assert.deepEqual(tokens.get(ours.hash256(token)), { userId: 1, type: "RESET_PASSWORD" })
  assert.equal(tokens.get(ours.hash256(ours.generateToken())), undefined)
  // API keys: the same string always hashes the same.
  assert.equal(ours.hash256("sk_live_abc"), ours.hash256("sk_live_abc"))
})

test("docs: authenticateUser with SecurePassword upgrades a hash that needs rehashing", async () => {
  const weak = loadVectors("secure-password.json").rehash_cases.find((/** @type {any} */ c) => c.label === "weaker_opslimit1_memlimit8192")
  const users = [{ id: 1, email: "a@example.com", role: "user", hashedPassword: /** @type {string} */ (weak.stored_base64) }]
  /** @type {any[]} */
  const updates = []
  const db = {
    user: {
      findFirst: async (/** @type {{ where: { email: string } }} */ q) => users.find((u) => u.email === q.where.email) ?? null,
      update: async (/** @type {{ where: { id: number }, data: { hashedPassword: string } }} */ q) => {
        updates.push(q)
        const u = /** @type {any} */ (users.find((x) => x.id === q.where.id))
        Object.assign(u, q.data)
        return u
      },
    },
  }
  const { SecurePassword, AuthenticationError } = ours
  const authenticateUser = async (/** @type {string} */ email, /** @type {string} */ password) => {
    const user = await db.user.findFirst({ where: { email } })
    if (!user) throw new AuthenticationError()
    const result = await SecurePassword.verify(user.hashedPassword, password)
    if (result === SecurePassword.VALID_NEEDS_REHASH) {
      // Upgrade hashed password with a more secure hash
      const improvedHash = await SecurePassword.hash(password)
      await db.user.update({ where: { id: user.id }, data: { hashedPassword: improvedHash } })
    }
    const { hashedPassword, ...rest } = user
    return rest
  }

  assert.deepEqual(await authenticateUser("a@example.com", weak.password), { id: 1, email: "a@example.com", role: "user" })
  assert.equal(updates.length, 1, "rehashed once")
  const upgraded = users[0].hashedPassword
  assert.notEqual(upgraded, weak.stored_base64)
  assert.match(Buffer.from(upgraded, "base64").toString("latin1"), /^\$argon2id\$v=19\$m=65536,t=2,p=1\$/)
  assert.equal(await SecurePassword.verify(upgraded, weak.password), SecurePassword.VALID)

  await authenticateUser("a@example.com", weak.password)
  assert.equal(updates.length, 1, "a current hash is not rehashed")
  await assert.rejects(authenticateUser("a@example.com", "wrong"), isAuthenticationError)
  await assert.rejects(authenticateUser("nobody@example.com", weak.password), isAuthenticationError)
  assert.equal(AuthenticationError, blitz.AuthenticationError)
})

test("docs: updateUserRole with setPublicDataForUser(userId, { role }) applies on the user's next request", async () => {
  const users = new Map([[45, { id: 45, role: "user" }]])
  const db = { user: { update: async (/** @type {{ where: { id: number }, data: { role: string } }} */ q) => Object.assign(/** @type {any} */ (users.get(q.where.id)), q.data) } }
  const updateUserRole = async (/** @type {number} */ userId, /** @type {string} */ role) => {
    await db.user.update({ where: { id: userId }, data: { role } })
    await ours.setPublicDataForUser(userId, { role })
  }
  const a = await login({ userId: 45, role: "user" })
  const b = await login({ userId: 45, role: "user" })
  await updateUserRole(45, "admin")
  assert.equal(users.get(45)?.role, "admin")
  for (const { jar } of [a, b]) {
    const s = await ours.getSession(request(jar, "POST", csrf(jar)))
    s.$authorize("admin")
    assert.equal(s.role, "admin")
  }
})

test("docs: getSession/setSession with a Request, and with IncomingMessage/ServerResponse", async (t) => {
  /** @type {(request: Request, params: any, ctx: { session: ours.SessionContext }) => Promise<Response>} */
  const inner = async (_request, _params, { session }) => {
    if (!session.userId) await session.$create({ userId: 46 })
    return new Response(JSON.stringify({ userId: session.userId }))
  }
  // With Request
  const handler = async (/** @type {Request} */ request, /** @type {any} */ params) => {
    const session = await ours.getSession(request)
    const response = await inner(request, params, { session })
    session.setSession(response)
    return response
  }
  const jar = new CookieJar()
  const res = await handler(request(jar), {})
  jar.absorb(res)
  assert.deepEqual(await res.json(), { userId: 46 })
  assert.equal((await ours.getSession(request(jar))).userId, 46)
  // The standalone export does the same.
  const s = await ours.getSession(request(jar))
  const out = new Response("")
  ours.setSession(s, out)
  assert.deepEqual(out.headers.getSetCookie(), [], "nothing changed, nothing written (never Set-Cookie: null)")

  // With IncomingMessage and ServerResponse: cookies are on res before the handler runs.
  const server = await startServer(async (req, res) => {
    const session = await ours.getSession(req, res)
    const before = res.getHeader("set-cookie")
    if (!session.userId) await session.$create({ userId: 47 })
    res.setHeader("content-type", "application/json")
    res.end(JSON.stringify({ userId: session.userId, cookiesBeforeHandler: Array.isArray(before) ? before.length : 0 }))
  })
  t.after(() => server.close())
  const nodeJar = new CookieJar()
  const r = await fetch(server.base, { headers: { cookie: nodeJar.header() } })
  nodeJar.absorb(r)
  assert.deepEqual(await r.json(), { userId: 47, cookiesBeforeHandler: 4 })
  assert.deepEqual(r.headers.getSetCookie().map((l) => parseSetCookie(l).name).sort(), [C.anon, C.csrf, C.publicData, C.session].sort())
  assert.equal((await ours.getSession(request(nodeJar))).userId, 47)
})
