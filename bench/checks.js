"use strict"

// Agreement checks that run before anything is timed. A benchmark of code that
// produces different answers (or does less work) than its peers is
// meaningless, so any failure here aborts the run with a non-zero exit.

const crypto = require("crypto")
const { ARGON2, AUTH_ERROR } = require("./contenders")

const ALPHABET = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict"
const PHC_PREFIX = `$argon2id$v=19$m=${ARGON2.memoryKiB},t=${ARGON2.timeCost},p=${ARGON2.parallelism}$`
const HASH_BYTES = 128

// The peers' PHC strings, laid out the way secure-password stores them, so
// that ours can verify them: that shows they use the same algorithm and cost.
const toSecurePasswordLayout = (phc) => {
  const out = Buffer.alloc(HASH_BYTES)
  out.write(phc, "latin1")
  return out.toString("base64")
}

const sortedChars = (strings) => [...new Set(strings.join(""))].sort().join("")

async function rejectsWith(promise, name) {
  try {
    await promise
    return "resolved"
  } catch (err) {
    return err && err.name === name ? true : `threw ${err && err.name}`
  }
}

async function runChecks({ ours, peers, password, hash256Inputs }) {
  const { SecurePassword, hash256, generateToken } = ours.api
  const { SP, sp, nodeRsArgon2, nodeRsOptions, argon2, argon2Options, blitzAuth, BlitzSecurePassword, nanoid } = peers
  const results = []
  // `ok` is true, false, or a string saying what went wrong instead.
  const check = (name, ok, detail = "") => {
    const reason = typeof ok === "string" ? ok : ""
    results.push({ name, ok: ok === true, detail: [detail, reason].filter(Boolean).join("; ") })
  }
  // A throwing check is a failed check, with the error kept for the report.
  const attempt = async (name, fn) => {
    try {
      await fn()
    } catch (err) {
      check(name, false, `threw ${err && err.stack ? err.stack.split("\n")[0] : err}`)
    }
  }

  // --- SecurePassword: same stored format, and cross-verification both ways.
  let oursHash
  await attempt("ours: hash format", async () => {
    oursHash = await SecurePassword.hash(password)
    const bytes = Buffer.from(oursHash, "base64")
    const text = bytes.toString("latin1")
    const nul = text.indexOf("\0")
    check(
      "ours: hash is base64 of a 128-byte NUL-padded $argon2id$v=19$m=65536,t=2,p=1$ string",
      typeof oursHash === "string" && oursHash.length === 172 && bytes.length === HASH_BYTES && text.startsWith(PHC_PREFIX) && nul > 0 && /^\0+$/.test(text.slice(nul)),
      `${oursHash.length} chars, ${bytes.length} bytes, ${JSON.stringify(text.slice(0, nul))}`,
    )
  })
  await attempt("secure-password verifies ours", async () => {
    const verdict = await sp.verify(Buffer.from(password), Buffer.from(oursHash, "base64"))
    check("secure-password verifies a hash made by ours → VALID", verdict === SP.VALID, String(verdict))
  })
  await attempt("Blitz verifies ours", async () => {
    const verdict = await BlitzSecurePassword.verify(oursHash, password)
    check("@blitzjs/auth SecurePassword.verify accepts a hash made by ours → VALID", verdict === SP.VALID, String(verdict))
  })
  await attempt("ours verifies secure-password", async () => {
    const theirs = await sp.hash(Buffer.from(password))
    const verdict = await SecurePassword.verify(theirs.toString("base64"), password)
    check("ours verifies a hash made by secure-password → VALID", verdict === SecurePassword.VALID && verdict === SP.VALID, String(verdict))
  })
  await attempt("ours verifies Blitz", async () => {
    const theirs = await BlitzSecurePassword.hash(password)
    const verdict = await SecurePassword.verify(theirs, password)
    check("ours verifies a hash made by @blitzjs/auth SecurePassword.hash → VALID", verdict === SP.VALID, String(verdict))
  })
  await attempt("ours rejects a wrong password", async () => {
    check(`ours rejects a wrong password with ${AUTH_ERROR}`, await rejectsWith(SecurePassword.verify(oursHash, `${password}!`), AUTH_ERROR))
  })
  // Same work: the argon2 peers must produce the same parameters and their
  // tags must verify under ours, otherwise the latency comparison is unfair.
  for (const [name, make] of [
    ["@node-rs/argon2", () => nodeRsArgon2.hash(password, nodeRsOptions)],
    ["argon2", () => argon2.hash(password, argon2Options)],
  ]) {
    await attempt(`${name} same params`, async () => {
      const phc = await make()
      const verdict = phc.startsWith(PHC_PREFIX) ? await SecurePassword.verify(toSecurePasswordLayout(phc), password) : undefined
      check(`${name} hashes with ${PHC_PREFIX.slice(0, -1)} and ours verifies them → VALID`, verdict === SP.VALID, phc.slice(0, PHC_PREFIX.length + 4))
    })
  }

  // --- hash256: identical hex digests for every input the benchmark uses.
  await attempt("hash256", async () => {
    const inputs = ["", "pässwörd ✓ 🔑", ...hash256Inputs]
    const impls = { ours: hash256, "@blitzjs/auth": blitzAuth.hash256 }
    if (typeof crypto.hash === "function") impls["crypto.hash"] = (s) => crypto.hash("sha256", s)
    let mismatch = ""
    for (const s of inputs) {
      const expected = crypto.createHash("sha256").update(s).digest("hex")
      const wrong = Object.keys(impls).filter((name) => impls[name](s) !== expected)
      if (wrong.length) {
        mismatch = `${wrong.join(", ")} differ(s) from crypto.createHash on ${JSON.stringify(s)}`
        break
      }
    }
    check(`hash256 equals ${Object.keys(impls).slice(1).join(", ")} and crypto.createHash on ${inputs.length} inputs`, mismatch === "", mismatch)
    check("hash256() with no argument equals @blitzjs/auth hash256()", hash256() === blitzAuth.hash256(), `${hash256()} vs ${blitzAuth.hash256()}`)
  })

  // --- generateToken: same lengths and the same 64-character alphabet. With
  // 4000 tokens × 32 chars every symbol shows up ~2000 times, so a missing or
  // extra character is practically certain to be noticed.
  await attempt("generateToken", async () => {
    const lengths = [0, 1, 8, 21, 32, 64, 100]
    const badLengths = lengths.filter((n) => generateToken(n).length !== blitzAuth.generateToken(n).length || generateToken(n).length !== n)
    check(`generateToken(n) length equals @blitzjs/auth for n = ${lengths.join(", ")}`, badLengths.length === 0, badLengths.length ? `differs for n = ${badLengths.join(", ")}` : "")
    check("generateToken() defaults to 32 characters, like @blitzjs/auth", generateToken().length === 32 && blitzAuth.generateToken().length === 32)
    const sample = (make) => sortedChars(Array.from({ length: 4000 }, make))
    const expected = sortedChars([ALPHABET])
    const oursChars = sample(() => generateToken())
    const blitzChars = sample(() => blitzAuth.generateToken())
    const nanoidChars = sample(() => nanoid(32))
    check("generateToken alphabet (4000 samples) equals @blitzjs/auth's and nanoid's URL alphabet", oursChars === expected && blitzChars === expected && nanoidChars === expected, oursChars === expected ? "" : `ours: ${oursChars}`)
  })

  return results
}

module.exports = { runChecks, ALPHABET, PHC_PREFIX }
