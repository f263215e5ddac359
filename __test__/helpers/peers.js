"use strict"
// The real packages we compare against. Required by name at run time so their
// own type declarations (which need React and other app-level types) stay out
// of our type check; in the tests they are plain `any`.

/** @param {string} name @returns {any} */
const load = (name) => require(name)

module.exports = {
  /** @type {any} */ blitz: load("blitz"),
  /** @type {any} */ blitzAuth: load("@blitzjs/auth"),
  /** @type {any} */ securePassword: load("secure-password"),
}
