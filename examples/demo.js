// @ts-check
"use strict"
// A tour of what blitz-auth-native does today: `npm run demo`.
const http = require("node:http")
const {
  SecurePassword,
  generateToken,
  hash256,
  AuthenticationError,
  hashPoolStats,
  AuthServerPlugin,
  simpleRolesIsAuthorized,
  api,
  setPublicDataForUser,
  RedisStorage,
} = require("..")

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

  await sessions(stored)
}

/**
 * Sessions on the embedded in-memory store (or on Redis when REDIS_URL is
 * set, under the key prefix "blitz-auth-demo:"), over real HTTP on 127.0.0.1:
 * sign up, log in, read the session, change the role for every session of the
 * user, log out — the way Blitz's browser client talks to a server.
 * @param {string} storedHash
 */
async function sessions(storedHash) {
  const redisUrl = process.env.REDIS_URL
  const storage = redisUrl ? RedisStorage({ url: redisUrl, prefix: "blitz-auth-demo:" }) : undefined
  const where = redisUrl ? `Redis at ${redisUrl.replace(/\/\/[^@]*@/, "//…@")}` : "in-memory store; REDIS_URL=redis://… for Redis"
  AuthServerPlugin({ cookiePrefix: "demo", isAuthorized: simpleRolesIsAuthorized, storage })
  const users = new Map([["ada@example.com", { id: 1, hashedPassword: storedHash, role: "user" }]])

  /** @type {Record<string, (req: any, res: any, ctx: any) => Promise<any>>} */
  const routes = {
    "/login": async (req, res, ctx) => {
      const user = users.get("ada@example.com")
      if (!user) throw new AuthenticationError()
      await SecurePassword.verify(user.hashedPassword, "correct horse battery staple")
      await ctx.session.$create({ userId: user.id, role: user.role })
      return { userId: ctx.session.userId }
    },
    "/me": async (_req, _res, ctx) => ({ userId: ctx.session.userId, publicData: ctx.session.$publicData }),
    "/admin-only": async (_req, _res, ctx) => {
      ctx.session.$authorize("admin")
      return { ok: true }
    },
    "/logout": async (_req, _res, ctx) => {
      await ctx.session.$revoke()
      return { userId: ctx.session.userId }
    },
  }
  const server = http.createServer(
    api(async (req, res, ctx) => {
      const route = routes[req.url ?? ""]
      res.setHeader("content-type", "application/json")
      try {
        res.end(JSON.stringify(route ? await route(req, res, ctx) : { error: "not found" }))
      } catch (e) {
        const err = /** @type {any} */ (e)
        res.statusCode = err.statusCode ?? 500
        res.end(JSON.stringify({ error: err.name }))
      }
    }),
  )
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)))
  const { port } = /** @type {import("node:net").AddressInfo} */ (server.address())

  // A tiny cookie jar, standing in for the browser.
  /** @type {Map<string, string>} */
  const jar = new Map()
  /** @param {string} path @param {string} method */
  const call = async (path, method = "GET") => {
    const headers = /** @type {Record<string, string>} */ ({ cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ") })
    const csrf = jar.get("demo_sAntiCsrfToken")
    if (csrf) headers["anti-csrf"] = csrf
    const r = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers })
    for (const c of r.headers.getSetCookie()) {
      const [pair] = c.split(";")
      const [name, value] = [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]
      if (value) jar.set(name, value)
      else jar.delete(name)
    }
    const body = await r.json()
    console.log(`${method.padEnd(4)} ${path.padEnd(12)} -> ${r.status} ${JSON.stringify(body)}`)
    return body
  }

  console.log(`\nsessions (${where}, real HTTP on 127.0.0.1)`)
  await call("/me")
  console.log(`  cookies: ${[...jar.keys()].join(", ")}`)
  await call("/login", "POST")
  await call("/me")
  await call("/admin-only")
  await setPublicDataForUser(1, { role: "admin" })
  console.log("setPublicDataForUser(1, { role: 'admin' })")
  await call("/admin-only")
  await call("/me")
  await call("/logout", "POST")
  await call("/me")
  server.close()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
