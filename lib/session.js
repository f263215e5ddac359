"use strict"
// SessionContext, getSession and setSession: reads requests and writes
// responses (Node IncomingMessage/ServerResponse and web Request/Response)
// around the native engine. The session rules live in Rust (src/session/).

const { binding } = require("./native")
const { resolveOptions, resolveSecret } = require("./config")
const { toNativeStore } = require("./storage")
const { simpleRolesIsAuthorized } = require("./roles")
const { AuthenticationError, AuthorizationError, CSRFTokenMismatchError } = require("./errors")
const { HEADER_CSRF_ERROR, HEADER_PUBLIC_DATA_TOKEN, HEADER_SESSION_CREATED } = require("./constants")

/**
 * A request session as the engine encodes it (one string per crossing; see
 * `RequestSession::encode` in src/session/engine.rs), split into fields.
 * @typedef {object} SessionView
 * @property {string} state the encoded session, handed back to operations
 * @property {string} handle
 * @property {string} publicData JSON text
 * @property {string} antiCsrfToken
 * @property {boolean} anonymous
 * @property {string[]} cookies Set-Cookie values, one per cookie
 * @property {boolean} publicDataToken
 * @property {boolean} sessionCreated
 * @property {boolean} csrfError
 */

const SEP = "\u0001"

/**
 * Split an encoded session, or throw the error it carries (with `sessionResponse`:
 * what the client must still be told, e.g. the csrf-error header).
 * @param {string} encoded
 * @returns {SessionView}
 */
function decode(encoded) {
  const f = encoded.split(SEP)
  const flags = Number(f[1])
  if (f[0] === "ok") {
    return {
      state: encoded,
      handle: f[2],
      publicData: f[3],
      antiCsrfToken: f[4],
      anonymous: (flags & 8) !== 0,
      cookies: f.slice(8),
      publicDataToken: (flags & 1) !== 0,
      sessionCreated: (flags & 2) !== 0,
      csrfError: (flags & 4) !== 0,
    }
  }
  /** @type {SessionView} */
  const sessionResponse = {
    state: "",
    handle: "",
    publicData: "{}",
    antiCsrfToken: "",
    anonymous: true,
    cookies: f.slice(4),
    publicDataToken: (flags & 1) !== 0,
    sessionCreated: (flags & 2) !== 0,
    csrfError: (flags & 4) !== 0,
  }
  throw Object.assign(toAppError(Object.assign(new Error(f[3]), { code: f[2] })), { sessionResponse })
}

// Operations that wait for a store return a ticket number instead of a
// result; the engine calls back when results are ready and `drain()` hands
// them over in one batch (src/napi/completion.rs). Ticket numbers are
// process-wide, so one map serves every engine.
/** @type {Map<number, (result: string) => void>} */
const waiting = new Map()

/** @param {import("../binding").SessionEngine} native */
function deliver(native) {
  const done = native.drain()
  for (let i = 0; i < done.length; i += 2) {
    const ticket = /** @type {number} */ (done[i])
    const settleTicket = waiting.get(ticket)
    if (settleTicket === undefined) continue
    waiting.delete(ticket)
    settleTicket(/** @type {string} */ (done[i + 1]))
  }
}

/**
 * The result now, or the promise of the ticket's result.
 * @param {string | number} r
 * @returns {string | Promise<string>}
 */
function later(r) {
  if (typeof r === "string") return r
  return new Promise((resolve) => waiting.set(r, resolve))
}

/** @param {string | number} r */
async function settle(r) {
  return decode(typeof r === "string" ? r : await later(r))
}

// ---------------------------------------------------------------------------
// Process-wide configuration (Blitz keeps one too; AuthServerPlugin sets it).

/** @type {{ options: ReturnType<typeof resolveOptions>, store: import("../binding").NativeStore, engine: import("../binding").SessionEngine | null } | null} */
let current = null

/**
 * Configure sessions (AuthServerPlugin calls this). Validates synchronously.
 * @param {Record<string, any>} options
 */
function configureSessions(options) {
  const resolved = resolveOptions(options)
  Object.assign(globalThis, { __BLITZ_SESSION_COOKIE_PREFIX: resolved.cookiePrefix })
  // A bad storage object fails here; the secret is checked per request (as
  // Blitz does), so a production build without secrets still builds.
  current = { options: resolved, store: toNativeStore(resolved.storage), engine: null }
  return resolved
}

function config() {
  if (current === null) configureSessions({ isAuthorized: simpleRolesIsAuthorized })
  return /** @type {NonNullable<typeof current>} */ (current)
}

/** The engine, created on first use; throws the secret error until the environment is fixed. */
function engine() {
  const c = config()
  if (c.engine) return c.engine
  const s = resolveSecret()
  if ("error" in s) throw s.error
  /** @type {import("../binding").SessionEngine} */
  const native = new binding.SessionEngine({ ...c.options.engine, secret: s.secret, previousSecrets: s.previous }, c.store, () =>
    deliver(native),
  )
  c.engine = native
  return native
}

// ---------------------------------------------------------------------------
// Errors from native results.

/**
 * Turn a native Error value into what the app should see: Blitz's classes for
 * the cases Blitz has classes for, an Error with a stable code otherwise.
 * @param {any} e
 */
function toAppError(e) {
  if (!(e instanceof Error)) return e
  const code = /** @type {any} */ (e).code
  if (code === "CSRF_TOKEN_MISMATCH") {
    return Object.assign(new CSRFTokenMismatchError(), { code })
  }
  if (code === "SESSION_STORE_UNAVAILABLE") Object.assign(e, { statusCode: 503 })
  return e
}

/** @template T @param {T | Error} v @returns {T} */
function unwrapValue(v) {
  if (v instanceof Error) throw toAppError(v)
  return v
}

// ---------------------------------------------------------------------------
// Plain data in, JSON out.

/**
 * `{...base, ...data}` as JSON: keys whose value JSON cannot hold (undefined,
 * functions, symbols) are sent as removals, so they drop out of the result
 * the way the spread-then-stringify in Blitz drops them. The caller's object
 * is not modified (Q13).
 * @param {unknown} data
 * @param {string} what
 * @returns {[string, string[]]}
 */
function toMerge(data, what) {
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw Object.assign(new TypeError(`${what} must be a plain object`), { code: "INVALID_ARGUMENT" })
  }
  /** @type {Record<string, unknown>} */
  const set = {}
  /** @type {string[]} */
  const remove = []
  for (const key of Object.keys(data)) {
    const v = /** @type {any} */ (data)[key]
    if (v === undefined || typeof v === "function" || typeof v === "symbol") remove.push(key)
    else set[key] = v
  }
  let json
  try {
    json = JSON.stringify(set)
  } catch (e) {
    throw Object.assign(new TypeError(`${what} cannot be stored as JSON: ${/** @type {Error} */ (e).message}`), {
      code: "INVALID_ARGUMENT",
    })
  }
  return [json, remove]
}

// ---------------------------------------------------------------------------
// Writing responses.

const kWritten = Symbol("blitz-auth-native.written")

/** Name of a Set-Cookie value: the text before the first "=" of its first ";" part. */
function cookieName(/** @type {string} */ c) {
  const first = c.split(";", 1)[0]
  const eq = first.indexOf("=")
  return (eq === -1 ? "" : first.slice(0, eq)).trim()
}

/**
 * Existing cookies first, ours replace same-named ones in place (spec §7.2), one entry per name.
 * @param {string[]} existing
 * @param {string[]} ours
 */
function mergeCookies(existing, ours) {
  /** @type {Map<string, string>} */
  const byName = new Map()
  for (const c of existing.concat(ours)) {
    const name = cookieName(c)
    if (name) byName.set(name, c)
  }
  return [...byName.values()]
}

/** @param {any} r */
function isNodeResponse(r) {
  return r !== null && typeof r === "object" && typeof r.setHeader === "function" && typeof r.getHeader === "function"
}

/** @param {any} r */
function isWebResponse(r) {
  return r !== null && typeof r === "object" && r.headers !== null && typeof r.headers?.append === "function"
}

/**
 * Write the session's cookies and headers to a response.
 * @param {SessionView} view
 * @param {any} response
 */
function writeResponse(view, response) {
  if (isNodeResponse(response)) {
    const prev = response.getHeader("set-cookie")
    const existing = prev === undefined ? [] : Array.isArray(prev) ? prev.map(String) : [String(prev)]
    if (view.cookies.length > 0) response.setHeader("Set-Cookie", mergeCookies(existing, view.cookies))
    if (view.publicDataToken) response.setHeader(HEADER_PUBLIC_DATA_TOKEN, "updated")
    if (view.sessionCreated) response.setHeader(HEADER_SESSION_CREATED, "true")
    if (view.csrfError) response.setHeader(HEADER_CSRF_ERROR, "true")
    return
  }
  if (isWebResponse(response)) {
    const h = response.headers
    try {
      if (view.cookies.length > 0) {
        // One Set-Cookie line per cookie, never "null", no duplicates even when
        // setSession runs twice for one response (Q6).
        const existing = typeof h.getSetCookie === "function" ? h.getSetCookie() : []
        if (existing.length === 0) {
          for (const c of view.cookies) h.append("set-cookie", c)
        } else {
          const merged = mergeCookies(existing, view.cookies)
          const same = merged.length === existing.length && merged.every((c, i) => c === existing[i])
          if (!same) {
            h.delete("set-cookie")
            for (const c of merged) h.append("set-cookie", c)
          }
        }
      }
      if (view.publicDataToken) h.set(HEADER_PUBLIC_DATA_TOKEN, "updated")
      if (view.sessionCreated) h.set(HEADER_SESSION_CREATED, "true")
      if (view.csrfError) h.set(HEADER_CSRF_ERROR, "true")
    } catch (e) {
      throw Object.assign(
        new TypeError(
          `setSession: the response's headers cannot be changed (${/** @type {Error} */ (e).message}). ` +
            "Responses from Response.redirect() and fetch() are immutable; return new Response(body, init) instead, " +
            "or let withBlitzAuth copy it for you.",
        ),
        { code: "IMMUTABLE_RESPONSE" },
      )
    }
    return
  }
  throw Object.assign(new TypeError("setSession expects a Node ServerResponse or a web Response"), {
    code: "INVALID_ARGUMENT",
  })
}

// ---------------------------------------------------------------------------
// SessionContext.

/** The key under which a context keeps its private state. */
const kState = Symbol("blitz-auth-native.session")

class SessionContext {
  /**
   * @param {import("../binding").SessionEngine} native
   * @param {SessionView} view
   * @param {boolean} isRsc
   * @param {any} response a Node ServerResponse to write to after each change
   */
  constructor(native, view, isRsc, response) {
    // A symbol key: invisible to Object.keys and JSON, and cheaper than defineProperty.
    /** @type {any} */
    const self = this
    self[kState] = { native, view, parsed: undefined, isRsc, response, queue: Promise.resolve() }
  }

  /** @returns {{ native: import("../binding").SessionEngine, view: SessionView, parsed: any, isRsc: boolean, response: any, queue: Promise<unknown> }} */
  get _state() {
    return /** @type {any} */ (this)[kState]
  }

  /**
   * Run session operations one after another, as Blitz's awaited calls do,
   * even when the caller does not await between them.
   * @template T
   * @param {() => Promise<T>} op
   * @returns {Promise<T>}
   */
  _serial(op) {
    const s = this._state
    const run = s.queue.then(op, op)
    s.queue = run.catch(() => undefined)
    return run
  }

  get $handle() {
    return this._state.view.handle
  }

  get userId() {
    return this.$publicData.userId
  }

  /** The session's public data (a live object, as in Blitz); parsed on first use. */
  get $publicData() {
    const s = this._state
    if (s.parsed === undefined) s.parsed = JSON.parse(s.view.publicData)
    return s.parsed
  }

  $antiCSRFToken() {
    return this._state.view.antiCsrfToken
  }

  /** Logged in: any userId but null/undefined (Q14: 0, "" and false are ids). */
  _loggedIn() {
    return this.userId !== null && this.userId !== undefined
  }

  /** @param {...unknown} args */
  $isAuthorized(...args) {
    if (!this._loggedIn()) return false
    return config().options.isAuthorized({ ctx: { session: this }, args })
  }

  /** @param {...unknown} args */
  $thisIsAuthorized(...args) {
    return this.$isAuthorized(...args)
  }

  /** @param {...unknown} args */
  $authorize(...args) {
    if (!this._loggedIn()) throw new AuthenticationError()
    if (!this.$isAuthorized(...args)) throw new AuthorizationError()
  }

  /** @param {SessionView} view */
  _adopt(view) {
    const s = this._state
    if (view.publicData !== s.view.publicData) s.parsed = undefined
    s.view = view
    if (s.response) writeResponse(view, s.response)
  }

  /** @param {string} method */
  _rscNoop(method) {
    if (!this._state.isRsc) return false
    console.log(`[Blitz Auth] Method ${method} is not yet supported in React Server Components`)
    return true
  }

  /** Write this request's cookies and headers to `response` (Node or web). */
  setSession(/** @type {any} */ response) {
    if (this._rscNoop("setSession")) return
    writeResponse(this._state.view, response)
  }

  /**
   * Log in: a new authenticated session for `publicData.userId`.
   * @param {Record<string, any>} publicData
   * @param {Record<string, any>} [privateData]
   */
  async $create(publicData, privateData) {
    if (this._rscNoop("$create")) return
    if (publicData === null || typeof publicData !== "object" || publicData.userId === undefined) {
      throw Object.assign(new Error("You must provide publicData.userId"), { code: "INVALID_SESSION_OPERATION" })
    }
    if (publicData.userId === null) {
      throw Object.assign(new Error("You must provide a non-empty userId as publicData.userId"), {
        code: "INVALID_SESSION_OPERATION",
      })
    }
    const [pub, pubRemove] = toMerge(publicData, "publicData")
    const [priv, privRemove] = privateData === undefined ? [undefined, []] : toMerge(privateData, "privateData")
    await this._serial(async () => {
      const s = this._state
      this._adopt(await settle(s.native.sessionCreate(s.view.state, pub, pubRemove, priv, privRemove, Date.now())))
    })
  }

  /** Log out; the request continues with a new anonymous session. */
  async $revoke() {
    if (this._rscNoop("$revoke")) return
    await this._serial(async () => {
      const s = this._state
      this._adopt(await settle(s.native.sessionRevoke(s.view.state, false, Date.now())))
    })
  }

  /** Log out every session of this user. */
  async $revokeAll() {
    if (this._rscNoop("$revokeAll")) return
    await this._serial(async () => {
      const s = this._state
      this._adopt(await settle(s.native.sessionRevoke(s.view.state, true, Date.now())))
    })
  }

  /** @param {Record<string, any>} data shallow-merged into the public data; `userId` cannot change */
  async $setPublicData(data) {
    if (this._rscNoop("$setPublicData")) return
    const [set, remove] = toMerge(data, "publicData")
    await this._serial(async () => {
      const s = this._state
      this._adopt(await settle(s.native.sessionSetData(s.view.state, false, set, remove, Date.now())))
    })
  }

  /** @returns {Promise<Record<string, any>>} */
  async $getPrivateData() {
    return this._serial(async () => {
      const s = this._state
      const r = s.native.sessionGetPrivateData(s.view.state, Date.now())
      const text = typeof r === "string" ? r : await later(r)
      if (!text.startsWith(`ok${SEP}`)) decode(text) // throws the error it carries
      return JSON.parse(text.slice(3))
    })
  }

  /** @param {Record<string, any>} data shallow-merged into the private data */
  async $setPrivateData(data) {
    if (this._rscNoop("$setPrivateData")) return
    const [set, remove] = toMerge(data, "privateData")
    await this._serial(async () => {
      const s = this._state
      this._adopt(await settle(s.native.sessionSetData(s.view.state, true, set, remove, Date.now())))
    })
  }
}

/** Unknown properties read from the public data, as Blitz's proxy does (`session.role`). */
const proxyHandler = {
  /** @param {any} target @param {string | symbol} prop @param {any} receiver */
  get(target, prop, receiver) {
    if (prop in target) return Reflect.get(target, prop, receiver)
    if (prop === "then") return undefined
    return target.$publicData[prop]
  },
}

// ---------------------------------------------------------------------------
// getSession.

/** @param {any} req */
function isWebRequest(req) {
  return req !== null && typeof req === "object" && typeof req.headers?.get === "function"
}

/** @param {string | string[] | undefined} v */
function headerText(v) {
  return v === undefined ? undefined : Array.isArray(v) ? v.join(", ") : v
}

/**
 * The request's session; with a Node `res`, the cookies are written to it at
 * once and the context is kept on `res.blitzCtx.session`.
 * @param {any} req IncomingMessage, web Request, or `{ headers, method }`
 * @param {any} [res] ServerResponse (Node) or nothing (web)
 * @param {boolean} [isRsc]
 */
async function getSession(req, res, isRsc = false) {
  if (res) {
    if (!res.blitzCtx) res.blitzCtx = {}
    if (res.blitzCtx.session) return res.blitzCtx.session
  }
  let method, cookie, csrf
  if (isWebRequest(req)) {
    method = req.method ?? "GET"
    cookie = req.headers.get("cookie") ?? undefined
    csrf = req.headers.get("anti-csrf") ?? undefined
  } else if (req && typeof req === "object" && req.headers && typeof req.headers === "object") {
    method = req.method ?? "GET"
    cookie = headerText(req.headers.cookie)
    csrf = headerText(req.headers["anti-csrf"])
  } else {
    throw Object.assign(new TypeError("getSession expects a Node IncomingMessage or a web Request"), {
      code: "INVALID_ARGUMENT",
    })
  }
  // Server Components cannot send cookies: resolve without store writes (Q25).
  const native = engine()
  let view
  try {
    const r = native.resolve(method, cookie, csrf, Date.now(), isRsc)
    // The in-memory store answers synchronously: no extra promise on the hot path.
    view = typeof r === "string" ? decode(r) : await settle(r)
  } catch (e) {
    // Tell the client (csrf-error header, cleared cookies) before failing (Q4).
    const err = /** @type {any} */ (e)
    if (res && err?.sessionResponse) writeResponse(err.sessionResponse, res)
    throw e
  }
  const ctx = new SessionContext(native, view, isRsc, res && !isRsc ? res : null)
  const session = /** @type {SessionContext} */ (new Proxy(ctx, proxyHandler))
  if (res) {
    // Unlike Blitz 3 (Q23), other keys on res.blitzCtx are kept.
    res.blitzCtx.session = session
    if (!isRsc) writeResponse(view, res)
  }
  return session
}

/**
 * Write a session's cookies and headers to `response` (`session.setSession(response)`).
 * @param {SessionContext} session
 * @param {any} response
 */
function setSession(session, response) {
  session.setSession(response)
}

/** @param {unknown} userId */
function userIdJson(userId) {
  if (userId === undefined || userId === null) {
    throw Object.assign(new TypeError("userId must not be null or undefined"), { code: "INVALID_ARGUMENT" })
  }
  return JSON.stringify(userId)
}

/**
 * Handles of the live sessions of a user.
 * @param {unknown} userId
 * @returns {Promise<string[]>}
 */
async function getAllSessionHandlesForUser(userId) {
  return unwrapValue(await engine().sessionHandlesForUser(userIdJson(userId), Date.now()))
}

/**
 * Merge `data` into the public data of every live session of the user
 * (`userId` itself cannot change). Each session's public-data cookie follows
 * on its next request.
 * @param {unknown} userId
 * @param {Record<string, any>} data
 */
async function setPublicDataForUser(userId, data) {
  const [set, remove] = toMerge(data, "publicData")
  unwrapValue(await engine().setPublicDataForUser(userIdJson(userId), set, remove, Date.now()))
}

module.exports = {
  SessionContext,
  getSession,
  setSession,
  configureSessions,
  getAllSessionHandlesForUser,
  setPublicDataForUser,
  writeResponse,
  toAppError,
}
