"use strict"
// SecurePassword with Blitz's contract (spec §12): `hash` resolves to the
// base64 of secure-password's 128-byte buffer; `verify` resolves to VALID or
// VALID_NEEDS_REHASH and rejects with AuthenticationError for everything else.
// Argon2 runs on the native worker pool, never on the JS thread (except in
// the *Sync twins, which are for scripts).

const { binding, unwrap } = require("./native")
const { AuthenticationError, invalidArgType } = require("./errors")

/** @returns {any} */
function loadSecurePassword() {
  if (process.env.BLITZ_AUTH_NATIVE_NO_SECURE_PASSWORD === "1") return null
  const name = "secure-password"
  try {
    return require(name)
  } catch {
    return null
  }
}

// When the app still has secure-password installed, reuse its Symbols, so
// `result === SecurePassword.VALID_NEEDS_REHASH` holds whichever package the
// app compares against. Otherwise our own, with the same descriptions.
const lib = loadSecurePassword()

const constants = {
  HASH_BYTES: 128,
  PASSWORD_BYTES_MIN: 0,
  PASSWORD_BYTES_MAX: 4294967295,
  MEMLIMIT_MIN: 8192,
  MEMLIMIT_MAX: 4294966272,
  OPSLIMIT_MIN: 1,
  OPSLIMIT_MAX: 4294967295,
  MEMLIMIT_DEFAULT: 67108864,
  OPSLIMIT_DEFAULT: 2,
}

/** @type {symbol} */
const INVALID_UNRECOGNIZED_HASH = lib?.INVALID_UNRECOGNIZED_HASH ?? Symbol("INVALID_UNRECOGNIZED_HASH")
/** @type {symbol} */
const INVALID = lib?.INVALID ?? Symbol("INVALID")
/** @type {symbol} */
const VALID = lib?.VALID ?? Symbol("VALID")
/** @type {symbol} */
const VALID_NEEDS_REHASH = lib?.VALID_NEEDS_REHASH ?? Symbol("VALID_NEEDS_REHASH")

/**
 * The bytes of a password to hash: strings as UTF-8 (as `Buffer.from` does), bytes as they are.
 * @param {unknown} password
 * @returns {Uint8Array | null}
 */
function passwordBytes(password) {
  if (typeof password === "string") return Buffer.from(password, "utf8")
  if (password instanceof Uint8Array) return password
  return null
}

/** @param {unknown} password */
function hashInput(password) {
  if (!password) throw new AuthenticationError()
  const bytes = passwordBytes(password)
  if (bytes === null) throw invalidArgType('"password" argument', "of type string or an instance of Buffer", password)
  return bytes
}

/**
 * What Blitz does with `Buffer.from(hashedPassword, "base64")`: strings are
 * decoded (leniently, in native code), bytes are taken as they are, anything
 * else cannot be a stored hash.
 * @param {unknown} hashedPassword
 * @returns {string | Uint8Array | null}
 */
function storedInput(hashedPassword) {
  if (typeof hashedPassword === "string" || hashedPassword instanceof Uint8Array) return hashedPassword
  return null
}

/**
 * Blitz's checks before verifying: empty or unusable arguments are a failed login.
 * @param {unknown} hashedPassword
 * @param {unknown} password
 * @returns {[string | Uint8Array, Uint8Array]}
 */
function verifyInput(hashedPassword, password) {
  if (!hashedPassword || !password) throw new AuthenticationError()
  const stored = storedInput(hashedPassword)
  const bytes = passwordBytes(password)
  if (stored === null || bytes === null) throw new AuthenticationError()
  return [stored, bytes]
}

/**
 * @param {string} verdict
 * @returns {symbol}
 */
function toResult(verdict) {
  if (verdict === "VALID") return VALID
  if (verdict === "VALID_NEEDS_REHASH") return VALID_NEEDS_REHASH
  // INVALID, INVALID_UNRECOGNIZED_HASH and MALFORMED all mean "not let in".
  throw new AuthenticationError()
}

const SecurePassword = {
  ...(lib ? pickConstants(lib) : constants),
  INVALID_UNRECOGNIZED_HASH,
  INVALID,
  VALID,
  VALID_NEEDS_REHASH,

  /**
   * Hash a password for storage (argon2id, m=64 MiB, t=2, p=1).
   * @param {string | Buffer | null | undefined} password
   * @returns {Promise<string>}
   */
  async hash(password) {
    return unwrap(binding.hashPassword(hashInput(password)))
  },

  /**
   * Check a password against a stored hash.
   * @param {string | Buffer | null | undefined} hashedPassword
   * @param {string | Buffer | null | undefined} password
   * @returns {Promise<symbol>}
   */
  async verify(hashedPassword, password) {
    const [stored, bytes] = verifyInput(hashedPassword, password)
    let verdict
    try {
      verdict = await unwrap(binding.verifyPassword(stored, bytes))
    } catch {
      // Blitz turns every failure inside verify into AuthenticationError.
      throw new AuthenticationError()
    }
    return toResult(verdict)
  },

  /**
   * Blocking `hash`, for scripts and seeds: it holds the JS thread for the whole hash.
   * @param {string | Buffer | null | undefined} password
   * @returns {string}
   */
  hashSync(password) {
    return binding.hashPasswordSync(hashInput(password))
  },

  /**
   * Blocking `verify`, for scripts.
   * @param {string | Buffer | null | undefined} hashedPassword
   * @param {string | Buffer | null | undefined} password
   * @returns {symbol}
   */
  verifySync(hashedPassword, password) {
    const [stored, bytes] = verifyInput(hashedPassword, password)
    let verdict
    try {
      verdict = binding.verifyPasswordSync(stored, bytes)
    } catch {
      throw new AuthenticationError()
    }
    return toResult(verdict)
  },
}

/** @param {any} sp */
function pickConstants(sp) {
  /** @type {Record<string, number>} */
  const out = {}
  for (const k of Object.keys(constants)) out[k] = typeof sp[k] === "number" ? sp[k] : constants[/** @type {keyof typeof constants} */ (k)]
  return out
}

module.exports = { SecurePassword, usingSecurePasswordSymbols: lib !== null }
