"use strict"
// Blitz's AuthServerPlugin options: defaults, validation and the environment
// (spec §2), turned into the native engine's options. No business rules here
// beyond what Blitz reads from options and env.

const { binding } = require("./native")

/**
 * @typedef {object} SessionConfigMethods
 * @property {(handle: string) => Promise<any>} getSession
 * @property {(userId: any) => Promise<any[]>} getSessions
 * @property {(session: any) => Promise<any>} createSession
 * @property {(handle: string, session: any) => Promise<any>} updateSession
 * @property {(handle: string) => Promise<any>} deleteSession
 */

const DEFAULTS = Object.freeze({
  cookiePrefix: "blitz",
  sessionExpiryMinutes: 43200,
  anonSessionExpiryMinutes: 2628000,
  method: "essential",
  sameSite: "lax",
  publicDataKeysToSyncAcrossSessions: ["role", "roles"],
  domain: undefined,
})

/** Q20: these switches act only on "1" or "true", not on any non-empty value. */
function envFlag(/** @type {string | undefined} */ v) {
  return v === "1" || v === "true"
}

/** @param {unknown} v */
function configError(/** @type {string} */ message, v = undefined) {
  const err = new TypeError(v === undefined ? message : `${message} (got ${typeof v === "string" ? JSON.stringify(v) : String(v)})`)
  // @ts-ignore
  err.code = "INVALID_CONFIG"
  return err
}

/**
 * Blitz's SameSite handling: strings case-insensitively, `true` is Strict, falsy omits it.
 * @param {unknown} v
 */
function sameSiteOption(v) {
  if (v === true) return "strict"
  if (!v) return ""
  if (typeof v === "string" && ["lax", "strict", "none"].includes(v.toLowerCase())) return v.toLowerCase()
  throw configError("option sameSite is invalid", v)
}

/**
 * The anonymous-session signing key (spec §4.6), read from the environment.
 * @returns {{ secret: string, previous: string[] } | { error: Error }}
 */
function resolveSecret(env = process.env) {
  const key = env.SESSION_SECRET_KEY || ""
  const previous = (env.SESSION_SECRET_KEY_PREVIOUS || "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
  if (env.NODE_ENV === "production") {
    if (!key) {
      const message = env.SECRET_SESSION_KEY
        ? "You need to rename the SECRET_SESSION_KEY environment variable to SESSION_SECRET_KEY (but don't feel bad, we've all done it :)"
        : "You must provide the SESSION_SECRET_KEY environment variable in production. This is used to sign and verify tokens. It should be 32 chars long."
      return { error: Object.assign(new Error(message), { code: "INVALID_CONFIG" }) }
    }
    const weak = previous.find((p) => p.length < 32)
    if (weak !== undefined) {
      return {
        error: Object.assign(
          new Error(
            "Every key in SESSION_SECRET_KEY_PREVIOUS must be at least 32 characters long in production (a weak previous key would let anyone forge anonymous sessions)",
          ),
          { code: "INVALID_CONFIG" },
        ),
      }
    }
    if (key.length < 32) {
      return {
        error: Object.assign(
          new Error("The SESSION_SECRET_KEY environment variable must be at least 32 bytes for sufficent token security"),
          { code: "INVALID_CONFIG" },
        ),
      }
    }
  }
  return { secret: key || "default-dev-secret", previous }
}

/**
 * Validate `AuthServerPlugin` options the way Blitz does (synchronously, at
 * set-up), with Blitz's defaults; an option given as `undefined` keeps its
 * default (Q21).
 * @param {Record<string, any>} options
 */
function resolveOptions(options) {
  if (options === null || typeof options !== "object") throw configError("AuthServerPlugin options must be an object", options)
  /** @param {string} k */
  const pick = (k) => (options[k] === undefined ? /** @type {any} */ (DEFAULTS)[k] : options[k])
  if (typeof options.isAuthorized !== "function") {
    throw new Error("You must provide an authorization implementation to sessionMiddleware as isAuthorized(userRoles, input)")
  }
  const cookiePrefix = options.cookiePrefix ?? "blitz"
  if (typeof cookiePrefix !== "string" || !/^[a-zA-Z0-9-_]+$/.test(cookiePrefix)) {
    throw new Error(
      'The cookie prefix used has invalid characters. Only alphanumeric characters, "-"  and "_" character are supported',
    )
  }
  const method = pick("method")
  if (method !== "essential") {
    throw configError(
      method === "advanced"
        ? 'method "advanced" is not supported (it was never implemented in Blitz either); use "essential"'
        : `Session management method ${method} is invalid. Supported methods are "essential" and "advanced"`,
    )
  }
  /** @type {Record<string, number>} */
  const minutes = {}
  for (const k of ["sessionExpiryMinutes", "anonSessionExpiryMinutes"]) {
    const raw = pick(k)
    // Numeric strings (straight from process.env) worked in Blitz; keep them working.
    const v = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw configError(`${k} must be a positive number of minutes`, raw)
    minutes[k] = v
  }
  const domain = pick("domain")
  if (domain !== undefined && domain !== null && typeof domain !== "string") throw configError("domain must be a string", domain)
  const keys = pick("publicDataKeysToSyncAcrossSessions")
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string")) {
    throw configError("publicDataKeysToSyncAcrossSessions must be an array of strings", keys)
  }
  const secureCookies =
    options.secureCookies === undefined
      ? process.env.NODE_ENV === "production" && !envFlag(process.env.DISABLE_SECURE_COOKIES)
      : Boolean(options.secureCookies)

  return {
    cookiePrefix,
    isAuthorized: options.isAuthorized,
    storage: options.storage,
    /** Everything the native engine needs except the secret (read lazily, see session.js). */
    engine: {
      cookiePrefix,
      sessionExpiryMinutes: minutes.sessionExpiryMinutes,
      anonSessionExpiryMinutes: minutes.anonSessionExpiryMinutes,
      sameSite: sameSiteOption(pick("sameSite")),
      secureCookies,
      domain: domain || undefined,
      publicDataKeysToSyncAcrossSessions: keys,
      csrfDisabled: envFlag(process.env.DANGEROUSLY_DISABLE_CSRF_PROTECTION),
    },
  }
}

module.exports = { DEFAULTS, resolveOptions, resolveSecret, envFlag, binding }
