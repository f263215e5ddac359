"use strict"
// AuthServerPlugin (the shape Blitz's setupBlitzServer accepts) and the
// framework wrappers: withBlitzAuth (App Router), api (Pages API routes),
// gSSP (getServerSideProps), getBlitzContext (React Server Components).

const { configureSessions, getSession, toAppError } = require("./session")

/**
 * A response we may add headers to: Response.redirect() and fetched responses
 * have immutable headers, so copy them (Q27: Blitz threw "immutable").
 * @param {Response} response
 */
function mutableResponse(response) {
  try {
    response.headers.set("x-blitz-auth-probe", "1")
    response.headers.delete("x-blitz-auth-probe")
    return response
  } catch {
    return new Response(response.body, response)
  }
}

/**
 * The JSON error reply of the wrappers: Blitz's error `name`, `statusCode`
 * and `message`, and the status code the error carries (401, 403, 503…).
 * @param {any} error
 */
function errorResponse(error) {
  const status = Number.isInteger(error?.statusCode) ? error.statusCode : 500
  const body = { name: error?.name ?? "Error", message: error?.message ?? String(error), statusCode: status }
  if (error?.code) Object.assign(body, { code: error.code })
  return new Response(JSON.stringify({ error: body }), { status, headers: { "content-type": "application/json" } })
}

/**
 * Session errors raised before the handler runs (a CSRF mismatch, the store
 * being down) become an HTTP reply carrying the session headers (`csrf-error`
 * reaches Blitz's client, Q4); handler errors propagate as in Blitz.
 * @param {(request: Request, params: any, ctx: { session: any }) => Response | Promise<Response>} handler
 */
function wrapHandler(handler) {
  return async (/** @type {Request} */ request, /** @type {any} */ params) => {
    let session
    try {
      session = await getSession(request)
    } catch (e) {
      const err = /** @type {any} */ (e)
      if (!err?.sessionResponse) throw e
      const reply = errorResponse(err)
      const { writeResponse } = require("./session")
      writeResponse(err.sessionResponse, reply)
      return reply
    }
    const response = await handler(request, params, { session })
    if (!(response instanceof Response)) {
      throw Object.assign(new TypeError("a withBlitzAuth handler must return a Response"), { code: "INVALID_ARGUMENT" })
    }
    const out = mutableResponse(response)
    session.setSession(out)
    return out
  }
}

/**
 * App Router route handlers with a session: `withBlitzAuth(handler)` or
 * `withBlitzAuth({ GET, POST })` (Blitz 3 only took the object form).
 * @param {any} handlers
 */
function withBlitzAuth(handlers) {
  if (typeof handlers === "function") return wrapHandler(handlers)
  if (handlers === null || typeof handlers !== "object") {
    throw Object.assign(new TypeError("withBlitzAuth expects a handler or an object of handlers by HTTP method"), {
      code: "INVALID_ARGUMENT",
    })
  }
  return Object.fromEntries(Object.entries(handlers).map(([method, h]) => [method, wrapHandler(h)]))
}

/**
 * Pages Router API route with a session: `api(async (req, res, ctx) => …)`.
 * Session errors answer with their own status code (Blitz answered 400 to everything, Q24).
 * @param {(req: any, res: any, ctx: any) => any} handler
 */
function api(handler) {
  return async (/** @type {any} */ req, /** @type {any} */ res) => {
    try {
      await getSession(req, res)
    } catch (e) {
      const err = /** @type {any} */ (e)
      const status = Number.isInteger(err?.statusCode) ? err.statusCode : 500
      res.statusCode = status
      res.setHeader("content-type", "application/json")
      res.end(JSON.stringify({ error: { name: err?.name, message: err?.message, statusCode: status, code: err?.code } }))
      return
    }
    return handler(req, res, res.blitzCtx)
  }
}

/**
 * getServerSideProps with a session: `gSSP(async ({ req, res, ctx }) => …)`.
 * @param {(args: any) => any} handler
 */
function gSSP(handler) {
  return async (/** @type {any} */ context) => {
    const { req, res } = context
    await getSession(req, res)
    return handler({ ...context, ctx: res.blitzCtx })
  }
}

/**
 * React Server Components: the session of the current request, read-only
 * (writes cannot reach the browser from a render).
 */
async function getBlitzContext() {
  let nextHeaders
  try {
    const name = "next/headers"
    nextHeaders = require(name)
  } catch {
    throw new Error(
      "Usage of `getBlitzContext` is supported only in next.js 13.0.0 and above. Please upgrade your next.js version.",
    )
  }
  const cookieStore = await nextHeaders.cookies()
  const headerList = await nextHeaders.headers()
  /** @type {Record<string, string>} */
  const headers = {}
  for (const [k, v] of headerList.entries()) headers[k] = v
  const prefix = /** @type {any} */ (globalThis).__BLITZ_SESSION_COOKIE_PREFIX || "blitz"
  const csrf = cookieStore.get(`${prefix}_sAntiCsrfToken`)
  if (csrf) headers["anti-csrf"] = csrf.value
  // GET: a render must not change the session (Q25: Blitz used POST and could refresh during a render).
  const session = await getSession({ headers, method: "GET" }, null, true)
  return { session }
}

/**
 * @param {{ redirectTo?: any, redirectAuthenticatedTo?: any, role?: any }} [options]
 */
async function useAuthenticatedBlitzContext({ redirectTo, redirectAuthenticatedTo, role } = {}) {
  const ctx = await getBlitzContext()
  const name = "next/navigation"
  const { redirect } = require(name)
  /** @param {any} to */
  const target = (to) => (typeof to === "function" ? to(ctx) : typeof to === "object" ? formatUrl(to) : to)
  const roleOk = () => {
    try {
      ctx.session.$authorize(role)
      return true
    } catch {
      return false
    }
  }
  if (ctx.session.userId !== undefined && ctx.session.userId !== null) {
    if (redirectAuthenticatedTo && (!role || !roleOk())) redirect(target(redirectAuthenticatedTo))
    if (redirectTo && role && !roleOk()) redirect(target(redirectTo))
  } else if (redirectTo) {
    redirect(target(redirectTo))
  }
  return ctx
}

/** @param {unknown} v */
function queryParam(v) {
  return typeof v === "string" || (typeof v === "number" && !Number.isNaN(v)) || typeof v === "boolean" ? String(v) : ""
}

/**
 * A URL object as Next's `formatWithValidation` (format-url.ts) writes it,
 * which is what Blitz's redirect helpers use: query through URLSearchParams
 * (arrays repeat the key), then protocol, host, pathname, search, hash.
 * @param {any} u
 */
function formatUrl(u) {
  let auth = u.auth ? `${encodeURIComponent(u.auth).replace(/%3A/i, ":")}@` : ""
  /** @type {string | false} */
  let host = false
  if (u.host) host = auth + u.host
  else if (u.hostname) {
    host = auth + (u.hostname.includes(":") ? `[${u.hostname}]` : u.hostname)
    if (u.port) host += `:${u.port}`
  }
  let protocol = u.protocol || ""
  let pathname = u.pathname || ""
  let hash = u.hash || ""
  let query = u.query || ""
  if (query && typeof query === "object") {
    const params = new URLSearchParams()
    for (const [k, v] of Object.entries(query)) {
      if (Array.isArray(v)) for (const item of v) params.append(k, queryParam(item))
      else params.set(k, queryParam(v))
    }
    query = String(params)
  }
  let search = u.search || (query && `?${query}`) || ""
  if (protocol && !protocol.endsWith(":")) protocol += ":"
  if (u.slashes || ((!protocol || /https?|ftp|gopher|file/.test(protocol)) && host !== false)) {
    host = `//${host || ""}`
    if (pathname && pathname[0] !== "/") pathname = `/${pathname}`
  } else if (!host) {
    host = ""
  }
  if (hash && hash[0] !== "#") hash = `#${hash}`
  if (search && search[0] !== "?") search = `?${search}`
  pathname = pathname.replace(/[?#]/g, encodeURIComponent)
  search = search.replace("#", "%23")
  return `${protocol}${host}${pathname}${search}${hash}`
}

/**
 * The Blitz server plugin: pass it to `setupBlitzServer({ plugins: [AuthServerPlugin({...})] })`.
 * Options are Blitz's (cookiePrefix, sessionExpiryMinutes, storage, isAuthorized, …).
 * @param {Record<string, any>} options
 */
function AuthServerPlugin(options) {
  const resolved = configureSessions(options)
  /** @type {any} */
  const blitzSessionMiddleware = async (/** @type {any} */ req, /** @type {any} */ res, /** @type {() => any} */ next) => {
    if (!res.blitzCtx?.session) await getSession(req, res)
    return next()
  }
  blitzSessionMiddleware.config = { name: "blitzSessionMiddleware", cookiePrefix: resolved.cookiePrefix }
  const g = /** @type {any} */ (globalThis)
  if (!g.__BLITZ_GET_RSC_CONTEXT) g.__BLITZ_GET_RSC_CONTEXT = getBlitzContext
  return {
    requestMiddlewares: [blitzSessionMiddleware],
    exports: () => ({ getBlitzContext, useAuthenticatedBlitzContext, withBlitzAuth }),
  }
}

module.exports = {
  AuthServerPlugin,
  withBlitzAuth,
  api,
  gSSP,
  getBlitzContext,
  useAuthenticatedBlitzContext,
  toAppError,
}
