"use strict"

// Every implementation under test, wrapped behind one small shape so the
// sections can treat them alike:
//   password contenders: { name, hash(pw) → stored, verify(stored, pw) }
//   sync contenders:     { name, fn(input) → string }
// "ours" is always first; ratios in the report are taken against it.

const crypto = require("crypto")
const path = require("path")

const ROOT = path.join(__dirname, "..")

// The cost parameters secure-password (and so Blitz) uses by default:
// opslimit 2, memlimit 64 MiB → Argon2id t=2, m=65536 KiB, p=1, 32-byte tag.
// The argon2 peers get the same so that all contenders do the same work;
// checks.js proves it by verifying their hashes with ours.
const ARGON2 = { memoryKiB: 65536, timeCost: 2, parallelism: 1, hashLength: 32 }

const AUTH_ERROR = "AuthenticationError"

// Stand-in used only while the public index.js does not exist yet (it is being
// written alongside this harness). It mirrors the documented API on top of the
// raw binding so the harness can run; the report header says which one ran.
function shimFromBinding(binding) {
  const SP = require("secure-password")
  const toBytes = (pw) => (typeof pw === "string" ? Buffer.from(pw) : pw)
  const authError = () => Object.assign(new Error("You must be logged in to access this"), { name: AUTH_ERROR })
  // The binding resolves (rather than rejects) with an Error on failure.
  const unwrap = (value) => {
    if (value instanceof Error) throw value
    return value
  }
  const SecurePassword = {
    VALID: SP.VALID,
    VALID_NEEDS_REHASH: SP.VALID_NEEDS_REHASH,
    INVALID: SP.INVALID,
    INVALID_UNRECOGNIZED_HASH: SP.INVALID_UNRECOGNIZED_HASH,
    async hash(password) {
      if (!password) throw authError()
      return unwrap(await binding.hashPassword(toBytes(password)))
    },
    async verify(hashed, password) {
      if (!hashed || !password) throw authError()
      const verdict = unwrap(await binding.verifyPassword(hashed, toBytes(password)))
      if (verdict === "VALID" || verdict === "VALID_NEEDS_REHASH") return SP[verdict]
      throw authError()
    },
  }
  return {
    SecurePassword,
    generateToken: (n = 32) => binding.generateToken(n),
    hash256: (input = "") => (typeof input === "string" ? binding.hash256String(input) : binding.hash256Bytes(input)),
  }
}

// A missing index.js falls back to the shim; an index.js that exists but
// throws is a real bug and must fail the run, not be papered over.
function loadOurs() {
  const binding = require(path.join(ROOT, "binding.js"))
  let api
  let source = "index.js"
  try {
    api = require(ROOT)
  } catch (err) {
    const missingIndex = err && err.code === "MODULE_NOT_FOUND" && String(err.message).includes(path.join(ROOT, "index.js"))
    const missingRoot = err && err.code === "MODULE_NOT_FOUND" && String(err.message).includes(`'${ROOT}'`)
    if (!missingIndex && !missingRoot) throw err
  }
  if (!api || !api.SecurePassword || typeof api.hash256 !== "function" || typeof api.generateToken !== "function") {
    api = shimFromBinding(binding)
    source = "binding.js (index.js not available yet: thin shim in bench/contenders.js)"
  }
  return { api, binding, source }
}

function loadContenders() {
  const ours = loadOurs()
  const SP = require("secure-password")
  const sp = SP()
  const nodeRsArgon2 = require("@node-rs/argon2")
  const argon2 = require("argon2")
  const blitzAuth = require("@blitzjs/auth")
  const BlitzSecurePassword = require("@blitzjs/auth/secure-password").SecurePassword
  const { nanoid } = require("nanoid")

  // @node-rs/argon2 exports Algorithm as a TypeScript const enum, which does
  // not exist at runtime; 2 is Argon2id.
  const nodeRsOptions = {
    algorithm: 2,
    memoryCost: ARGON2.memoryKiB,
    timeCost: ARGON2.timeCost,
    parallelism: ARGON2.parallelism,
    outputLen: ARGON2.hashLength,
  }
  const argon2Options = {
    type: argon2.argon2id,
    memoryCost: ARGON2.memoryKiB,
    timeCost: ARGON2.timeCost,
    parallelism: ARGON2.parallelism,
    hashLength: ARGON2.hashLength,
  }

  const { SecurePassword } = ours.api
  // Each contender gets the password the way its users would pass it; the
  // Buffer.from for secure-password costs microseconds against a ~100 ms hash.
  const passwords = [
    {
      name: "blitz-auth-native",
      ours: true,
      hash: (pw) => SecurePassword.hash(pw),
      verify: (stored, pw) => SecurePassword.verify(stored, pw),
    },
    {
      name: "secure-password",
      hash: (pw) => sp.hash(Buffer.from(pw)),
      verify: (stored, pw) => sp.verify(Buffer.from(pw), stored),
    },
    {
      name: "@blitzjs/auth SecurePassword",
      hash: (pw) => BlitzSecurePassword.hash(pw),
      verify: (stored, pw) => BlitzSecurePassword.verify(stored, pw),
    },
    {
      name: "@node-rs/argon2",
      hash: (pw) => nodeRsArgon2.hash(pw, nodeRsOptions),
      verify: (stored, pw) => nodeRsArgon2.verify(stored, pw),
    },
    {
      name: "argon2",
      hash: (pw) => argon2.hash(pw, argon2Options),
      verify: (stored, pw) => argon2.verify(stored, pw),
    },
  ]

  const hash256 = [
    { name: "blitz-auth-native hash256", ours: true, fn: ours.api.hash256 },
    { name: "@blitzjs/auth hash256", fn: blitzAuth.hash256 },
    { name: "crypto.createHash", fn: (s) => crypto.createHash("sha256").update(s).digest("hex") },
  ]
  if (typeof crypto.hash === "function") {
    hash256.push({ name: "crypto.hash (one-shot)", fn: (s) => crypto.hash("sha256", s) })
  }
  // Shows what the JS wrapper in index.js costs on top of the native call.
  if (ours.source === "index.js") {
    hash256.push({ name: "binding.hash256String (no wrapper)", fn: ours.binding.hash256String })
  }

  const tokens = [
    { name: "blitz-auth-native generateToken", ours: true, fn: () => ours.api.generateToken() },
    { name: "@blitzjs/auth generateToken", fn: () => blitzAuth.generateToken() },
    { name: "nanoid(32)", fn: () => nanoid(32) },
  ]

  return {
    ours,
    passwords,
    hash256,
    tokens,
    // The raw peer modules, for the agreement checks.
    peers: { SP, sp, nodeRsArgon2, nodeRsOptions, argon2, argon2Options, blitzAuth, BlitzSecurePassword, nanoid },
  }
}

module.exports = { loadContenders, ARGON2, AUTH_ERROR, ROOT }
