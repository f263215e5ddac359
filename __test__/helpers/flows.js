// @ts-check
"use strict"
// Drives blitz-auth-native the way spec/vectors/session-flows.json was
// produced with the real @blitzjs/auth: cookie prefix "test", the vectors'
// SESSION_SECRET_KEY, a frozen clock, and an in-memory SessionConfigMethods
// that logs every call. Also decodes cookies and rebuilds the vectors'
// Set-Cookie strings with our random values in place of Blitz's.

const crypto = require("node:crypto")
const http = require("node:http")

const SECRET = "spec-vectors-secret-key-0123456789abcdef"
const PREFIX = "test"
/** 2025-01-15T12:00:00Z, the vectors' first instant. */
const T0 = Date.parse("2025-01-15T12:00:00Z")

const names = {
  anon: `${PREFIX}_sAnonymousSessionToken`,
  session: `${PREFIX}_sSessionToken`,
  csrf: `${PREFIX}_sAntiCsrfToken`,
  publicData: `${PREFIX}_sPublicDataToken`,
  refresh: `${PREFIX}_sIdRefreshToken`,
}

// ---------------------------------------------------------------------------
// Clock. The JS layer hands `Date.now()` to the engine on every call and the
// logging storage below reads `Date.now()` too, so replacing it freezes time
// for everything the session code looks at.

const realNow = Date.now

const clock = {
  /** @param {string} hhmm "12:01" (2025-01-15) or a full ISO string */
  set(hhmm) {
    const ms = hhmm.includes("T") ? Date.parse(hhmm) : Date.parse(`2025-01-15T${hhmm}:00Z`)
    if (Number.isNaN(ms)) throw new Error(`bad time ${hhmm}`)
    Date.now = () => ms
    return ms
  },
  restore() {
    Date.now = realNow
  },
}

// ---------------------------------------------------------------------------
// The logging in-memory SessionConfigMethods (the vectors' test storage).

/** @typedef {{ handle: string, userId?: any, expiresAt?: Date | null, hashedSessionToken?: string | null, antiCSRFToken?: string | null, publicData?: string | null, privateData?: string | null }} Row */

/** JSON round trip: Dates become ISO strings, as in the vectors' logs. @param {any} v */
const plain = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)))

class LoggingStorage {
  constructor() {
    /** @type {Map<string, Row>} */
    this.rows = new Map()
    /** @type {any[][]} */
    this.calls = []
  }

  /**
   * Empty the store and its log, then insert `rows` (vector rows: ISO dates are turned into Dates).
   * @param {any[]} [rows]
   */
  reset(rows = []) {
    this.rows.clear()
    this.calls.length = 0
    for (const r of rows) this.put(r)
  }

  /** @param {any} row a vector row (expiresAt as ISO string) or a Row */
  put(row) {
    const r = { ...row }
    if (typeof r.expiresAt === "string") r.expiresAt = new Date(r.expiresAt)
    this.rows.set(r.handle, r)
  }

  /** The stored row, as the vectors print rows (ISO dates). @param {string} handle */
  row(handle) {
    return plain(this.rows.get(handle))
  }

  /** Return the calls logged so far and start a new log. */
  takeCalls() {
    const c = this.calls.slice()
    this.calls.length = 0
    return c
  }

  /** @param {string} method @param {any[]} args */
  log(method, args) {
    this.calls.push([method, ...args.map(plain)])
  }

  /** @param {string} handle */
  async getSession(handle) {
    this.log("getSession", [handle])
    const r = this.rows.get(handle)
    return r ? { ...r } : null
  }

  /** Rows of the user whose expiresAt is in the future (PrismaStorage semantics). @param {any} userId */
  async getSessions(userId) {
    this.log("getSessions", [userId])
    const now = Date.now()
    return [...this.rows.values()]
      .filter((r) => r.userId === userId && r.expiresAt instanceof Date && r.expiresAt.getTime() > now)
      .map((r) => ({ ...r }))
  }

  /** @param {Row} session */
  async createSession(session) {
    this.log("createSession", [session])
    this.rows.set(session.handle, { ...session })
    return { ...session }
  }

  /** @param {string} handle @param {Partial<Row>} session */
  async updateSession(handle, session) {
    this.log("updateSession", [handle, session])
    const r = this.rows.get(handle)
    if (!r) return undefined
    Object.assign(r, session)
    return { ...r }
  }

  /** @param {string} handle */
  async deleteSession(handle) {
    this.log("deleteSession", [handle])
    const r = this.rows.get(handle)
    this.rows.delete(handle)
    return r
  }
}

// ---------------------------------------------------------------------------
// Requests and responses.

/**
 * A web Request like the vectors' (`http://localhost:3000/`).
 * @param {{ method?: string, cookie?: string | null, csrf?: string | null, headers?: Record<string, string> }} [init]
 */
function webRequest({ method = "GET", cookie = null, csrf = null, headers = {} } = {}) {
  /** @type {Record<string, string>} */
  const h = { ...headers }
  if (cookie) h.cookie = cookie
  if (csrf) h["anti-csrf"] = csrf
  return new Request("http://localhost:3000/", { method, headers: h })
}

/**
 * A Response's headers: Set-Cookie lines apart, the rest as sorted [name, value] pairs.
 * @param {Response} response
 */
function readResponse(response) {
  return {
    headers: [...response.headers].filter(([k]) => k !== "set-cookie" && k !== "content-type"),
    setCookie: response.headers.getSetCookie(),
  }
}

/**
 * `session.setSession(new Response(null))`, read back.
 * @param {any} session
 */
function respond(session) {
  const response = new Response(null)
  session.setSession(response)
  return readResponse(response)
}

/**
 * The vector's response headers without Set-Cookie (Blitz's single joined
 * value is compared through `set_cookie_split`).
 * @param {any} vectorResponse
 */
function vectorHeaders(vectorResponse) {
  return vectorResponse.headers.filter((/** @type {string[]} */ [k]) => k !== "set-cookie")
}

/**
 * Run `handler(req, res)` inside a real node:http server on 127.0.0.1 and
 * send it one real request; resolves with what the client received.
 * @param {(req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>} handler
 * @param {{ method?: string, headers?: Record<string, string> }} [init]
 * @returns {Promise<{ status: number | undefined, headers: http.IncomingHttpHeaders, body: string }>}
 */
function nodeRoundTrip(handler, { method = "GET", headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    /** @type {unknown} */
    let failure
    const server = http.createServer((req, res) => {
      handler(req, res).then(
        () => {
          if (!res.writableEnded) res.end()
        },
        (e) => {
          failure = e
          res.statusCode = 599
          res.end()
        },
      )
    })
    server.listen(0, "127.0.0.1", () => {
      const address = /** @type {import("node:net").AddressInfo} */ (server.address())
      const req = http.request({ host: "127.0.0.1", port: address.port, path: "/", method, headers, agent: false }, (res) => {
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (c) => (body += c))
        res.on("end", () => {
          server.close()
          if (failure) reject(failure)
          else resolve({ status: res.statusCode, headers: res.headers, body })
        })
      })
      req.on("error", (e) => {
        server.close()
        reject(e)
      })
      req.end()
    })
  })
}

// ---------------------------------------------------------------------------
// Cookies and tokens.

/**
 * `name=value; attrs` → its parts (value as sent, URI-encoded).
 * @param {string} setCookie
 */
function splitSetCookie(setCookie) {
  const semi = setCookie.indexOf(";")
  const pair = semi === -1 ? setCookie : setCookie.slice(0, semi)
  const eq = pair.indexOf("=")
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attrs: semi === -1 ? "" : setCookie.slice(semi) }
}

/** @param {string[]} setCookies */
function cookieNames(setCookies) {
  return setCookies.map((c) => splitSetCookie(c).name)
}

/**
 * Decoded value of the cookie `name` among Set-Cookie lines (undefined when absent).
 * @param {string[]} setCookies
 * @param {string} name
 */
function cookieValue(setCookies, name) {
  const c = setCookies.map(splitSetCookie).find((p) => p.name === name)
  return c === undefined ? undefined : decodeURIComponent(c.value)
}

/**
 * A `Cookie` request header as a browser would send after these Set-Cookie lines
 * (cleared cookies dropped), optionally on top of an earlier jar.
 * @param {string[]} setCookies
 * @param {Record<string, string>} [jar]
 */
function cookieJar(setCookies, jar = {}) {
  const out = { ...jar }
  for (const c of setCookies) {
    const { name, value } = splitSetCookie(c)
    if (value === "") delete out[name]
    else out[name] = value
  }
  return out
}

/** @param {Record<string, string>} jar */
function cookieHeader(jar) {
  return Object.entries(jar)
    .map(([k, v]) => `${k}=${v}`)
    .join("; ")
}

const b64url = (/** @type {string | Buffer} */ s) => Buffer.from(s).toString("base64url")

/**
 * @param {string} jwt
 * @returns {{ header: any, payload: any, headerText: string, payloadText: string, signature: string }}
 */
function decodeJwt(jwt) {
  const [h, p, signature] = jwt.split(".")
  const headerText = Buffer.from(h, "base64url").toString("utf8")
  const payloadText = Buffer.from(p, "base64url").toString("utf8")
  return { header: JSON.parse(headerText), payload: JSON.parse(payloadText), headerText, payloadText, signature }
}

/**
 * HS256 JWT over exactly this payload (keys in the object's order), with the vectors' secret.
 * @param {any} payload
 */
function signJwt(payload) {
  const input = `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url(JSON.stringify(payload))}`
  return `${input}.${crypto.createHmac("sha256", SECRET).update(input).digest("base64url")}`
}

const sha256 = (/** @type {string} */ s) => crypto.createHash("sha256").update(s).digest("hex")

/**
 * An authenticated session token: base64 of `handle;id;sha256(publicData);v0`.
 * @param {string} handle @param {string} id @param {string} publicDataJson
 */
function sessionToken(handle, id, publicDataJson) {
  return Buffer.from([handle, id, sha256(publicDataJson), "v0"].join(";")).toString("base64")
}

/** @param {string} token base64 session token */
function decodeSessionToken(token) {
  const text = Buffer.from(token, "base64").toString("utf8")
  const [handle, id, hashedPublicData, version] = text.split(";")
  return { text, handle, id, hashedPublicData, version }
}

/** @param {string} token base64 publicData token */
function decodePublicData(token) {
  return JSON.parse(Buffer.from(token, "base64").toString("utf8"))
}

const RANDOM = /^[A-Za-z0-9_-]{32}$/
const HANDLE = /^[A-Za-z0-9_-]{32}:(ajwt|ots)$/

/**
 * Deep copy of `v` with every string that is a key of `swap` replaced by its value.
 * @param {any} v @param {Map<string, string>} swap
 * @returns {any}
 */
function swapDeep(v, swap) {
  if (typeof v === "string") return swap.get(v) ?? v
  if (Array.isArray(v)) return v.map((x) => swapDeep(x, swap))
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, swapDeep(x, swap)]))
  return v
}

/**
 * A vector Set-Cookie string rebuilt with our random values (`swap`: Blitz's
 * value → ours; handles, anti-CSRF tokens, session-token ids) and, where a
 * documented fix changes it, other public data or expiry. Attributes are kept
 * verbatim; JWTs are re-signed with the vectors' secret; session tokens get
 * the hash of their (new) public data; publicData tokens are re-encoded.
 * @param {string} setCookie
 * @param {Map<string, string>} swap
 * @param {{ publicData?: any, expires?: string }} [change]
 */
function rebuild(setCookie, swap, change = {}) {
  const { name, value, attrs: rawAttrs } = splitSetCookie(setCookie)
  const attrs = change.expires ? rawAttrs.replace(/Expires=[^;]*/, `Expires=${change.expires}`) : rawAttrs
  if (value === "") return `${name}=${attrs}`
  let out = decodeURIComponent(value)
  if (name === names.anon) {
    const payload = swapDeep(decodeJwt(out).payload, swap)
    if (change.publicData) payload.blitzjs.publicData = change.publicData
    out = signJwt(payload)
  } else if (name === names.session) {
    const t = decodeSessionToken(out)
    const handle = swap.get(t.handle) ?? t.handle
    const id = swap.get(t.id) ?? t.id
    out = change.publicData
      ? sessionToken(handle, id, JSON.stringify(change.publicData))
      : Buffer.from([handle, id, t.hashedPublicData, t.version].join(";")).toString("base64")
  } else if (name === names.publicData) {
    if (change.publicData) out = Buffer.from(JSON.stringify(change.publicData)).toString("base64")
  } else {
    out = swap.get(out) ?? out
  }
  return `${name}=${encodeURIComponent(out)}${attrs}`
}

module.exports = {
  SECRET,
  PREFIX,
  T0,
  names,
  clock,
  LoggingStorage,
  webRequest,
  readResponse,
  respond,
  vectorHeaders,
  nodeRoundTrip,
  splitSetCookie,
  cookieNames,
  cookieValue,
  cookieJar,
  cookieHeader,
  decodeJwt,
  signJwt,
  sha256,
  sessionToken,
  decodeSessionToken,
  decodePublicData,
  swapDeep,
  rebuild,
  RANDOM,
  HANDLE,
}

/**
 * Blitz's random values → ours (handles, anti-CSRF tokens, session-token ids
 * and the stored hashes of session tokens), paired by cookie between a
 * vector's Set-Cookie lines and ours. Only random parts are paired; the
 * caller still compares everything else exactly.
 * @param {string[]} theirs
 * @param {string[]} mine
 * @param {Map<string, string>} [swap] add to this map
 */
function randomSwap(theirs, mine, swap = new Map()) {
  /** @param {string | undefined} a @param {string | undefined} b */
  const pair = (a, b) => {
    if (a && b) swap.set(a, b)
  }
  pair(cookieValue(theirs, names.csrf), cookieValue(mine, names.csrf))
  const ta = cookieValue(theirs, names.anon)
  const ma = cookieValue(mine, names.anon)
  if (ta && ma) {
    const [t, m] = [decodeJwt(ta).payload.blitzjs, decodeJwt(ma).payload.blitzjs]
    pair(t.handle, m.handle)
    pair(t.antiCSRFToken, m.antiCSRFToken)
  }
  const ts = cookieValue(theirs, names.session)
  const ms = cookieValue(mine, names.session)
  if (ts && ms) {
    const [t, m] = [decodeSessionToken(ts), decodeSessionToken(ms)]
    pair(t.handle, m.handle)
    pair(t.id, m.id)
    pair(sha256(ts), sha256(ms))
  }
  return swap
}

/** The Expires attribute of a Set-Cookie string. @param {string} setCookie */
function expiresOf(setCookie) {
  const m = /; Expires=([^;]*)/.exec(setCookie)
  if (!m) throw new Error(`no Expires in ${setCookie}`)
  return m[1]
}

module.exports.randomSwap = randomSwap
module.exports.expiresOf = expiresOf
