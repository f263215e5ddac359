"use strict"
// generateToken and hash256 with Blitz's signatures; argument checks here so
// bad input fails with Node's error shapes before reaching native code.

const { binding } = require("./native")
const { invalidArgType } = require("./errors")

const MAX_TOKEN_LENGTH = 1 << 20

// Tokens are cut from a pool of random alphabet characters made natively in
// one call, as nanoid pools its random bytes: one napi crossing per ~64
// tokens instead of one per token. Every character is used once.
const POOL_CHARS = 2048
const POOLED_MAX = 256
let pool = ""
let offset = 0

/** @param {number} n */
function take(n) {
  if (n > POOLED_MAX) return binding.generateToken(n)
  if (offset + n > pool.length) {
    pool = binding.generateToken(POOL_CHARS)
    offset = 0
  }
  const token = pool.slice(offset, offset + n)
  offset += n
  return token
}

/**
 * A random token from nanoid's URL alphabet (`A-Z a-z 0-9 _ -`), 32 characters by default.
 * @param {number} [numberOfCharacters]
 * @returns {string}
 */
function generateToken(numberOfCharacters = 32) {
  if (typeof numberOfCharacters !== "number") {
    throw invalidArgType('"numberOfCharacters" argument', "of type number", numberOfCharacters)
  }
  if (!Number.isInteger(numberOfCharacters) || numberOfCharacters < 0 || numberOfCharacters > MAX_TOKEN_LENGTH) {
    const err = new RangeError(
      `The value of "numberOfCharacters" is out of range. It must be an integer from 0 to ${MAX_TOKEN_LENGTH}. Received ${numberOfCharacters}`,
    )
    // @ts-ignore
    err.code = "ERR_OUT_OF_RANGE"
    throw err
  }
  return take(numberOfCharacters)
}

/**
 * Lower-case hex SHA-256 of a string (UTF-8) or of bytes; `hash256()` hashes "".
 * @param {string | NodeJS.ArrayBufferView} [input]
 * @returns {string}
 */
function hash256(input = "") {
  if (typeof input === "string") return binding.hash256String(input)
  if (input instanceof Uint8Array) return binding.hash256Bytes(input)
  if (ArrayBuffer.isView(input)) {
    return binding.hash256Bytes(new Uint8Array(input.buffer, input.byteOffset, input.byteLength))
  }
  throw invalidArgType('"data" argument', "of type string or an instance of Buffer, TypedArray, or DataView", input)
}

module.exports = { generateToken, hash256, MAX_TOKEN_LENGTH }
