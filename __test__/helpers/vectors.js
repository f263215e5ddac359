"use strict"
// Loads the vector files produced by the real @blitzjs/auth / secure-password packages.
const fs = require("node:fs")
const path = require("node:path")

/**
 * @param {string} name file name in spec/vectors
 * @returns {any}
 */
function loadVectors(name) {
  return JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "spec", "vectors", name), "utf8"))
}

module.exports = { loadVectors }
