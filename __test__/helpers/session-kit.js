"use strict"
// Test helpers for the session tests: an in-memory SessionConfigMethods (the
// storage interface Blitz apps implement), Set-Cookie parsing with Blitz's
// splitting rule, a small cookie jar acting as the browser, and a throw-away
// node:http server.

const http = require("node:http")

/**
 * @typedef {{ handle: string, userId?: any, expiresAt?: Date | null, hashedSessionToken?: string | null,
 *   antiCSRFToken?: string | null, publicData?: string | null, privateData?: string | null, [k: string]: any }} Row
 */

/**
 * A storage object with Blitz's `SessionConfigMethods` shape over a Map.
 * `getSessions(userId)` returns the rows of that user whose `expiresAt` is in
 * the future (PrismaStorage's semantics). Every call is recorded in `calls`.
 */
function createMemoryStorage() {
  /** @type {Map<string, Row>} */
  const rows = new Map()
  /** @type {Array<[string, ...any[]]>} */
  const calls = []
  const storage = {
    /** @param {string} handle */
    async getSession(handle) {
      calls.push(["getSession", handle])
      const r = rows.get(handle)
      return r ? { ...r } : null
    },
    /** @param {any} userId */
    async getSessions(userId) {
      calls.push(["getSessions", userId])
      const now = Date.now()
      return [...rows.values()]
        .filter((r) => r.userId === userId && r.expiresAt instanceof Date && r.expiresAt.getTime() > now)
        .map((r) => ({ ...r }))
    },
    /** @param {Row} session */
    async createSession(session) {
      calls.push(["createSession", session])
      if (rows.has(session.handle)) throw new Error(`duplicate handle ${session.handle}`)
      rows.set(session.handle, { ...session })
      return { ...session }
    },
    /** @param {string} handle @param {Partial<Row>} session */
    async updateSession(handle, session) {
      calls.push(["updateSession", handle, session])
      const r = rows.get(handle)
      if (!r) return undefined
      Object.assign(r, session)
      return { ...r }
    },
    /** @param {string} handle */
    async deleteSession(handle) {
      calls.push(["deleteSession", handle])
      const r = rows.get(handle)
      rows.delete(handle)
      return r
    },
  }
  return { storage, rows, calls }
}

/**
 * Split a Set-Cookie value holding several cookies joined by ", " (what Blitz
 * writes on Fetch responses), with Blitz's rule (spec §7.3): a comma separates
 * two cookies only when the next token up to `=`, `;` or `,` ends with `=`.
 * @param {string} text
 * @returns {string[]}
 */
function splitCookiesString(text) {
  /** @type {string[]} */
  const out = []
  let start = 0
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== ",") continue
    let j = i + 1
    while (j < text.length && /\s/.test(text[j])) j++
    let k = j
    while (k < text.length && !"=;,".includes(text[k])) k++
    if (k < text.length && text[k] === "=") {
      out.push(text.slice(start, i))
      start = j
      i = j - 1
    }
  }
  out.push(text.slice(start))
  return out.filter((c) => c.length > 0)
}

/**
 * Every cookie a response sets, one string per cookie: web Responses (ours:
 * one header line per cookie; Blitz: one comma-joined line, possibly "null")
 * and Node ServerResponses.
 * @param {any} response
 * @returns {string[]}
 */
function setCookies(response) {
  /** @type {string[]} */
  let lines
  if (typeof response.getHeader === "function") {
    const v = response.getHeader("set-cookie")
    lines = v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]
  } else {
    lines = response.headers.getSetCookie()
  }
  return lines.flatMap(splitCookiesString).filter((c) => c !== "null")
}

/**
 * @typedef {{ name: string, value: string, raw: string, domain?: string, path?: string, expires?: string,
 *   httpOnly: boolean, secure: boolean, sameSite?: string, attributes: string[] }} ParsedCookie
 */

/**
 * Parse one Set-Cookie string. `value` is the raw (still URI-encoded) value.
 * @param {string} line
 * @returns {ParsedCookie}
 */
function parseSetCookie(line) {
  const parts = line.split(";").map((p) => p.trim())
  const first = /** @type {string} */ (parts.shift())
  const eq = first.indexOf("=")
  /** @type {ParsedCookie} */
  const c = { name: first.slice(0, eq), value: first.slice(eq + 1), raw: line, httpOnly: false, secure: false, attributes: [] }
  for (const p of parts) {
    const i = p.indexOf("=")
    const key = (i === -1 ? p : p.slice(0, i)).toLowerCase()
    const val = i === -1 ? "" : p.slice(i + 1)
    c.attributes.push(i === -1 ? p : p.slice(0, i))
    if (key === "domain") c.domain = val
    else if (key === "path") c.path = val
    else if (key === "expires") c.expires = val
    else if (key === "httponly") c.httpOnly = true
    else if (key === "secure") c.secure = true
    else if (key === "samesite") c.sameSite = val
  }
  return c
}

/** A browser's cookie store, enough for one origin and path "/". */
class CookieJar {
  constructor() {
    /** @type {Map<string, ParsedCookie>} */
    this.cookies = new Map()
  }

  /**
   * Store the cookies a response sets (expired ones delete).
   * @param {any} response web Response, Node ServerResponse or fetch() Response
   */
  absorb(response) {
    for (const line of setCookies(response)) this.absorbLine(line)
    return this
  }

  /** @param {string} line */
  absorbLine(line) {
    const c = parseSetCookie(line)
    const expired = c.expires !== undefined && Date.parse(c.expires) <= Date.now()
    if (expired) this.cookies.delete(c.name)
    else this.cookies.set(c.name, c)
  }

  /** The request `Cookie` header. */
  header() {
    return [...this.cookies.values()].map((c) => `${c.name}=${c.value}`).join("; ")
  }

  /** What `document.cookie` shows: the cookies that are not HttpOnly. */
  documentCookie() {
    return [...this.cookies.values()]
      .filter((c) => !c.httpOnly)
      .map((c) => `${c.name}=${c.value}`)
      .join("; ")
  }

  /** @param {string} name @returns {string | undefined} the raw value */
  get(name) {
    return this.cookies.get(name)?.value
  }

  /** @param {string} name @param {string} value raw value */
  set(name, value) {
    this.cookies.set(name, parseSetCookie(`${name}=${value}`))
  }

  clone() {
    const j = new CookieJar()
    for (const [k, v] of this.cookies) j.cookies.set(k, v)
    return j
  }
}

/**
 * A browser tab on one origin for in-process tests: sends its cookies (and,
 * like Blitz's client, the anti-CSRF cookie as the `anti-csrf` header) in a
 * web Request, and keeps what `setSession` writes to the Response.
 */
class Browser {
  /**
   * @param {string} cookiePrefix the app's cookiePrefix
   * @param {(req: Request) => Promise<any>} getSession the library's getSession
   */
  constructor(cookiePrefix, getSession) {
    this.jar = new CookieJar()
    this.csrfCookie = `${cookiePrefix}_sAntiCsrfToken`
    this.getSession = getSession
  }

  /** @param {string} method */
  request(method = "GET") {
    /** @type {Record<string, string>} */
    const headers = { cookie: this.jar.header() }
    const csrf = this.jar.get(this.csrfCookie)
    if (csrf) headers["anti-csrf"] = decodeURIComponent(csrf)
    return new Request("http://127.0.0.1/", { method, headers })
  }

  /**
   * One request: getSession, then `act` on the session, then setSession.
   * @param {string} method
   * @param {(s: any) => Promise<unknown>} [act]
   */
  async visit(method = "GET", act) {
    const session = await this.getSession(this.request(method))
    if (act) await act(session)
    const res = new Response(null)
    session.setSession(res)
    this.jar.absorb(res)
    return session
  }
}

/**
 * Decode a JWT without verifying it.
 * @param {string} token
 * @returns {{ headerText: string, payloadText: string, header: any, payload: any, signingInput: string, signature: string }}
 */
function decodeJwt(token) {
  const [h, p, s] = token.split(".")
  const headerText = Buffer.from(h, "base64url").toString("utf8")
  const payloadText = Buffer.from(p, "base64url").toString("utf8")
  return { headerText, payloadText, header: JSON.parse(headerText), payload: JSON.parse(payloadText), signingInput: `${h}.${p}`, signature: s }
}

/**
 * The public data carried by a publicData cookie value (raw, URI-encoded).
 * @param {string} raw
 */
function decodePublicDataCookie(raw) {
  return JSON.parse(Buffer.from(decodeURIComponent(raw), "base64").toString("utf8"))
}

/**
 * A node:http server on 127.0.0.1 with an ephemeral port.
 * @param {(req: import("http").IncomingMessage, res: import("http").ServerResponse) => unknown} handler
 * @returns {Promise<{ base: string, close: () => Promise<void> }>}
 */
async function startServer(handler) {
  const server = http.createServer((req, res) => {
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((e) => {
        if (!res.headersSent) {
          res.statusCode = 599
          res.setHeader("content-type", "text/plain")
        }
        res.end(`unhandled: ${e && e.message}`)
      })
  })
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)))
  const addr = /** @type {import("net").AddressInfo} */ (server.address())
  return {
    base: `http://127.0.0.1:${addr.port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve(undefined))
      }),
  }
}

module.exports = {
  Browser,
  createMemoryStorage,
  splitCookiesString,
  setCookies,
  parseSetCookie,
  CookieJar,
  decodeJwt,
  decodePublicDataCookie,
  startServer,
}
