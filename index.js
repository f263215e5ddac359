"use strict"
// blitz-auth-native: the server side of @blitzjs/auth, in Rust.
// This file only gathers the public API; see lib/ for the adapters.

const { SecurePassword } = require("./lib/secure-password")
const { generateToken, hash256 } = require("./lib/tokens")
const { AuthenticationError, AuthorizationError, CSRFTokenMismatchError } = require("./lib/errors")
const { binding } = require("./lib/native")
const session = require("./lib/session")
const plugin = require("./lib/plugin")
const { simpleRolesIsAuthorized } = require("./lib/roles")
const { MemoryStorage, RedisStorage } = require("./lib/storage")
const constants = require("./lib/constants")

module.exports = {
  // Passwords and tokens
  SecurePassword,
  generateToken,
  hash256,
  // Sessions
  AuthServerPlugin: plugin.AuthServerPlugin,
  getSession: session.getSession,
  setSession: session.setSession,
  SessionContextClass: session.SessionContext,
  setPublicDataForUser: session.setPublicDataForUser,
  getAllSessionHandlesForUser: session.getAllSessionHandlesForUser,
  simpleRolesIsAuthorized,
  withBlitzAuth: plugin.withBlitzAuth,
  api: plugin.api,
  gSSP: plugin.gSSP,
  getBlitzContext: plugin.getBlitzContext,
  useAuthenticatedBlitzContext: plugin.useAuthenticatedBlitzContext,
  MemoryStorage,
  RedisStorage,
  ...constants,
  // Errors
  AuthenticationError,
  AuthorizationError,
  CSRFTokenMismatchError,
  /** Figures of the native password worker pool (threads, arenas held, queued calls). */
  hashPoolStats: binding.hashPoolStats,
  /** The stable `code` values of errors raised by the native core. */
  ERROR_CODES: Object.freeze(binding.errorCodes()),
}
