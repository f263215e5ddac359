"use strict"

// Sessions over real HTTP on Redis: a `node:http` server per contender, each in
// its own child process, driven by autocannon from this (parent) process on
// loopback. Used by run.js (section "http"); also the child-process entry
// point (`node bench/http.js --serve=<contender>`, forked with an IPC channel).
//
// Contenders (one child process each, all on the same Redis, each under its own
// key prefix, deleted at the end):
//   ours     require("..").AuthServerPlugin({ storage: RedisStorage({ url, prefix }) })
//            and getSession(req, res).
//   Blitz    require("@blitzjs/auth").AuthServerPlugin({ storage: <Redis
//            SessionConfigMethods over ioredis, below> }) and its getSession(req, res).
//   express  express-session + connect-redis (node-redis client), resave: false,
//            saveUninitialized: true (so a first visit creates and stores a session).
//
// Scenarios: first visit (GET, no cookie) and authenticated read (GET with the
// cookies of a session logged in once per contender at setup). Every handler
// answers a tiny JSON body `{"userId":…}`.
//
// Per run: autocannon for `duration` seconds; the child reports its
// process.cpuUsage() (all threads: JS, libuv, the addon's Redis I/O) and its
// own request count over IPC before and after, giving server CPU µs per
// request; Redis' own CPU (INFO cpu) is measured over the same window.
// Contenders are interleaved within each round (first mover rotated) and the
// ratios are paired per round, then the median is reported.

const http = require("http")
const path = require("path")
const { fork } = require("child_process")
const { performance } = require("perf_hooks")

const { summarize, rotate } = require("./stats")
const { table, num, ratio, cpuSnapshot, foreignCpuShare } = require("./report")

const ROOT = path.join(__dirname, "..")
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379"
const COOKIE_PREFIX = "bench"
const USER = Object.freeze({ userId: 1, role: "user" })
// User whose 1,000 sessions setPublicDataForUser updates (ours only).
const MANY_USER = 2
const MANY_SESSIONS = 1000
// The issue's targets, as ratios in the same run.
const TARGETS = { authRead: 1.5, firstVisit: 2, cpuUsPerRequest: 45, setPublicDataMs: 5 }

const CONTENDERS = [
  { key: "ours", name: "blitz-auth-native + RedisStorage", ours: true },
  { key: "blitz", name: "@blitzjs/auth 3.0.2 + SessionConfigMethods (ioredis)" },
  { key: "express", name: "express-session + connect-redis (node-redis)" },
]
const SCENARIOS = [
  { key: "first", title: "first visit (GET, no cookie)" },
  { key: "auth", title: "authenticated read (GET, logged-in cookie)" },
]

const progress = (text) => process.stderr.write(text)

// ===================================================================== child

/**
 * Blitz's SessionConfigMethods on Redis over ioredis, as the community gist
 * does it: each session one JSON string (Dates revived on read) expiring with
 * the session, plus a set of handles per user.
 * @param {import("ioredis").Redis} redis
 * @param {string} prefix
 */
function ioredisSessionStorage(redis, prefix) {
  const sessionKey = (handle) => `${prefix}session:${handle}`
  const userKey = (userId) => `${prefix}user:${userId}`
  const revive = (text) => {
    if (!text) return null
    const row = JSON.parse(text)
    if (row.expiresAt) row.expiresAt = new Date(row.expiresAt)
    return row
  }
  const ttlMs = (row) => (row.expiresAt ? Math.max(1, new Date(row.expiresAt).getTime() - Date.now()) : 0)
  const write = (multi, row) => {
    const ms = ttlMs(row)
    if (ms) multi.set(sessionKey(row.handle), JSON.stringify(row), "PX", ms)
    else multi.set(sessionKey(row.handle), JSON.stringify(row))
  }
  return {
    getSession: async (handle) => revive(await redis.get(sessionKey(handle))),
    getSessions: async (userId) => {
      const handles = await redis.smembers(userKey(userId))
      if (handles.length === 0) return []
      const rows = await redis.mget(handles.map(sessionKey))
      return rows.map(revive).filter(Boolean)
    },
    createSession: async (session) => {
      const multi = redis.multi()
      write(multi, session)
      if (session.userId !== null && session.userId !== undefined) multi.sadd(userKey(session.userId), session.handle)
      await multi.exec()
      return session
    },
    updateSession: async (handle, session) => {
      const current = revive(await redis.get(sessionKey(handle)))
      if (!current) return undefined
      const row = { ...current, ...session, handle }
      const multi = redis.multi()
      write(multi, row)
      if (row.userId !== null && row.userId !== undefined) multi.sadd(userKey(row.userId), handle)
      await multi.exec()
      return row
    },
    deleteSession: async (handle) => {
      const current = revive(await redis.get(sessionKey(handle)))
      const multi = redis.multi().del(sessionKey(handle))
      if (current && current.userId !== null && current.userId !== undefined) multi.srem(userKey(current.userId), handle)
      await multi.exec()
      return current
    },
  }
}

const sendJson = (res, body) => {
  res.setHeader("content-type", "application/json")
  res.end(JSON.stringify(body))
}

/** The request handler of one contender: `/login` logs in, anything else reads. */
async function makeHandler(kind, prefix, state) {
  const fail = (res, err) => {
    state.errors++
    if (!res.headersSent) res.statusCode = err && err.statusCode ? err.statusCode : 500
    res.end(String(err && err.message))
  }
  if (kind === "ours") {
    const lib = require(ROOT)
    lib.AuthServerPlugin({
      cookiePrefix: COOKIE_PREFIX,
      storage: lib.RedisStorage({ url: REDIS_URL, prefix }),
      isAuthorized: lib.simpleRolesIsAuthorized,
    })
    state.lib = lib
    return async (req, res) => {
      try {
        const session = await lib.getSession(req, res)
        if (req.url === "/login") await session.$create(USER)
        state.requests++
        sendJson(res, { userId: session.userId })
      } catch (err) {
        fail(res, err)
      }
    }
  }
  if (kind === "blitz") {
    const { Redis } = require("ioredis")
    const blitz = require("@blitzjs/auth")
    const redis = new Redis(REDIS_URL, { lazyConnect: true })
    await redis.connect()
    state.close = () => redis.quit()
    blitz.AuthServerPlugin({
      cookiePrefix: COOKIE_PREFIX,
      storage: ioredisSessionStorage(redis, prefix),
      isAuthorized: blitz.simpleRolesIsAuthorized,
    })
    return async (req, res) => {
      try {
        const session = await blitz.getSession(req, res)
        if (req.url === "/login") await session.$create(USER)
        state.requests++
        sendJson(res, { userId: session.userId })
      } catch (err) {
        fail(res, err)
      }
    }
  }
  if (kind === "express") {
    const session = require("express-session")
    const { RedisStore } = require("connect-redis")
    const { createClient } = require("redis")
    const client = createClient({ url: REDIS_URL })
    client.on("error", (err) => process.stderr.write(`express child: redis ${err.message}\n`))
    await client.connect()
    state.close = () => client.quit()
    const middleware = session({
      store: new RedisStore({ client, prefix }),
      secret: "bench-http-secret-0123456789abcdef",
      resave: false,
      saveUninitialized: true,
      // Blitz's default session lifetime (30 days), so the store keeps a TTL
      // like the others'.
      cookie: { httpOnly: true, sameSite: "lax", secure: false, maxAge: 30 * 24 * 3600 * 1000 },
    })
    return (req, res) =>
      middleware(req, res, (err) => {
        if (err) return fail(res, err)
        if (req.url === "/login") req.session.userId = USER.userId
        state.requests++
        sendJson(res, { userId: req.session.userId ?? null })
      })
  }
  throw new Error(`unknown contender ${kind}`)
}

/** Creates `n` logged-in sessions of one user through our API (web Request path). */
async function createManySessions(lib, userId, n) {
  const one = async () => {
    const session = await lib.getSession(new Request("http://127.0.0.1/login", { method: "POST" }))
    await session.$create({ userId, role: "user" })
  }
  for (let done = 0; done < n; done += 50) await Promise.all(Array.from({ length: Math.min(50, n - done) }, one))
  return (await lib.getAllSessionHandlesForUser(userId)).length
}

async function serve(kind, prefix) {
  const state = { requests: 0, errors: 0, lib: null, close: null }
  const handler = await makeHandler(kind, prefix, state)
  const server = http.createServer(handler)
  server.keepAliveTimeout = 60_000
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  const snapshot = () => {
    const cpu = process.cpuUsage()
    return { cpuUs: cpu.user + cpu.system, requests: state.requests, errors: state.errors }
  }
  process.on("message", async (msg) => {
    try {
      if (msg.type === "snapshot") process.send({ id: msg.id, ...snapshot() })
      else if (msg.type === "many-setup") {
        const count = await createManySessions(state.lib, MANY_USER, MANY_SESSIONS)
        process.send({ id: msg.id, count })
      } else if (msg.type === "many-call") {
        const start = performance.now()
        await state.lib.setPublicDataForUser(MANY_USER, { plan: `p${msg.n}` })
        const ms = performance.now() - start
        process.send({ id: msg.id, ms })
      } else if (msg.type === "many-check") {
        const handles = await state.lib.getAllSessionHandlesForUser(MANY_USER)
        process.send({ id: msg.id, count: handles.length })
      } else if (msg.type === "stop") {
        server.close()
        server.closeAllConnections()
        if (state.close) await state.close()
        process.send({ id: msg.id, ...snapshot() })
        process.disconnect()
        // The addon's Redis pool keeps threads alive; leave explicitly.
        setImmediate(() => process.exit(0))
      }
    } catch (err) {
      process.send({ id: msg.id, error: String(err && err.stack ? err.stack : err) })
    }
  })
  process.send({ type: "ready", port: server.address().port })
}

// ==================================================================== parent

/** A forked server with a promise-based request/answer channel. */
class ServerChild {
  constructor(contender, prefix) {
    this.contender = contender
    this.prefix = prefix
    this.nextId = 1
    this.pending = new Map()
    this.cpuSeconds = 0
    this.stderr = ""
  }

  start() {
    return new Promise((resolve, reject) => {
      this.child = fork(__filename, [`--serve=${this.contender.key}`, `--prefix=${this.prefix}`], {
        env: { ...process.env, REDIS_URL },
        stdio: ["ignore", "inherit", "pipe", "ipc"],
      })
      this.child.stderr.on("data", (d) => (this.stderr += d))
      this.child.on("error", reject)
      this.child.on("exit", (code) => {
        for (const { reject: rej } of this.pending.values()) rej(new Error(`${this.contender.key} server exited (${code}): ${this.stderr.trim().split("\n").slice(-3).join(" ")}`))
        this.pending.clear()
        if (!this.port) reject(new Error(`${this.contender.key} server exited before listening (${code}): ${this.stderr.trim().split("\n").slice(-5).join(" ")}`))
      })
      this.child.on("message", (msg) => {
        if (msg.type === "ready") {
          this.port = msg.port
          resolve(this)
          return
        }
        const waiter = this.pending.get(msg.id)
        if (!waiter) return
        this.pending.delete(msg.id)
        if (msg.error) waiter.reject(new Error(`${this.contender.key} server: ${msg.error}`))
        else waiter.resolve(msg)
      })
    })
  }

  ask(type, extra = {}) {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.child.send({ type, id, ...extra })
    })
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return
    const last = await this.ask("stop").catch(() => null)
    if (last) this.cpuSeconds = last.cpuUs / 1e6
    await new Promise((resolve) => (this.child.exitCode !== null ? resolve() : this.child.once("exit", resolve)))
  }

  get url() {
    return `http://127.0.0.1:${this.port}/`
  }
}

/** One request with Node's http client; resolves status, body and Set-Cookie. */
function request(url, { method = "GET", cookie } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: cookie ? { cookie } : {} }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (d) => (body += d))
      res.on("end", () => resolve({ status: res.statusCode, body, setCookie: res.headers["set-cookie"] || [] }))
    })
    req.on("error", reject)
    req.end()
  })
}

/** The Cookie header a browser would send after these Set-Cookie headers. */
function cookieHeader(setCookies) {
  const jar = new Map()
  for (const line of setCookies) {
    const pair = line.split(";")[0]
    const i = pair.indexOf("=")
    const name = pair.slice(0, i).trim()
    const value = pair.slice(i + 1).trim()
    const expired = /;\s*expires=Thu, 01 Jan 1970/i.test(line) || /;\s*max-age=0\b/i.test(line)
    if (!value || expired) jar.delete(name)
    else jar.set(name, value)
  }
  return [...jar].map(([k, v]) => `${k}=${v}`).join("; ")
}

/** Log in once (POST /login, no cookie) and check the cookie reads back as user 1. */
async function login(server) {
  const res = await request(`${server.url}login`, { method: "POST" })
  if (res.status !== 200) throw new Error(`${server.contender.key}: login answered ${res.status}: ${res.body}`)
  const cookie = cookieHeader(res.setCookie)
  const back = await request(server.url, { cookie })
  if (back.status !== 200 || JSON.parse(back.body).userId !== USER.userId) {
    throw new Error(`${server.contender.key}: logged-in cookie reads back ${back.status} ${back.body}`)
  }
  const first = await request(server.url)
  if (first.status !== 200 || JSON.parse(first.body).userId !== null || first.setCookie.length === 0) {
    throw new Error(`${server.contender.key}: first visit answered ${first.status} ${first.body} with ${first.setCookie.length} Set-Cookie`)
  }
  return cookie
}

// ------------------------------------------------------------------ Redis side

async function redisClient() {
  const { createClient } = require("redis")
  const client = createClient({ url: REDIS_URL })
  client.on("error", () => {})
  await client.connect()
  return client
}

function parseInfo(text) {
  const out = {}
  for (const line of text.split("\n")) {
    const i = line.indexOf(":")
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim()
  }
  return out
}

async function redisCpuSeconds(client) {
  const info = parseInfo(await client.info("cpu"))
  return Number(info.used_cpu_user) + Number(info.used_cpu_sys) + Number(info.used_cpu_user_children || 0) + Number(info.used_cpu_sys_children || 0)
}

async function deleteKeys(client, pattern) {
  let deleted = 0
  let batch = []
  for await (const chunk of client.scanIterator({ MATCH: pattern, COUNT: 1000 })) {
    for (const key of Array.isArray(chunk) ? chunk : [chunk]) batch.push(key)
    if (batch.length >= 1000) {
      deleted += await client.unlink(batch)
      batch = []
    }
  }
  if (batch.length) deleted += await client.unlink(batch)
  return deleted
}

// ------------------------------------------------------------------ load

function autocannonRun(opts) {
  const autocannon = require("autocannon")
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)))
  })
}

/** One timed run of one contender in one scenario. */
async function run(server, scenario, config, redis, cookie, seconds) {
  const before = await server.ask("snapshot")
  const redisBefore = await redisCpuSeconds(redis)
  const result = await autocannonRun({
    url: server.url,
    method: "GET",
    connections: config.httpConnections,
    pipelining: 1,
    duration: seconds,
    headers: scenario.key === "auth" ? { cookie } : {},
  })
  const redisAfter = await redisCpuSeconds(redis)
  const after = await server.ask("snapshot")
  const served = after.requests - before.requests
  const failed = result.errors + result.timeouts + result.non2xx + (after.errors - before.errors)
  if (failed > 0) {
    throw new Error(`${server.contender.key} ${scenario.key}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts, ${after.errors - before.errors} handler errors`)
  }
  return {
    reqPerSec: result.requests.total / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: result.requests.total,
    served,
    cpuUsPerRequest: (after.cpuUs - before.cpuUs) / served,
    redisCpuUsPerRequest: ((redisAfter - redisBefore) * 1e6) / served,
    seconds: result.duration,
  }
}

/**
 * Watches Redis with MONITOR (a raw loopback socket) while `fn` runs and
 * counts the commands clients sent, apart from those run inside scripts
 * (MONITOR marks those "lua"). Only used for an untimed call: MONITOR slows
 * Redis down.
 */
async function monitorCommands(pid, fn) {
  const net = require("net")
  // The child's own connections to Redis (Redis is shared: other clients'
  // commands must not be counted). Linux `ss`; without it, everything counts.
  let ports = null
  try {
    const lines = require("child_process").execFileSync("ss", ["-Htnp"], { encoding: "utf8" }).split("\n")
    ports = new Set(lines.filter((l) => l.includes(`pid=${pid},`)).map((l) => l.trim().split(/\s+/)[3]))
  } catch {
    ports = null
  }
  let current = null // client of the last top-level command; script lines follow it
  const { hostname, port } = new URL(REDIS_URL)
  const socket = net.connect(Number(port) || 6379, hostname || "127.0.0.1")
  let buffer = ""
  const sent = {}
  const inScripts = {}
  await new Promise((resolve, reject) => {
    socket.once("error", reject)
    socket.on("data", (d) => {
      buffer += d
      let i
      while ((i = buffer.indexOf("\r\n")) >= 0) {
        const line = buffer.slice(0, i)
        buffer = buffer.slice(i + 2)
        if (line === "+OK") resolve()
        const m = /^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line)
        if (!m) continue
        if (m[1] !== "lua") current = m[1]
        if (ports && !ports.has(current)) continue
        const target = m[1] === "lua" ? inScripts : sent
        const cmd = m[2].toLowerCase()
        target[cmd] = (target[cmd] || 0) + 1
      }
    })
    socket.write("MONITOR\r\n")
  })
  const out = await fn()
  await new Promise((resolve) => setTimeout(resolve, 100))
  socket.destroy()
  return { out, sent, inScripts, filtered: !!ports }
}

async function setPublicDataForUserRuns(ours, reps) {
  const { count } = await ours.ask("many-setup")
  if (count !== MANY_SESSIONS) throw new Error(`ours: expected ${MANY_SESSIONS} sessions of user ${MANY_USER}, found ${count}`)
  const samples = []
  // The first call loads the script and warms up; not timed.
  for (let n = 0; n < reps + 1; n++) {
    const { ms } = await ours.ask("many-call", { n })
    if (n > 0) samples.push(ms)
  }
  // One more, untimed, under MONITOR: what it sends to Redis.
  const watched = await monitorCommands(ours.child.pid, () => ours.ask("many-call", { n: reps + 1 }))
  const check = await ours.ask("many-check")
  return { sessions: count, after: check.count, samples, summary: summarize(samples), sent: watched.sent, inScripts: watched.inScripts, monitorFiltered: watched.filtered }
}

// ------------------------------------------------------------------ section

let httpChildCpuSeconds = 0

async function httpSection(config, number = 10) {
  const runTag = `bench-http:${process.pid}:${Date.now()}:`
  const redis = await redisClient()
  const servers = CONTENDERS.map((c) => new ServerChild(c, `${runTag}${c.key}:`))
  const startSnapshot = cpuSnapshot()
  const redisCpuStart = await redisCpuSeconds(redis)
  const runs = {} // runs[scenario][contender] = [run per round]
  for (const s of SCENARIOS) runs[s.key] = Object.fromEntries(CONTENDERS.map((c) => [c.key, []]))
  let many = null
  try {
    await Promise.all(servers.map((s) => s.start()))
    const cookies = {}
    for (const s of servers) cookies[s.contender.key] = await login(s)
    progress(`  servers up on ports ${servers.map((s) => `${s.contender.key} ${s.port}`).join(", ")}; warm-up\n`)

    // Untimed warm-up (JIT, connection pools, Redis scripts), every contender and scenario.
    for (const scenario of config.httpWarmup > 0 ? SCENARIOS : []) {
      for (const s of servers) await run(s, scenario, config, redis, cookies[s.contender.key], config.httpWarmup)
    }
    for (const s of servers) await deleteKeys(redis, `${s.prefix}*`).then(() => login(s).then((c) => (cookies[s.contender.key] = c)))

    for (let round = 0; round < config.httpRounds; round++) {
      for (const [si, scenario] of rotate(SCENARIOS, round).entries()) {
        for (const index of rotate(servers.map((_, i) => i), round + si)) {
          const s = servers[index]
          const r = await run(s, scenario, config, redis, cookies[s.contender.key], config.httpDuration)
          runs[scenario.key][s.contender.key].push(r)
          progress(`  round ${round + 1} ${scenario.key} ${s.contender.key}: ${Math.round(r.reqPerSec)} req/s, ${r.cpuUsPerRequest.toFixed(1)} µs CPU/req\n`)
        }
        // First visits pile up express-session rows; drop them between runs
        // (untimed) so every run starts from the same Redis.
        if (scenario.key === "first") await deleteKeys(redis, `${runTag}express:*`).then(() => login(servers[2]).then((c) => (cookies.express = c)))
      }
    }

    progress(`  setPublicDataForUser over ${MANY_SESSIONS} sessions (${config.httpManyReps} calls)\n`)
    many = await setPublicDataForUserRuns(servers[0], config.httpManyReps)
  } finally {
    for (const s of servers) {
      await s.stop().catch(() => {})
      httpChildCpuSeconds += s.cpuSeconds
    }
    const deleted = await deleteKeys(redis, `${runTag}*`).catch(() => NaN)
    progress(`  removed ${deleted} Redis keys under ${runTag}\n`)
  }
  const redisCpu = (await redisCpuSeconds(redis)) - redisCpuStart
  await redis.quit()
  const ownChildren = servers.reduce((sum, s) => sum + s.cpuSeconds, 0) + redisCpu
  const share = foreignCpuShare(startSnapshot, cpuSnapshot(), ownChildren)
  return render({ config, runs, many, share, number })
}

// ------------------------------------------------------------------ report

/** Median of the per-round paired ratios ours/peer (oriented so > 1 = ours better). */
function pairedRatio(oursRuns, peerRuns, pick, higherIsBetter) {
  const ratios = oursRuns.map((r, i) => (higherIsBetter ? pick(r) / pick(peerRuns[i]) : pick(peerRuns[i]) / pick(r)))
  return summarize(ratios)
}

function render({ config, runs, many, share, number }) {
  const rows = []
  const blocks = []
  const ratios = {}
  for (const scenario of SCENARIOS) {
    const r = runs[scenario.key]
    ratios[scenario.key] = {
      vsExpress: pairedRatio(r.ours, r.express, (x) => x.reqPerSec, true),
      vsBlitz: pairedRatio(r.ours, r.blitz, (x) => x.reqPerSec, true),
      cpuVsExpress: pairedRatio(r.ours, r.express, (x) => x.cpuUsPerRequest, false),
      cpuVsBlitz: pairedRatio(r.ours, r.blitz, (x) => x.cpuUsPerRequest, false),
    }
    const lines = CONTENDERS.map((c) => {
      const list = r[c.key]
      const sum = (pick) => summarize(list.map(pick))
      const row = {
        scenario: scenario.key,
        key: c.key,
        name: c.name,
        ours: !!c.ours,
        runs: list,
        reqPerSec: sum((x) => x.reqPerSec),
        p99Ms: sum((x) => x.p99Ms),
        cpuUsPerRequest: sum((x) => x.cpuUsPerRequest),
        redisCpuUsPerRequest: sum((x) => x.redisCpuUsPerRequest),
      }
      rows.push(row)
      const rps = row.reqPerSec
      return [
        c.ours ? `**${c.name}**` : c.name,
        num(rps.median),
        list.length > 1 ? `${num(rps.p25)}–${num(rps.p75)}` : "—",
        num(row.p99Ms.median),
        num(row.cpuUsPerRequest.median),
        num(1e6 / row.cpuUsPerRequest.median),
        num(row.redisCpuUsPerRequest.median),
        c.ours ? "1.00× (ours)" : ratio(c.key === "express" ? ratios[scenario.key].vsExpress.median : ratios[scenario.key].vsBlitz.median),
      ]
    })
    blocks.push(
      `### ${scenario.title}\n\n` +
        table(
          ["contender", "req/s median", "p25–p75", "p99 ms", "server CPU µs/req", "10⁶ ÷ CPU µs", "Redis CPU µs/req", "req/s ours/peer"],
          lines,
          ["l", "r", "r", "r", "r", "r", "r", "r"],
        ),
    )
  }
  const fmtRatio = (s) => `${ratio(s.median)}${s.n > 1 ? ` (p25–p75 ${ratio(s.p25)}–${ratio(s.p75)})` : ""}`
  const ratioTable = table(
    ["scenario", "req/s vs express-session", "req/s vs Blitz", "CPU/req vs express-session", "CPU/req vs Blitz"],
    SCENARIOS.map((s) => [s.title, fmtRatio(ratios[s.key].vsExpress), fmtRatio(ratios[s.key].vsBlitz), fmtRatio(ratios[s.key].cpuVsExpress), fmtRatio(ratios[s.key].cpuVsBlitz)]),
    ["l", "r", "r", "r", "r"],
  )
  const oursAuth = rows.find((r) => r.scenario === "auth" && r.ours)
  const mark = (ok) => (ok ? "met" : "**not met**")
  const manyMs = many ? many.summary.median : NaN
  const fmtCommands = (o) => Object.entries(o).map(([k, v]) => `${k.toUpperCase()}×${v}`).join(", ") || "none"
  const targets = [
    `- authenticated read ≥ ${TARGETS.authRead}× express-session: ${ratio(ratios.auth.vsExpress.median)} — ${mark(ratios.auth.vsExpress.median >= TARGETS.authRead)}`,
    `- first visit ≥ ${TARGETS.firstVisit}× express-session: ${ratio(ratios.first.vsExpress.median)} — ${mark(ratios.first.vsExpress.median >= TARGETS.firstVisit)}`,
    `- authenticated read ≤ ${TARGETS.cpuUsPerRequest} µs server CPU per request: ${num(oursAuth.cpuUsPerRequest.median)} µs — ${mark(oursAuth.cpuUsPerRequest.median <= TARGETS.cpuUsPerRequest)}`,
    `- setPublicDataForUser over ${MANY_SESSIONS} sessions ≤ ${TARGETS.setPublicDataMs} ms: ${num(manyMs)} ms median — ${mark(manyMs <= TARGETS.setPublicDataMs)}`,
  ].join("\n")
  const manyText = many
    ? `setPublicDataForUser(${MANY_USER}, { plan }) over the user's ${many.sessions} sessions in Redis (ours; created through getSession + $create): ` +
      `median ${num(many.summary.median)} ms, p25–p75 ${num(many.summary.p25)}–${num(many.summary.p75)} ms, min ${num(many.summary.min)}, max ${num(many.summary.max)} over ${many.summary.n} calls ` +
      `(after one untimed call). What one call sends to Redis (one more call, untimed, watched with MONITOR${many.monitorFiltered ? ", only the ours-child's connections" : ", every client: ss was unavailable"}): ` +
      `${fmtCommands(many.sent)}, i.e. ${Object.values(many.sent).reduce((x, y) => x + y, 0)} command(s) on the wire; run inside the script: ${fmtCommands(many.inScripts)}. ` +
      `Sessions still listed afterwards: ${many.after}.`
    : "setPublicDataForUser: not measured."
  const text = [
    `${config.httpRounds} round(s) × ${SCENARIOS.length} scenarios × ${CONTENDERS.length} contenders, ${config.httpDuration} s autocannon runs ` +
      `(${config.httpConnections} connections, pipelining 1, loopback), after ${config.httpWarmup} s untimed warm-up runs; contenders interleaved, first mover rotated. ` +
      `Each server is a \`node:http\` child process on 127.0.0.1 using Redis at ${REDIS_URL.replace(/\/\/[^@]*@/, "//…@")}, with its own key prefix (deleted afterwards). ` +
      `Server CPU = the child's process.cpuUsage() (user + system, all threads) over the run ÷ requests it served; 10⁶ ÷ that is the req/s one fully busy core would give. ` +
      `Redis CPU = redis-server's INFO cpu over the same window ÷ requests. autocannon, the server and redis-server share the machine's cores. ` +
      `Ratios are per-round pairs (same round, same conditions), median over rounds; > 1 means ours is better.`,
    ...blocks,
    `### Paired ratios (ours ÷ peer for req/s, peer ÷ ours for CPU)\n\n${ratioTable}`,
    `### setPublicDataForUser\n\n${manyText}`,
    `### Targets (issue)\n\n${targets}`,
    "Note: a first visit on ours and on Blitz creates an anonymous session whose state lives in its cookie (no Redis call); " +
      "express-session with saveUninitialized: true writes the new session to Redis (SET); on an authenticated read it reads it (GET) and, " +
      "as connect-redis implements touch, refreshes its TTL (EXPIRE).",
  ].join("\n\n")
  return {
    title: `${number}. HTTP on Redis: node:http + autocannon, getSession per request (ours vs @blitzjs/auth vs express-session)`,
    rows,
    text,
    foreignCpuShare: share,
    extra: { ratios, setPublicDataForUser: many, targets: TARGETS, redisUrl: REDIS_URL.replace(/\/\/[^@]*@/, "//…@") },
  }
}

module.exports = { httpSection, httpChildCpuSeconds: () => httpChildCpuSeconds, ioredisSessionStorage, cookieHeader }

if (require.main === module) {
  const arg = (name) => (process.argv.find((a) => a.startsWith(`--${name}=`)) || "").slice(name.length + 3)
  if (!process.send) {
    console.error("bench/http.js is run by bench/run.js (--only=http); as a child it needs an IPC channel")
    process.exit(2)
  }
  serve(arg("serve"), arg("prefix")).catch((err) => {
    console.error(err && err.stack ? err.stack : err)
    process.exit(1)
  })
}
