// @ts-check
"use strict"
// A tour of what blitz-auth-native does today: `npm run demo`.
const { SecurePassword, generateToken, hash256, AuthenticationError, hashPoolStats } = require("..")

async function main() {
  console.log("blitz-auth-native demo\n")

  // Passwords, exactly as a Blitz app's signup and login mutations use them.
  const password = "correct horse battery staple"
  let t = process.hrtime.bigint()
  const stored = await SecurePassword.hash(password)
  const ms = (/** @type {bigint} */ since) => (Number(process.hrtime.bigint() - since) / 1e6).toFixed(1)
  console.log(`SecurePassword.hash      -> ${stored.slice(0, 44)}… (${stored.length} chars, ${ms(t)} ms)`)
  console.log(`  decoded                -> ${Buffer.from(stored, "base64").toString("latin1").replace(/\0+$/, "")}`)

  t = process.hrtime.bigint()
  const result = await SecurePassword.verify(stored, password)
  console.log(`SecurePassword.verify    -> ${String(result)} (${ms(t)} ms)`)

  try {
    await SecurePassword.verify(stored, "wrong password")
  } catch (e) {
    const err = /** @type {any} */ (e)
    console.log(`wrong password           -> ${err.name} (${err.statusCode}): ${err.message}`)
    console.log(`  instanceof AuthenticationError: ${e instanceof AuthenticationError}`)
  }

  // Hashes made by secure-password (what Blitz apps already store) verify too.
  const legacy =
    "JGFyZ29uMmlkJHY9MTkkbT02NTUzNix0PTIscD0xJHcxOWd5eVVxcDZ5ajUrRm42VFJ4RWckM0VKL081WGlkTldQMjc2TEpoVDl4SE5OeitlQTlNWWxUdnRJNTdmOU9MVQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
  console.log(`hash stored by Blitz     -> ${String(await SecurePassword.verify(legacy, "mypass"))}`)

  // Four logins at once: they queue on the bounded worker pool, off the event loop.
  t = process.hrtime.bigint()
  await Promise.all(["a", "b", "c", "d"].map((p) => SecurePassword.hash(`pw-${p}`)))
  console.log(`4 concurrent hashes      -> ${ms(t)} ms, pool ${JSON.stringify(hashPoolStats())}`)

  // Tokens for password resets, the way Blitz's templates make them.
  const token = generateToken()
  console.log(`\ngenerateToken()          -> ${token}`)
  console.log(`hash256(token)           -> ${hash256(token)}`)
  console.log(`generateToken(8)         -> ${generateToken(8)}`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
