"use strict"
// Header names, token separators and cookie-name functions, as @blitzjs/auth exports them (spec §1).

const TOKEN_SEPARATOR = ";"
const HANDLE_SEPARATOR = ":"
const SESSION_TYPE_OPAQUE_TOKEN_SIMPLE = "ots"
const SESSION_TYPE_ANONYMOUS_JWT = "ajwt"
const SESSION_TOKEN_VERSION_0 = "v0"
const HEADER_CSRF = "anti-csrf"
const HEADER_CSRF_ERROR = "csrf-error"
const HEADER_PUBLIC_DATA_TOKEN = "public-data-token"
const HEADER_SESSION_CREATED = "session-created"
const LOCALSTORAGE_PREFIX = "_blitz-"

/** The prefix shared with Blitz's browser client (set by AuthServerPlugin / AuthClientPlugin). */
function cookiePrefix() {
  return /** @type {any} */ (globalThis).__BLITZ_SESSION_COOKIE_PREFIX || "blitz"
}

const COOKIE_ANONYMOUS_SESSION_TOKEN = () => `${cookiePrefix()}_sAnonymousSessionToken`
const COOKIE_SESSION_TOKEN = () => `${cookiePrefix()}_sSessionToken`
const COOKIE_REFRESH_TOKEN = () => `${cookiePrefix()}_sIdRefreshToken`
const COOKIE_CSRF_TOKEN = () => `${cookiePrefix()}_sAntiCsrfToken`
const COOKIE_PUBLIC_DATA_TOKEN = () => `${cookiePrefix()}_sPublicDataToken`
const LOCALSTORAGE_CSRF_TOKEN = () => `${cookiePrefix()}_sAntiCsrfToken`
const LOCALSTORAGE_PUBLIC_DATA_TOKEN = () => `${cookiePrefix()}_sPublicDataToken`

module.exports = {
  TOKEN_SEPARATOR,
  HANDLE_SEPARATOR,
  SESSION_TYPE_OPAQUE_TOKEN_SIMPLE,
  SESSION_TYPE_ANONYMOUS_JWT,
  SESSION_TOKEN_VERSION_0,
  HEADER_CSRF,
  HEADER_CSRF_ERROR,
  HEADER_PUBLIC_DATA_TOKEN,
  HEADER_SESSION_CREATED,
  LOCALSTORAGE_PREFIX,
  COOKIE_ANONYMOUS_SESSION_TOKEN,
  COOKIE_SESSION_TOKEN,
  COOKIE_REFRESH_TOKEN,
  COOKIE_CSRF_TOKEN,
  COOKIE_PUBLIC_DATA_TOKEN,
  LOCALSTORAGE_CSRF_TOKEN,
  LOCALSTORAGE_PUBLIC_DATA_TOKEN,
}
