"use strict"
// Loads the compiled addon (through the loader napi-rs generates) with an error
// a user can act on when it has not been built.

/** @type {import("../binding")} */
let binding
try {
  binding = require("../binding.js")
} catch (cause) {
  const err = new Error(
    "blitz-auth-native: the native addon could not be loaded. In a clone of the repository run " +
      "`npm install` (it builds the addon with cargo) or `npm run build`; installed from the registry, " +
      "reinstall the package for this platform (" +
      `${process.platform}-${process.arch}).`,
    { cause },
  )
  // @ts-ignore -- a stable code for callers that branch on it
  err.code = "NATIVE_ADDON_NOT_FOUND"
  throw err
}

/**
 * Async native calls resolve to their value or to an Error carrying the core's
 * code (napi cannot reject with custom codes); turn the latter into a rejection.
 * @template T
 * @param {Promise<T | Error>} p
 * @returns {Promise<T>}
 */
async function unwrap(p) {
  const v = await p
  if (v instanceof Error) throw v
  return v
}

module.exports = { binding, unwrap }
