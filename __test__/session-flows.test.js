// @ts-check
"use strict"
// The 42 end-to-end scenarios of spec/vectors/session-flows.json (produced by
// the real @blitzjs/auth 3.0.2), replayed against blitz-auth-native under the
// same conditions: cookie prefix "test", the vectors' SESSION_SECRET_KEY, a
// frozen clock starting at 2025-01-15T12:00:00Z, and a logging in-memory
// SessionConfigMethods. Random values (handles, tokens) are swapped for ours;
// everything else — Set-Cookie strings, Expires, headers, decoded cookies and
// the ordered storage calls — is compared exactly. Where we deliberately
// differ from Blitz (spec §16, numbers Qn), the test asserts that the vector
// differs in exactly that way.
const test = require("node:test")
const assert = require("node:assert/strict")

const f = require("./helpers/flows")
const { blitz } = require("./helpers/peers")
const { loadVectors } = require("./helpers/vectors")

const { names, clock } = f

// The vectors' environment: development, no CSRF switch-off, their secret
// (read when the engine is first used, i.e. by the first getSession).
delete process.env.NODE_ENV
delete process.env.DISABLE_SECURE_COOKIES
delete process.env.DANGEROUSLY_DISABLE_CSRF_PROTECTION
process.env.SESSION_SECRET_KEY = f.SECRET

const pkg = require("..")
const { getSession, setPublicDataForUser, withBlitzAuth } = pkg

const store = new f.LoggingStorage()
pkg.AuthServerPlugin({ cookiePrefix: f.PREFIX, isAuthorized: pkg.simpleRolesIsAuthorized, storage: store })

const vectors = loadVectors("session-flows.json")
/** @type {Set<string>} */
const covered = new Set()

/** The scenario `id` of the vector file. @param {string} id @returns {any} */
function byId(id) {
  const s = vectors.scenarios.find((/** @type {any} */ x) => x.id === id)
  assert.ok(s, `no scenario ${id}`)
  return s
}

/** The scenario a test replays (marked covered). @param {string} id */
function scenario(id) {
  covered.add(id)
  return byId(id)
}

/** The error `p` rejects with. @param {Promise<unknown>} p @returns {Promise<any>} */
async function rejection(p) {
  try {
    await p
  } catch (e) {
    return e
  }
  return assert.fail("expected a rejection")
}

test.afterEach(() => clock.restore())

// ---------------------------------------------------------------------------
// The sessions the scenarios chain through, taken from the vectors themselves
// (their cookies are signed with the vectors' secret, so our engine accepts them).

const A = scenario("A_no_cookies_GET")
const D = scenario("D_anon_setPublicData_setPrivateData")
const E = scenario("E_create_from_anonymous")

/** Browser jar after A: the anonymous session jiaxL6…:ajwt, its CSRF and publicData cookies. */
const jarA = f.cookieJar(A.response.set_cookie_split)
const cookieA = f.cookieHeader(jarA)
const csrfA = A.session.antiCSRFToken

/** Browser jar after E: the authenticated session vzTHYK…:ots of user 1. */
const jarE = f.cookieJar(E.response.set_cookie_split, f.cookieJar(D.response.set_cookie_split, jarA))
const csrfE = E.session.antiCSRFToken
const handleE = E.session.handle
const tokenE = jarE[names.session]
const tokenPartsE = f.decodeSessionToken(decodeURIComponent(tokenE))
/** The vector's Set-Cookie lines of E, by cookie. */
const [sessionCookieE, csrfCookieE, publicDataCookieE] = E.response.set_cookie_split

/**
 * The logged-in state of user 1 (E's session) with other public data: the
 * stored row and the browser's jar, as our package leaves them after the
 * session token was re-issued for that public data (Q2).
 * @param {any} publicData
 * @param {string} expiresAt ISO
 */
function sessionOfUser1(publicData, expiresAt) {
  const json = JSON.stringify(publicData)
  const token = f.sessionToken(handleE, tokenPartsE.id, json)
  const row = { ...E.stored_row, expiresAt, publicData: json, hashedSessionToken: f.sha256(token) }
  const jar = { ...jarE, [names.session]: encodeURIComponent(token), [names.publicData]: encodeURIComponent(Buffer.from(json).toString("base64")) }
  return { row, token, cookie: f.cookieHeader(jar) }
}

/** Blitz's joined Set-Cookie value of a vector response. @param {any} response */
function joinedSetCookie(response) {
  return response.headers.filter((/** @type {string[]} */ [k]) => k === "set-cookie").map((/** @type {string[]} */ [, v]) => v)
}

/** Without the `anti-csrf` request echo (Q5). @param {string[][]} headers */
const withoutEcho = (headers) => headers.filter(([k]) => k !== "anti-csrf")

// ---------------------------------------------------------------------------
// Anonymous sessions.

test("A_no_cookies_GET: a request without cookies gets a new anonymous session", async () => {
  store.reset()
  clock.set("12:00")
  const session = await getSession(f.webRequest({ method: "GET" }))
  assert.match(session.$handle, f.HANDLE)
  assert.ok(session.$handle.endsWith(":ajwt"))
  assert.match(session.$antiCSRFToken(), f.RANDOM)
  assert.equal(session.userId, A.session.userId)
  assert.deepEqual(session.$publicData, A.session.publicData)

  const res = f.respond(session)
  const swap = f.randomSwap(A.response.set_cookie_split, res.setCookie)
  assert.equal(swap.get(A.session.handle), session.$handle)
  assert.equal(swap.get(A.session.antiCSRFToken), session.$antiCSRFToken())
  assert.deepEqual(res.headers, f.vectorHeaders(A.response))
  // Q6: one Set-Cookie line per cookie; Blitz joined them into one value.
  assert.deepEqual(joinedSetCookie(A.response), [A.response.set_cookie_split.join(", ")])
  assert.deepEqual(
    res.setCookie,
    A.response.set_cookie_split.map((/** @type {string} */ c) => f.rebuild(c, swap)),
  )

  const jwt = f.decodeJwt(/** @type {string} */ (f.cookieValue(res.setCookie, names.anon)))
  const want = A.decoded_cookies[names.anon]
  assert.equal(jwt.headerText, JSON.stringify(want.header))
  assert.equal(jwt.payloadText, JSON.stringify(f.swapDeep(want.payload, swap)))
  assert.equal(f.cookieValue(res.setCookie, names.csrf), session.$antiCSRFToken())
  const pd = A.decoded_cookies[names.publicData]
  assert.equal(f.cookieValue(res.setCookie, names.publicData), pd.base64)
  assert.deepEqual(f.decodePublicData(pd.base64), pd.parsed)
  assert.deepEqual(store.calls, A.storage_calls)

  // Q6: setSession twice on one Response adds no duplicates.
  const twice = new Response(null)
  session.setSession(twice)
  session.setSession(twice)
  assert.deepEqual(twice.headers.getSetCookie(), res.setCookie)
})

test("B_anon_cookie_GET: a valid anonymous cookie on GET changes nothing", async () => {
  const b = scenario("B_anon_cookie_GET")
  store.reset()
  clock.set("12:00")
  assert.equal(b.request.cookie, cookieA)
  const session = await getSession(f.webRequest({ method: b.request.method, cookie: b.request.cookie }))
  assert.equal(session.$handle, b.session.handle)
  assert.equal(session.userId, b.session.userId)
  assert.deepEqual(session.$publicData, b.session.publicData)
  assert.equal(session.$antiCSRFToken(), csrfA)
  const response = new Response(null)
  session.setSession(response)
  // Q6: Blitz appended the literal "Set-Cookie: null"; we send no Set-Cookie at all.
  assert.deepEqual(b.response.set_cookie_header_values, ["null"])
  assert.deepEqual(b.response.set_cookie_split, [])
  assert.equal(response.headers.get("set-cookie"), null)
  assert.deepEqual(f.readResponse(response), { headers: f.vectorHeaders(b.response), setCookie: [] })
  assert.deepEqual(store.calls, b.storage_calls)
})

/**
 * Q4: a CSRF failure makes getSession throw Blitz's CSRFTokenMismatchError
 * with our code and the response view (csrf-error) attached.
 * @param {any} err
 * @param {any} thrown the vector's description of Blitz's error
 */
function assertCsrfError(err, thrown) {
  assert.ok(err instanceof blitz.CSRFTokenMismatchError, String(err))
  assert.equal(err.name, thrown.name ?? thrown)
  assert.equal(err.statusCode, thrown.statusCode ?? 401)
  assert.equal(err.message, "")
  assert.equal(err.code, "CSRF_TOKEN_MISMATCH")
  assert.equal(err.sessionResponse.csrfError, true)
  assert.deepEqual(err.sessionResponse.cookies, [])
}

test("C_anon_POST_missing_csrf: POST without anti-csrf throws CSRFTokenMismatchError (Q4)", async () => {
  const c = scenario("C_anon_POST_missing_csrf")
  store.reset()
  clock.set("12:00")
  assert.equal(c.request.cookie, cookieA)
  assert.equal(c.request["anti-csrf"], null)
  const request = f.webRequest({ method: c.request.method, cookie: c.request.cookie })
  const err = await rejection(getSession(request))
  assertCsrfError(err, c.thrown)
  assert.equal(err.message, c.thrown.message)
  // Q4: Blitz's own enumerable keys plus our code and the response view.
  assert.deepEqual(Object.keys(err), [...c.thrown.own_enumerable_keys, "code", "sessionResponse"])
  // Q4: Blitz wrote csrf-error onto the request's Headers, where no client sees it; we leave the request alone.
  assert.deepEqual(c.request_headers_after, [["csrf-error", "true"]])
  assert.deepEqual([...request.headers].filter(([k]) => k === "csrf-error"), [])
  assert.deepEqual(store.calls, c.storage_calls)

  // Q4: with a Node `res`, the csrf-error header reaches the client.
  const seen = await f.nodeRoundTrip(
    async (req, res) => {
      const e = await rejection(getSession(req, res))
      assertCsrfError(e, c.thrown)
      res.statusCode = e.statusCode
    },
    { method: "POST", headers: { cookie: cookieA } },
  )
  assert.equal(seen.status, 401)
  assert.equal(seen.headers["csrf-error"], "true")
  assert.equal(seen.headers["set-cookie"], undefined)

  // Q4: withBlitzAuth answers 401 with csrf-error instead of throwing; the handler does not run.
  let ran = false
  const { POST } = withBlitzAuth({
    POST: async () => {
      ran = true
      return new Response("handler")
    },
  })
  const reply = await POST(f.webRequest({ method: "POST", cookie: cookieA }), { params: {} })
  assert.equal(ran, false)
  assert.equal(reply.status, 401)
  assert.equal(reply.headers.get("csrf-error"), "true")
  assert.deepEqual(reply.headers.getSetCookie(), [])
  const body = /** @type {any} */ (await reply.json())
  assert.equal(body.error.name, "CSRFTokenMismatchError")
  assert.equal(body.error.statusCode, 401)
  assert.equal(body.error.code, "CSRF_TOKEN_MISMATCH")
})

test("C2_anon_POST_wrong_csrf: a wrong anti-csrf header throws CSRFTokenMismatchError (Q4)", async () => {
  const c2 = scenario("C2_anon_POST_wrong_csrf")
  store.reset()
  clock.set("12:00")
  const request = f.webRequest({ method: c2.request.method, cookie: cookieA, csrf: c2.request["anti-csrf"] })
  assertCsrfError(await rejection(getSession(request)), c2.thrown)
  assert.deepEqual(store.calls, [])
  // The right token passes.
  const ok = await getSession(f.webRequest({ method: "POST", cookie: cookieA, csrf: csrfA }))
  assert.equal(ok.$handle, A.session.handle)
})

for (const method of ["HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"]) {
  const id = `C3_method_${method}`
  test(`${id}: CSRF is checked on every method but GET, HEAD and OPTIONS`, async () => {
    const c3 = scenario(id)
    store.reset()
    clock.set("12:00")
    const request = f.webRequest({ method, cookie: cookieA })
    if (c3.csrf_checked) {
      assertCsrfError(await rejection(getSession(request)), c3.thrown)
      const ok = await getSession(f.webRequest({ method, cookie: cookieA, csrf: csrfA }))
      assert.equal(ok.$handle, A.session.handle)
    } else {
      const session = await getSession(request)
      assert.equal(session.userId, c3.userId)
      assert.equal(session.$handle, A.session.handle)
      assert.deepEqual(f.respond(session), { headers: [], setCookie: [] })
    }
    assert.deepEqual(store.calls, [])
  })
}

test("D_anon_setPublicData_setPrivateData: anonymous public and private data", async () => {
  assert.equal(D.request.method, "POST")
  assert.equal(D.request["anti-csrf"], csrfA)
  store.reset()
  clock.set("12:01")
  const session = await getSession(f.webRequest({ method: "POST", cookie: cookieA, csrf: csrfA }))
  assert.equal(session.$handle, A.session.handle)

  const input = { userId: 123, foo: "bar" }
  await session.$setPublicData(input)
  // Q13: the caller's object keeps its userId (Blitz deleted it); userId itself never changes.
  assert.deepEqual(D.input_object_after_call, { foo: "bar" })
  assert.deepEqual(input, { ...D.input_object_after_call, userId: 123 })
  assert.deepEqual(session.$publicData, D.publicData_after_first_call)

  await session.$setPublicData({ second: 2 })
  // Q12: the second call merges onto the current public data, so foo stays; Blitz merged onto the JWT's original and lost it.
  const expected = { ...D.publicData_after_first_call, second: 2 }
  assert.deepEqual(D.publicData_after_second_call, { userId: null, second: 2 })
  assert.equal(JSON.stringify(session.$publicData), JSON.stringify(expected))
  assert.equal(JSON.stringify(expected), '{"userId":null,"foo":"bar","second":2}')

  await session.$setPrivateData({ cart: [1, 2] })
  assert.deepEqual(store.takeCalls(), D.storage_calls)
  assert.deepEqual(store.row(A.session.handle), { handle: A.session.handle, privateData: '{"cart":[1,2]}' })
  assert.deepEqual(await session.$getPrivateData(), { cart: [1, 2] })
  assert.deepEqual(store.takeCalls(), [["getSession", A.session.handle]])

  const res = f.respond(session)
  // Q5: no anti-csrf echo.
  assert.deepEqual(res.headers, withoutEcho(f.vectorHeaders(D.response)))
  assert.deepEqual(f.vectorHeaders(D.response)[0], ["anti-csrf", csrfA])
  // Same cookies, order, Expires (now + 30 × 365.25 days) and iat; the public data is Q12's.
  assert.deepEqual(
    res.setCookie,
    D.response.set_cookie_split.map((/** @type {string} */ c) => f.rebuild(c, new Map(), { publicData: expected })),
  )
  const jwt = f.decodeJwt(/** @type {string} */ (f.cookieValue(res.setCookie, names.anon)))
  const want = D.decoded_cookies[names.anon]
  assert.equal(jwt.headerText, JSON.stringify(want.header))
  assert.equal(want.payload.iat, f.T0 / 1000 + 60)
  const payload = structuredClone(want.payload)
  payload.blitzjs.publicData = expected
  assert.equal(jwt.payloadText, JSON.stringify(payload))
  assert.deepEqual(f.decodePublicData(/** @type {string} */ (f.cookieValue(res.setCookie, names.publicData))), expected)
})

// ---------------------------------------------------------------------------
// Logging in and authenticated requests (E's session vzTHYK…:ots of user 1).

test("E_create_from_anonymous: $create carries over anonymous public and private data", async () => {
  store.reset([{ handle: A.session.handle, privateData: '{"cart":[1,2]}' }]) // what D left
  clock.set("12:02")
  assert.equal(E.request["anti-csrf"], csrfA)
  const session = await getSession(f.webRequest({ method: E.request.method, cookie: f.cookieHeader(f.cookieJar(D.response.set_cookie_split, jarA)), csrf: csrfA }))
  assert.deepEqual(session.$publicData, D.publicData_after_second_call) // the JWT of D's vector
  assert.deepEqual(store.takeCalls(), [])

  await session.$create({ userId: 1, role: "user" }, { secret: "p" })
  assert.match(session.$handle, f.HANDLE)
  assert.ok(session.$handle.endsWith(":ots"))
  assert.match(session.$antiCSRFToken(), f.RANDOM)
  assert.equal(session.userId, E.session.userId)
  assert.equal(JSON.stringify(session.$publicData), JSON.stringify(E.session.publicData))

  const res = f.respond(session)
  const swap = f.randomSwap(E.response.set_cookie_split, res.setCookie)
  assert.equal(swap.get(handleE), session.$handle)
  assert.equal(swap.get(csrfE), session.$antiCSRFToken())
  assert.deepEqual(res.headers, withoutEcho(f.vectorHeaders(E.response))) // Q5
  assert.deepEqual(
    res.setCookie,
    E.response.set_cookie_split.map((/** @type {string} */ c) => f.rebuild(c, swap)),
  )
  const token = /** @type {string} */ (f.cookieValue(res.setCookie, names.session))
  const parts = f.decodeSessionToken(token)
  const want = E.decoded_cookies[names.session].parts
  assert.equal(parts.handle, session.$handle)
  assert.match(parts.id, f.RANDOM)
  assert.notEqual(parts.id, session.$antiCSRFToken())
  assert.equal(parts.hashedPublicData, want.hashedPublicData)
  assert.equal(parts.version, want.version)
  assert.equal(token.length, E.decoded_cookies[names.session].base64.length)
  assert.equal(parts.text, [parts.handle, parts.id, want.hashedPublicData, want.version].join(";"))
  assert.equal(parts.text.length, E.decoded_cookies[names.session].decoded_text.length)
  assert.equal(f.cookieValue(res.setCookie, names.csrf), f.swapDeep(E.decoded_cookies[names.csrf], swap))
  assert.equal(f.cookieValue(res.setCookie, names.publicData), E.decoded_cookies[names.publicData].base64)
  assert.deepEqual(f.decodePublicData(E.decoded_cookies[names.publicData].base64), E.decoded_cookies[names.publicData].parsed)

  assert.deepEqual(store.calls, f.swapDeep(E.storage_calls, swap))
  assert.deepEqual(store.row(session.$handle), f.swapDeep(E.stored_row, swap))
  assert.equal(store.row(session.$handle).hashedSessionToken, f.sha256(token))
})

test("E (Q12, Q15): $create uses the current anonymous public data and replaces an authenticated session", async () => {
  store.reset([E.stored_row])
  clock.set("12:02")
  // Q12: $setPublicData then $create in one request: the change is carried over (Blitz used the JWT's original).
  const anon = await getSession(f.webRequest({ method: "POST" }))
  await anon.$setPublicData({ theme: "dark" })
  await anon.$create({ userId: 2 })
  assert.equal(JSON.stringify(anon.$publicData), '{"userId":2,"theme":"dark"}')

  // Q15: logging in on an authenticated session deletes its row (Blitz left it valid).
  store.takeCalls()
  const session = await getSession(f.webRequest({ method: "POST", cookie: f.cookieHeader(jarE), csrf: csrfE }))
  await session.$create({ userId: 2 })
  const calls = store.takeCalls()
  assert.deepEqual(
    calls.map((c) => c.slice(0, 2)),
    [["getSession", handleE], ["deleteSession", handleE], ["createSession", calls[2][1]]],
  )
  assert.equal(store.row(handleE), undefined)
  assert.equal(calls[2][1].userId, 2)
})

test("F_authed_POST_fresh: a fresh authenticated session is only read", async () => {
  const fr = scenario("F_authed_POST_fresh")
  store.reset([E.stored_row])
  clock.set("12:03")
  assert.equal(fr.request["anti-csrf"], csrfE)
  const session = await getSession(f.webRequest({ method: fr.request.method, cookie: f.cookieHeader(jarE), csrf: csrfE }))
  assert.equal(session.$handle, fr.session.handle)
  assert.equal(session.userId, fr.session.userId)
  assert.equal(JSON.stringify(session.$publicData), JSON.stringify(fr.session.publicData))
  assert.equal(session.$antiCSRFToken(), csrfE)
  const response = new Response(null)
  session.setSession(response)
  // Q5: no anti-csrf echo; Q6: no "Set-Cookie: null".
  assert.deepEqual(f.vectorHeaders(fr.response), [["anti-csrf", csrfE]])
  assert.deepEqual(fr.response.set_cookie_header_values, ["null"])
  assert.deepEqual(f.readResponse(response), { headers: withoutEcho(f.vectorHeaders(fr.response)), setCookie: [] })
  assert.deepEqual(store.calls, fr.storage_calls)
  assert.deepEqual(store.row(handleE), E.stored_row)
})

test("G1_exactly_75pct_left: no refresh while 3/4 of the window is left", async () => {
  const g1 = scenario("G1_exactly_75pct_left")
  store.reset([{ ...E.stored_row, expiresAt: g1.stored_expiresAt_before }])
  clock.set(g1.now)
  const session = await getSession(f.webRequest({ method: "POST", cookie: f.cookieHeader(jarE), csrf: csrfE }))
  assert.equal(session.$handle, handleE)
  assert.deepEqual(f.respond(session), { headers: withoutEcho(f.vectorHeaders(g1.response)), setCookie: [] }) // Q5, Q6
  assert.deepEqual(g1.response.set_cookie_split, [])
  assert.deepEqual(store.calls, g1.storage_calls)
  assert.equal(store.row(handleE).expiresAt, g1.stored_expiresAt_before)
})

test("G2_just_under_75pct_left: refresh moves the expiry and re-sends session and CSRF cookies (Q1)", async () => {
  const g2 = scenario("G2_just_under_75pct_left")
  store.reset([{ ...E.stored_row, expiresAt: g2.stored_expiresAt_before }])
  clock.set(g2.now)
  const session = await getSession(f.webRequest({ method: "POST", cookie: f.cookieHeader(jarE), csrf: csrfE }))
  assert.equal(session.$handle, handleE)
  assert.deepEqual(store.calls, g2.storage_calls)
  const newExpiry = g2.storage_calls[1][2].expiresAt
  assert.equal(newExpiry, "2025-02-14T12:03:00.000Z")
  assert.equal(store.row(handleE).expiresAt, newExpiry)
  // Q1: Blitz refreshed storage only; we re-send the same session token, CSRF
  // token and public data with the new expiry, so no cookie outlives or
  // predeceases the session.
  assert.deepEqual(g2.response.set_cookie_split, [])
  const expires = new Date(newExpiry).toUTCString()
  assert.equal(expires, "Fri, 14 Feb 2025 12:03:00 GMT")
  const expected = {
    headers: [["public-data-token", "updated"], ...withoutEcho(f.vectorHeaders(g2.response))], // Q5
    setCookie: [
      f.rebuild(sessionCookieE, new Map(), { expires }),
      f.rebuild(csrfCookieE, new Map(), { expires }),
      f.rebuild(publicDataCookieE, new Map(), { expires }),
    ],
  }
  assert.deepEqual(f.respond(session), expected)

  // Q1: the same sliding refresh on GET (Blitz never refreshed on GET).
  store.reset([{ ...E.stored_row, expiresAt: g2.stored_expiresAt_before }])
  const viaGet = await getSession(f.webRequest({ method: "GET", cookie: f.cookieHeader(jarE) }))
  assert.deepEqual(store.calls, g2.storage_calls)
  assert.deepEqual(f.respond(viaGet), expected)
})

test("H_setPublicDataForUser_then_requests: the session token follows the new public data once (Q2)", async () => {
  const h = scenario("H_setPublicDataForUser_then_requests")
  const expiresAt = "2025-02-14T12:03:00.000Z" // after G2's refresh
  store.reset([{ ...E.stored_row, expiresAt }])
  clock.set("12:04")
  const input = { role: "admin", userId: 555, extra: true }
  await setPublicDataForUser(1, input)
  assert.deepEqual(input, { role: "admin", userId: 555, extra: true }) // Q13
  assert.deepEqual(store.takeCalls(), h.setPublicDataForUser_storage_calls)
  const json = h.setPublicDataForUser_storage_calls[1][2].publicData
  const publicData = JSON.parse(json)
  const [get, post1, post2] = h.requests
  assert.deepEqual([get.method, post1.method, post2.method], ["GET", "POST", "POST"])

  // Request 1 (GET). Q2: the stale session token is re-issued at once, also on
  // GET: same handle and id, new public-data hash; storage gets the new token hash.
  const s1 = await getSession(f.webRequest({ method: "GET", cookie: f.cookieHeader(jarE), csrf: csrfE }))
  assert.equal(JSON.stringify(s1.$publicData), JSON.stringify(get.session_publicData))
  assert.equal(json, JSON.stringify(get.session_publicData))
  const newToken = f.sessionToken(handleE, tokenPartsE.id, json)
  assert.deepEqual(store.takeCalls(), [...get.storage_calls, ["updateSession", handleE, { hashedSessionToken: f.sha256(newToken) }]])
  assert.deepEqual(get.response.set_cookie_split, [])
  const expires = new Date(expiresAt).toUTCString() // the session's expiry, unchanged
  const r1 = f.respond(s1)
  assert.deepEqual(r1, {
    headers: [["public-data-token", "updated"]],
    setCookie: [
      f.rebuild(sessionCookieE, new Map(), { publicData, expires }),
      f.rebuild(csrfCookieE, new Map(), { expires }),
      f.rebuild(publicDataCookieE, new Map(), { publicData, expires }),
    ],
  })
  assert.equal(f.cookieValue(r1.setCookie, names.session), newToken)
  assert.deepEqual(store.row(handleE), { ...E.stored_row, expiresAt, publicData: json, hashedSessionToken: f.sha256(newToken) })
  // The browser now holds the public data Blitz only sent on the next POST.
  const jar = f.cookieJar(r1.setCookie, jarE)
  assert.equal(decodeURIComponent(jar[names.publicData]), post1.decoded_cookies[names.publicData].base64)

  // Requests 2 and 3 (POST) with the re-issued token. Blitz re-sent the
  // publicData cookie and rewrote storage on each (its token kept the old
  // hash forever); with Q2 nothing is left to do.
  for (const [i, r] of [post1, post2].entries()) {
    clock.set(i === 0 ? "12:05" : "12:06")
    const s = await getSession(f.webRequest({ method: "POST", cookie: f.cookieHeader(jar), csrf: csrfE }))
    assert.equal(JSON.stringify(s.$publicData), JSON.stringify(r.session_publicData))
    assert.deepEqual(r.storage_calls.map((/** @type {any[]} */ c) => c[0]), ["getSession", "updateSession"])
    assert.deepEqual(store.takeCalls(), r.storage_calls.slice(0, 1))
    assert.deepEqual(r.response.set_cookie_split.map(f.splitSetCookie).map((/** @type {any} */ c) => c.name), [names.publicData])
    assert.deepEqual(f.respond(s), { headers: [], setCookie: [] })
  }
})

test("I_authed_wrong_csrf: a wrong anti-csrf header on an authenticated session (Q4)", async () => {
  const i = scenario("I_authed_wrong_csrf")
  store.reset([E.stored_row])
  clock.set("12:06")
  const err = await rejection(getSession(f.webRequest({ method: "POST", cookie: f.cookieHeader(jarE), csrf: "wrong" })))
  assertCsrfError(err, i.thrown)
  assert.deepEqual(store.calls, i.storage_calls)
  assert.deepEqual(store.row(handleE), E.stored_row)
})

test("J_authed_setPublicData: sync keys to every session, then merge and refresh this one", async () => {
  const j = scenario("J_authed_setPublicData")
  const before = sessionOfUser1({ userId: 1, second: 2, role: "admin", extra: true }, "2025-02-14T12:03:00.000Z") // after H
  store.reset([before.row])
  clock.set("12:07")
  const session = await getSession(f.webRequest({ method: "POST", cookie: before.cookie, csrf: csrfE }))
  // The vector logs only the $setPublicData call; our request itself only read the row.
  assert.deepEqual(store.takeCalls(), [["getSession", handleE]])

  await session.$setPublicData({ role: "editor", nick: "n" })
  assert.equal(JSON.stringify(session.$publicData), JSON.stringify(j.session_publicData))
  const json = JSON.stringify(j.session_publicData)
  const newToken = f.sessionToken(handleE, tokenPartsE.id, json)
  // Q2: one more write, the hash of the re-issued session token.
  assert.deepEqual(store.calls, [...j.storage_calls, ["updateSession", handleE, { hashedSessionToken: f.sha256(newToken) }]])
  assert.deepEqual(store.row(handleE), {
    ...before.row,
    expiresAt: "2025-02-14T12:07:00.000Z",
    publicData: json,
    hashedSessionToken: f.sha256(newToken),
  })

  const res = f.respond(session)
  assert.deepEqual(res.headers, withoutEcho(f.vectorHeaders(j.response))) // Q5
  // Q2: the session token (new hash) and the CSRF cookie come with the publicData cookie, all with the new expiry.
  const [publicDataCookie] = j.response.set_cookie_split
  assert.equal(j.response.set_cookie_split.length, 1)
  const expires = f.expiresOf(publicDataCookie)
  assert.equal(expires, "Fri, 14 Feb 2025 12:07:00 GMT")
  assert.deepEqual(res.setCookie, [
    f.rebuild(sessionCookieE, new Map(), { publicData: j.session_publicData, expires }),
    f.rebuild(csrfCookieE, new Map(), { expires }),
    publicDataCookie,
  ])
  assert.equal(f.cookieValue(res.setCookie, names.session), newToken)
  assert.equal(f.cookieValue(res.setCookie, names.publicData), j.decoded_cookies[names.publicData].base64)
})

test("K_authorize: $authorize / $isAuthorized with simpleRolesIsAuthorized, and the proxy", async () => {
  const k = scenario("K_authorize")
  const state = sessionOfUser1(k.publicData, "2025-02-14T12:07:00.000Z") // after J
  store.reset([state.row])
  clock.set("12:07")
  const session = await getSession(f.webRequest({ method: "POST", cookie: state.cookie, csrf: csrfE }))
  assert.deepEqual(session.$publicData, k.publicData)
  for (const r of k.results) {
    const label = JSON.stringify(r.args)
    assert.equal(session.$isAuthorized(...r.args), r.isAuthorized, label)
    assert.equal(session.$thisIsAuthorized(...r.args), r.isAuthorized, label)
    if (r.authorize === "ok") {
      assert.doesNotThrow(() => session.$authorize(...r.args), label)
    } else {
      assert.equal(r.authorize, "AuthorizationError")
      assert.throws(
        () => session.$authorize(...r.args),
        (/** @type {any} */ e) => e instanceof blitz.AuthorizationError && e.statusCode === 403,
        label,
      )
    }
  }
  assert.equal(session.role, k.proxy.role)
  assert.equal(session.nick, k.proxy.nick)
  assert.equal(session.missing === undefined, k.proxy.missing)
  assert.equal(session.then === undefined, k.proxy.then)
  assert.deepEqual(store.calls, [["getSession", handleE]])
})

test("L_revoke: $revoke deletes the row and starts a new anonymous session", async () => {
  const l = scenario("L_revoke")
  const state = sessionOfUser1(byId("J_authed_setPublicData").session_publicData, "2025-02-14T12:07:00.000Z") // after J
  store.reset([state.row])
  clock.set("12:08")
  const session = await getSession(f.webRequest({ method: "POST", cookie: state.cookie, csrf: csrfE }))
  assert.deepEqual(store.takeCalls(), [["getSession", handleE]])
  await session.$revoke()
  assert.deepEqual(store.calls, l.storage_calls)
  assert.equal(store.row(handleE), undefined)
  assert.match(session.$handle, f.HANDLE)
  assert.ok(session.$handle.endsWith(":ajwt"))
  assert.equal(session.userId, l.session_after.userId)
  assert.deepEqual(session.$publicData, l.session_after.publicData)

  const res = f.respond(session)
  assert.deepEqual(res.headers, withoutEcho(f.vectorHeaders(l.response))) // Q5
  const swap = f.randomSwap(l.response.set_cookie_split, res.setCookie)
  assert.equal(swap.get(l.session_after.handle), session.$handle)
  // Same cookies and attributes. Blitz's list starts with the publicData
  // cookie because its request had already re-sent the stale public data
  // before $revoke (the never-ending refresh of Q2); our request wrote
  // nothing before $revoke, so the new session's cookies come in creation order.
  const [pd, anon, csrf, cleared] = l.response.set_cookie_split
  assert.deepEqual(f.cookieNames([pd, anon, csrf, cleared]), [names.publicData, names.anon, names.csrf, names.session])
  assert.deepEqual(
    res.setCookie,
    [anon, csrf, pd, cleared].map((c) => f.rebuild(c, swap)),
  )
  const jwt = f.decodeJwt(/** @type {string} */ (f.cookieValue(res.setCookie, names.anon)))
  assert.equal(jwt.payloadText, JSON.stringify(f.swapDeep(l.decoded_cookies[names.anon].payload, swap)))
  assert.equal(f.cookieValue(res.setCookie, names.csrf), session.$antiCSRFToken())
})

test("M_revokeAll: every live session of the user is deleted (Q3)", async () => {
  const m = scenario("M_revokeAll")
  const other = { ...E.stored_row, handle: "0therSessionOfUser1_____________:ots", hashedSessionToken: "0".repeat(64) }
  store.reset([E.stored_row, other])
  clock.set("12:08")
  const session = await getSession(f.webRequest({ method: "POST", cookie: f.cookieHeader(jarE), csrf: csrfE }))
  store.takeCalls()
  await session.$revokeAll()
  const swap = new Map([[m.storage_calls[0][1], handleE]])
  // Q3: Blitz deleted the current session, then looked up the sessions of
  // userId null (it had already become anonymous) and left the others alive.
  // We look up the user's live sessions first, delete each, then revoke this one.
  assert.deepEqual(m.storage_calls[1], ["getSessions", null])
  assert.equal(m.other_session_still_stored, true)
  assert.deepEqual(store.calls, [
    ["getSessions", 1],
    ["deleteSession", handleE],
    ["deleteSession", other.handle],
    f.swapDeep(m.storage_calls[0], swap),
  ])
  assert.equal(store.rows.has(other.handle), false)
  assert.equal(store.rows.size, 0)
  assert.ok(session.$handle.endsWith(":ajwt"))
  assert.equal(session.userId, null)
  assert.deepEqual(f.cookieNames(f.respond(session).setCookie), [names.anon, names.csrf, names.publicData, names.session])
})

// ---------------------------------------------------------------------------
// Unusable cookies.

/**
 * What the vectors record about a request's outcome.
 * @param {any} session
 * @param {{ headers: string[][], setCookie: string[] }} res
 */
function outcome(session, res) {
  return {
    new_anonymous_session_created: res.headers.some(([k, v]) => k === "session-created" && v === "true"),
    handle_type: session.$handle.split(":")[1],
    userId: session.userId,
    set_cookie_names: f.cookieNames(res.setCookie),
  }
}

/** Stored rows for the session token of N5–N7 (6Gzvq…:ots of user 7). @param {Record<string, any>} change */
function rowN(change) {
  const cookie = byId("N5_session_expired_in_storage").cookie
  const token = decodeURIComponent(cookie.slice(cookie.indexOf("=") + 1))
  const parts = f.decodeSessionToken(token)
  const publicData = '{"userId":7}'
  assert.equal(f.sha256(publicData), parts.hashedPublicData)
  return {
    handle: parts.handle,
    userId: 7,
    expiresAt: "2025-02-14T12:00:00.000Z",
    hashedSessionToken: f.sha256(token),
    antiCSRFToken: "N7csrfN7csrfN7csrfN7csrfN7csrf__",
    publicData,
    privateData: "{}",
    ...change,
  }
}

/** The stored rows each N scenario needs. @type {Record<string, any[]>} */
const nRows = {
  N5_session_expired_in_storage: [rowN({ expiresAt: "2025-01-15T12:00:00.000Z" })],
  N6_session_hash_mismatch: [rowN({ hashedSessionToken: f.sha256("some other token") })],
  N7_stored_row_without_antiCSRFToken: [rowN({ antiCSRFToken: null })],
}

/** Blitz fell back to "no session": a new anonymous session (storage calls as Blitz's). */
const newAnonymous = [
  "N3_session_token_version_v1",
  "N4_session_token_unknown_handle",
  "N5_session_expired_in_storage",
  "N6_session_hash_mismatch",
  "N8_anon_jwt_wrong_secret",
  "N9_anon_jwt_wrong_subject",
  "N10_anon_jwt_expired_exp_claim",
  "N15_anon_jwt_alg_none",
  "N13_refresh_cookie_only",
]

for (const id of newAnonymous) {
  test(`${id}: falls back to a new anonymous session`, async () => {
    const n = scenario(id)
    store.reset(nRows[id] ?? [])
    clock.set("12:08")
    const session = await getSession(f.webRequest({ method: "GET", cookie: n.cookie }))
    const res = f.respond(session)
    assert.deepEqual(outcome(session, res), n.result)
    assert.deepEqual(res.headers, f.vectorHeaders(A.response))
    assert.deepEqual(
      res.setCookie.map((c) => f.splitSetCookie(c).attrs),
      A.response.set_cookie_split.map((/** @type {string} */ c) => f.splitSetCookie(c).attrs.replace("12:00:00", "12:08:00")),
    )
    assert.deepEqual(store.calls, n.storage_calls)
    if (nRows[id]) {
      // Control: with its row intact, the same cookie is user 7's session.
      store.reset([rowN({})])
      const intact = await getSession(f.webRequest({ method: "GET", cookie: n.cookie }))
      assert.equal(intact.userId, 7)
      assert.deepEqual(f.respond(intact), { headers: [], setCookie: [] })
    }
    if (id === "N13_refresh_cookie_only") {
      // Q8: the refresh cookie is ignored; next to a valid anonymous cookie
      // that session is kept (Blitz created a new anonymous session, §5.1 B).
      const anon = byId("N11_anon_jwt_valid_handcrafted").cookie
      const kept = await getSession(f.webRequest({ method: "GET", cookie: `${n.cookie}; ${anon}` }))
      assert.equal(kept.$handle, "x:ajwt")
      assert.deepEqual(f.respond(kept), { headers: [], setCookie: [] })
    }
  })
}

for (const id of ["N11_anon_jwt_valid_handcrafted", "N14_duplicate_cookie_name_first_wins"]) {
  test(`${id}: the anonymous JWT is accepted as is`, async () => {
    const n = scenario(id)
    store.reset()
    clock.set("12:08")
    const session = await getSession(f.webRequest({ method: "GET", cookie: n.cookie }))
    assert.deepEqual(outcome(session, f.respond(session)), n.result)
    assert.equal(session.$handle, "x:ajwt")
    assert.equal(session.$antiCSRFToken(), "t")
    assert.deepEqual(store.calls, n.storage_calls)
  })
}

for (const id of ["N1_session_token_garbage", "N2_session_token_3_parts"]) {
  test(`${id}: an unparseable session cookie gives a new anonymous session (Q7)`, async () => {
    const n = scenario(id)
    store.reset()
    clock.set("12:08")
    // Q7: Blitz threw AuthenticationError("Failed to parse session token") on every request.
    assert.deepEqual(n.thrown, { name: "AuthenticationError", message: "Failed to parse session token", statusCode: 401 })
    const session = await getSession(f.webRequest({ method: "GET", cookie: n.cookie }))
    const res = f.respond(session)
    assert.deepEqual(outcome(session, res), byId("N3_session_token_version_v1").result)
    // The broken session cookie is cleared (the last of the four).
    assert.equal(res.setCookie[3], A.response.set_cookie_split[3])
    assert.deepEqual(store.calls, n.storage_calls)
  })
}

test("N12_both_session_and_anon_cookie_session_wins_even_if_invalid: the valid anonymous session is kept (Q7/Q9)", async () => {
  const n = scenario("N12_both_session_and_anon_cookie_session_wins_even_if_invalid")
  store.reset()
  clock.set("12:08")
  // Q7/Q9: Blitz threw (and before that fix would have dropped the anonymous session);
  // we keep the anonymous session and clear the broken session cookie.
  assert.equal(n.thrown.name, "AuthenticationError")
  const session = await getSession(f.webRequest({ method: "GET", cookie: n.cookie }))
  const res = f.respond(session)
  assert.deepEqual(outcome(session, res), {
    new_anonymous_session_created: false,
    handle_type: "ajwt",
    userId: null,
    set_cookie_names: [names.session],
  })
  assert.equal(session.$handle, "x:ajwt")
  assert.deepEqual(res, { headers: [], setCookie: [A.response.set_cookie_split[3]] })
  assert.deepEqual(store.calls, n.storage_calls)
})

test("N7_stored_row_without_antiCSRFToken: still an error, now with a code", async () => {
  const n = scenario("N7_stored_row_without_antiCSRFToken")
  store.reset(nRows[n.id])
  clock.set("12:08")
  const err = await rejection(getSession(f.webRequest({ method: "GET", cookie: n.cookie })))
  assert.equal(err.name, n.thrown.name)
  assert.equal(err.message, n.thrown.message)
  assert.equal(err.code, "SESSION_STORE_FAILED")
  assert.deepEqual(store.calls, n.storage_calls)
  // Control: with its anti-CSRF token stored, the same cookie is user 7's session.
  store.reset([rowN({})])
  assert.equal((await getSession(f.webRequest({ method: "GET", cookie: n.cookie }))).userId, 7)
})

// ---------------------------------------------------------------------------
// $create arguments, the Node path, same-request creation, headers, wrappers.

test("O_create_userId_validation: only null/undefined user ids are rejected (Q14)", async () => {
  const o = scenario("O_create_userId_validation")
  clock.set("12:08")
  for (const r of o.results) {
    store.reset()
    const session = await getSession(f.webRequest({ method: "POST" }))
    const anon = session.$handle
    const create = session.$create(r.publicData)
    const rejectedByUs = r.publicData.userId === undefined || r.publicData.userId === null
    if (rejectedByUs) {
      assert.equal(r.thrown, "Error")
      await assert.rejects(create, (/** @type {any} */ e) => e.constructor === Error && e.message === r.message, JSON.stringify(r.publicData))
      assert.equal(session.$handle, anon)
      assert.deepEqual(store.calls, [])
      continue
    }
    await create
    // Q14: 0, "" and false are user ids like any other (Blitz rejected them).
    if (r.result !== "ok") assert.equal(r.message, "You must provide a non-empty userId as publicData.userId")
    else assert.equal(r.userId, r.publicData.userId)
    assert.equal(session.userId, r.publicData.userId)
    assert.ok(session.$handle.endsWith(":ots"))
    assert.deepEqual(store.calls.map((c) => c[0]), ["getSession", "createSession"])
    assert.equal(store.calls[1][1].userId, r.publicData.userId)
    assert.equal(store.calls[1][1].publicData, JSON.stringify({ userId: r.publicData.userId }))
  }
})

test("P_node_path: getSession(req, res) writes to the Node response at once and merges Set-Cookie", async () => {
  const p = scenario("P_node_path")
  store.reset()
  clock.set("12:09")
  /** @type {any} */
  const seen = {}
  const client = await f.nodeRoundTrip(async (req, res) => {
    // Cookies already on the response: ours replace same-named ones in place.
    res.setHeader("Set-Cookie", ["custom=1; Path=/", `${names.csrf}=stale; Path=/`])
    const session = await getSession(req, res)
    seen.afterGet = [.../** @type {string[]} */ (res.getHeader("set-cookie"))]
    seen.anonHandle = session.$handle
    seen.same = (await getSession(req, res)) === session
    seen.keys = Object.keys(/** @type {any} */ (res).blitzCtx)
    await session.$create({ userId: 3 })
    seen.afterCreate = [.../** @type {string[]} */ (res.getHeader("set-cookie"))]
    seen.other = { "public-data-token": res.getHeader("public-data-token"), "session-created": res.getHeader("session-created") }
    seen.csrf = session.$antiCSRFToken()
  })

  const swap = f.randomSwap(p.set_cookie_after_getSession, seen.afterGet)
  assert.equal(swap.get(p.storage_calls[0][1]), seen.anonHandle)
  assert.deepEqual(seen.afterGet, p.set_cookie_after_getSession.map((/** @type {string} */ c) => f.rebuild(c, swap)))
  assert.equal(seen.same, p.returns_same_session_on_second_call)
  assert.deepEqual(seen.keys, p.blitzCtx_keys)
  f.randomSwap(p.set_cookie_after_create, seen.afterCreate, swap)
  assert.equal(swap.get(p.storage_calls[1][1].antiCSRFToken), seen.csrf)
  assert.deepEqual(seen.afterCreate, p.set_cookie_after_create.map((/** @type {string} */ c) => f.rebuild(c, swap)))
  assert.deepEqual(seen.other, p.other_headers)
  assert.deepEqual(store.calls, f.swapDeep(p.storage_calls, swap))
  // What the client received.
  assert.deepEqual(client.headers["set-cookie"], seen.afterCreate)
  assert.equal(client.headers["public-data-token"], "updated")
  assert.equal(client.headers["session-created"], "true")

  // Q23: other keys on res.blitzCtx survive (Blitz replaced it with {session}).
  const kept = await f.nodeRoundTrip(async (req, res) => {
    Object.assign(res, { blitzCtx: { prisma: "db" } })
    await getSession(req, res)
    seen.keptKeys = Object.keys(/** @type {any} */ (res).blitzCtx)
  })
  assert.equal(kept.status, 200)
  assert.deepEqual(seen.keptKeys, ["prisma", ...p.blitzCtx_keys])
})

test("Q_create_in_same_request_as_anonymous_creation: cookies replaced in place", async () => {
  const q = scenario("Q_create_in_same_request_as_anonymous_creation")
  store.reset()
  clock.set("12:10")
  const session = await getSession(f.webRequest({ method: "POST" }))
  const anonHandle = session.$handle
  await session.$create({ userId: 4 })
  const res = f.respond(session)
  const swap = f.randomSwap(q.response.set_cookie_split, res.setCookie)
  swap.set(q.storage_calls[0][1], anonHandle)
  assert.equal(swap.get(q.storage_calls[1][1].handle), session.$handle)
  assert.deepEqual(res.headers, f.vectorHeaders(q.response))
  assert.deepEqual(res.setCookie, q.response.set_cookie_split.map((/** @type {string} */ c) => f.rebuild(c, swap)))
  assert.deepEqual(store.calls, f.swapDeep(q.storage_calls, swap))
})

test("R_request_header_echo: request headers are not reflected (Q5)", async () => {
  const r = scenario("R_request_header_echo")
  store.reset()
  clock.set("12:10")
  const session = await getSession(f.webRequest({ method: "GET", headers: r.request_headers }))
  const res = f.respond(session)
  // Q5: Blitz copied the request's anti-csrf and csrf-error values into the response.
  assert.deepEqual(
    f.vectorHeaders(r.response).filter((/** @type {string[]} */ [k]) => k === "anti-csrf" || k === "csrf-error"),
    [["anti-csrf", r.request_headers["anti-csrf"]], ["csrf-error", r.request_headers["csrf-error"]]],
  )
  assert.deepEqual(
    res.headers,
    f.vectorHeaders(r.response).filter((/** @type {string[]} */ [k]) => k !== "anti-csrf" && k !== "csrf-error"),
  )
  const swap = f.randomSwap(r.response.set_cookie_split, res.setCookie)
  assert.deepEqual(res.setCookie, r.response.set_cookie_split.map((/** @type {string} */ c) => f.rebuild(c, swap)))
  assert.deepEqual(store.calls, [])
})

test("S_redirect_response: redirects get their cookies through withBlitzAuth (Q27)", async () => {
  assert.equal(scenario("S_redirect_response").thrown.message, "immutable")
  store.reset()
  clock.set("12:10")
  // Q27: withBlitzAuth copies an immutable Response and sets the cookies (Blitz threw).
  const handler = withBlitzAuth(async () => Response.redirect("http://localhost:3000/next", 302))
  const reply = await handler(f.webRequest({ method: "GET" }), { params: {} })
  assert.equal(reply.status, 302)
  assert.equal(reply.headers.get("location"), "http://localhost:3000/next")
  assert.equal(reply.headers.get("session-created"), "true")
  // The same four cookies as any new anonymous session at 12:10 (R's vector).
  const r = byId("R_request_header_echo")
  const setCookie = reply.headers.getSetCookie()
  const swap = f.randomSwap(r.response.set_cookie_split, setCookie)
  assert.deepEqual(setCookie, r.response.set_cookie_split.map((/** @type {string} */ c) => f.rebuild(c, swap)))
})

test(
  "S_redirect_response: setSession on an immutable Response throws a TypeError that says what to do",
  async () => {
    const s = scenario("S_redirect_response")
    store.reset()
    clock.set("12:10")
    const session = await getSession(f.webRequest({ method: "GET" }))
    const err = (() => {
      try {
        session.setSession(Response.redirect("http://localhost:3000/next", 302))
      } catch (e) {
        return /** @type {any} */ (e)
      }
      return assert.fail("expected a TypeError")
    })()
    // Deliberate: Blitz's bare "immutable" becomes an actionable message with a code.
    assert.equal(err.code, "IMMUTABLE_RESPONSE")
    assert.equal(err.name, s.thrown.name)
    assert.match(err.message, /immutable/)
    assert.match(err.message, /withBlitzAuth/)
    assert.ok(err instanceof TypeError)
  },
)

test("T_withBlitzAuth: route handlers get ctx.session and their Response the cookies", async () => {
  const t = scenario("T_withBlitzAuth")
  store.reset()
  clock.set("12:10")
  /** @type {string[]} */
  const anonHandles = []
  const handlers = withBlitzAuth({
    POST: async (_request, _params, { session }) => {
      anonHandles.push(session.$handle)
      await session.$create({ userId: 9 })
      return new Response(null, { status: 201 })
    },
    GET: async (_request, params, { session }) => Response.json({ userId: session.userId, paramsSeen: params }),
  })
  assert.deepEqual(Object.keys(handlers), t.keys)

  const post = await handlers.POST(f.webRequest({ method: "POST" }), { params: {} })
  assert.equal(post.status, t.post.status)
  const res = f.readResponse(post)
  const swap = f.randomSwap(t.post.set_cookie_split, res.setCookie)
  swap.set(t.storage_calls[0][1], anonHandles[0])
  assert.deepEqual(res.headers, f.vectorHeaders(t.post))
  assert.deepEqual(res.setCookie, t.post.set_cookie_split.map((/** @type {string} */ c) => f.rebuild(c, swap)))
  assert.deepEqual(store.calls, f.swapDeep(t.storage_calls, swap))

  const get = await handlers.GET(f.webRequest({ method: "GET" }), { params: {} })
  assert.equal(get.status, t.get.status)
  assert.equal(await get.text(), t.get.body)
  assert.deepEqual(f.cookieNames(get.headers.getSetCookie()), t.get.set_cookie_names)

  // Q6: a handler that already called setSession (as rpcAppHandler does) gets no duplicate cookies.
  const { POST: twice } = withBlitzAuth({
    POST: async (_request, _params, { session }) => {
      const response = new Response(null)
      session.setSession(response)
      return response
    },
  })
  const once = (await twice(f.webRequest({ method: "POST" }), { params: {} })).headers.getSetCookie()
  assert.deepEqual(f.cookieNames(once), t.get.set_cookie_names)

  // Q27: a single handler is accepted too (Blitz returned {} for a function).
  const single = withBlitzAuth(async (_request, params, { session }) => Response.json({ userId: session.userId, paramsSeen: params }))
  assert.equal(typeof single, "function")
  const one = await single(f.webRequest({ method: "GET" }), { params: {} })
  assert.equal(await one.text(), t.get.body)
  assert.deepEqual(f.cookieNames(one.headers.getSetCookie()), t.get.set_cookie_names)
})

test("T2_withBlitzAuth_handler_throws: handler errors propagate", async () => {
  const t2 = scenario("T2_withBlitzAuth_handler_throws")
  store.reset()
  clock.set("12:10")
  const { GET } = withBlitzAuth({
    GET: async () => {
      throw new Error("boom")
    },
  })
  await assert.rejects(GET(f.webRequest({ method: "GET" }), { params: {} }), (/** @type {any} */ e) => e.message === t2.rejected_with)
})

test("every scenario of session-flows.json is replayed", () => {
  const ids = vectors.scenarios.map((/** @type {any} */ s) => s.id)
  assert.equal(ids.length, 42)
  assert.deepEqual([...covered].sort(), [...ids].sort())
})
