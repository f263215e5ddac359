// @ts-check
"use strict"
// Without `blitz` and `secure-password` installed, the package brings its own
// error classes and Symbols with the same names, status codes and descriptions.
const test = require("node:test")
const assert = require("node:assert/strict")
const { execFileSync } = require("node:child_process")
const path = require("node:path")

const script = `
const { SecurePassword, AuthenticationError, AuthorizationError, CSRFTokenMismatchError } = require(${JSON.stringify(path.join(__dirname, ".."))})
;(async () => {
  const out = {}
  out.sameSymbol = SecurePassword.VALID === require("secure-password").VALID
  out.desc = SecurePassword.VALID.description
  const h = await SecurePassword.hash("pw")
  out.valid = (await SecurePassword.verify(h, "pw")) === SecurePassword.VALID
  try { await SecurePassword.verify(h, "no") } catch (e) {
    out.err = { name: e.name, statusCode: e.statusCode, message: e.message, own: e instanceof AuthenticationError,
      blitz: e instanceof require("blitz").AuthenticationError, clear: e._clearStack, keys: Object.keys(e) }
  }
  out.authz = { name: new AuthorizationError().name, statusCode: new AuthorizationError().statusCode, message: new AuthorizationError().message }
  out.csrf = { name: new CSRFTokenMismatchError().name, statusCode: new CSRFTokenMismatchError().statusCode }
  console.log(JSON.stringify(out))
})()
`

test("own error classes and Symbols when blitz and secure-password are absent", () => {
  const out = JSON.parse(
    execFileSync(process.execPath, ["-e", script], {
      env: { ...process.env, BLITZ_AUTH_NATIVE_NO_BLITZ: "1", BLITZ_AUTH_NATIVE_NO_SECURE_PASSWORD: "1" },
      encoding: "utf8",
    }),
  )
  assert.equal(out.sameSymbol, false)
  assert.equal(out.desc, "VALID")
  assert.equal(out.valid, true)
  assert.deepEqual(out.err, {
    name: "AuthenticationError",
    statusCode: 401,
    message: "You must be logged in to access this",
    own: true,
    blitz: false,
    clear: true,
    keys: ["name", "statusCode"],
  })
  assert.deepEqual(out.authz, { name: "AuthorizationError", statusCode: 403, message: "You are not authorized to access this" })
  assert.deepEqual(out.csrf, { name: "CSRFTokenMismatchError", statusCode: 401 })
})

test("a missing native addon is a clear, coded error", () => {
  const r = require("node:child_process").spawnSync(
    process.execPath,
    ["-e", `require(${JSON.stringify(path.join(__dirname, "..", "lib", "native.js"))})`],
    { env: { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: "/nonexistent/blitz-auth-native.node" }, encoding: "utf8" },
  )
  assert.notEqual(r.status, 0)
  assert.match(r.stderr, /NATIVE_ADDON_NOT_FOUND/)
  assert.match(r.stderr, /npm run build/)
})
