"use strict"
// Blitz's error classes. Apps, Blitz's RPC layer and its client compare errors
// by class and `name`, so when the app's `blitz` package is installed we throw
// its very classes; otherwise our own with the same `name`, `statusCode` and
// default messages (spec §15).

/** @returns {any} */
function loadBlitz() {
  // Resolved at run time from the app's node_modules; typed as `any` on purpose
  // (the app's `blitz` version decides the classes).
  const name = "blitz"
  try {
    return require(name)
  } catch {
    return null
  }
}

const blitz = process.env.BLITZ_AUTH_NATIVE_NO_BLITZ === "1" ? null : loadBlitz()

/**
 * @param {string} name
 * @param {number} statusCode
 * @param {string} defaultMessage
 */
function makeErrorClass(name, statusCode, defaultMessage) {
  const C = class extends Error {
    /** @param {string} [message] */
    constructor(message = defaultMessage) {
      super(message)
      this.name = name
      this.statusCode = statusCode
    }
    get _clearStack() {
      return true
    }
  }
  Object.defineProperty(C, "name", { value: name })
  return C
}

const AuthenticationError =
  blitz?.AuthenticationError ?? makeErrorClass("AuthenticationError", 401, "You must be logged in to access this")
const AuthorizationError =
  blitz?.AuthorizationError ?? makeErrorClass("AuthorizationError", 403, "You are not authorized to access this")
const CSRFTokenMismatchError = blitz?.CSRFTokenMismatchError ?? makeErrorClass("CSRFTokenMismatchError", 401, "")

/**
 * Node's ERR_INVALID_ARG_TYPE shape, for inputs Blitz passes straight to Node APIs.
 * @param {string} what
 * @param {string} expected
 * @param {unknown} value
 */
function invalidArgType(what, expected, value) {
  const err = new TypeError(`The ${what} must be ${expected}. Received ${describe(value)}`)
  // @ts-ignore
  err.code = "ERR_INVALID_ARG_TYPE"
  return err
}

/** @param {unknown} value */
function describe(value) {
  if (value === null) return "null"
  if (value === undefined) return "undefined"
  if (typeof value === "function") return `function ${value.name || "<anonymous>"}`
  if (typeof value === "object") return `an instance of ${value.constructor?.name ?? "Object"}`
  let shown = String(value)
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`
  if (typeof value === "string") shown = `'${shown}'`
  return `type ${typeof value} (${shown})`
}

module.exports = {
  AuthenticationError,
  AuthorizationError,
  CSRFTokenMismatchError,
  usingBlitzErrors: blitz !== null,
  invalidArgType,
}
