"use strict"
// blitz-auth-native: the server side of @blitzjs/auth, in Rust.
// This file only gathers the public API; see lib/ for the adapters.

const { SecurePassword } = require("./lib/secure-password")
const { generateToken, hash256 } = require("./lib/tokens")
const { AuthenticationError, AuthorizationError, CSRFTokenMismatchError } = require("./lib/errors")
const { binding } = require("./lib/native")

module.exports = {
  SecurePassword,
  generateToken,
  hash256,
  AuthenticationError,
  AuthorizationError,
  CSRFTokenMismatchError,
  /** Figures of the native password worker pool (threads, arenas held, queued calls). */
  hashPoolStats: binding.hashPoolStats,
  /** The stable `code` values of errors raised by the native core. */
  ERROR_CODES: Object.freeze(binding.errorCodes()),
}
