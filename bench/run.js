#!/usr/bin/env node
"use strict"

// Benchmark harness for blitz-auth-native against the implementations it
// replaces or competes with. Prints a markdown report on stdout (progress goes
// to stderr, so `npm run bench > report.md` keeps the report clean) and writes
// the raw samples to bench/results/latest.json.
//
//   node bench/run.js              full run, about 8–10 minutes on 2 cores
//                                  (of which "http", sessions over HTTP on Redis, ~4;
//                                  it needs Redis at REDIS_URL, default 127.0.0.1:6379)
//   node bench/run.js --quick      smoke run, about a minute
//   node bench/run.js --only=http  one section (see --help)
//   node bench/run.js --help       every knob (each also has a BENCH_* env var)

const fs = require("fs")
const path = require("path")
const os = require("os")
const crypto = require("crypto")
const { parseArgs } = require("util")
const { performance, monitorEventLoopDelay } = require("perf_hooks")

const { loadContenders, ROOT } = require("./contenders")
const { loadSessionContenders, sessionChecks, sessionsSection, childCpuSeconds } = require("./sessions")
const { runChecks } = require("./checks")
const { httpSection, httpChildCpuSeconds } = require("./http")
const { summarize, rotate } = require("./stats")
const { table, num, ratio, packageVersions, machine, cpuSnapshot, foreignCpuShare } = require("./report")

// ---------------------------------------------------------------- settings

const SECTIONS = ["latency", "throughput", "lag", "hash256", "token", "verify", "sessions", "session-ops", "http"]
const SESSION_SECTIONS = ["sessions", "session-ops"]

// Full: 15 measured latency rounds, throughput and lag windows long enough to
// average over dozens of hashes, micro-benchmarks of 30 × 200k calls, session
// scenarios of 30 × 250 requests per contender; about 4–5 minutes on 2 cores.
// Quick: same code paths, fewer samples.
const PROFILES = {
  full: {
    warmup: 3,
    rounds: 15,
    callers: 2,
    tputRounds: 5,
    tputWindowMs: 3000,
    tputWarmupMs: 800,
    lagInFlight: 4,
    lagRounds: 5,
    lagWindowMs: 1000,
    microWarmup: 3,
    batches: 30,
    batchSize: 200000,
    sessWarmup: 5,
    sessRounds: 30,
    sessBatch: 250,
    sessDiagRequests: 200,
    httpDuration: 10,
    httpRounds: 3,
    httpWarmup: 2,
    httpConnections: 50,
    httpManyReps: 9,
  },
  quick: {
    warmup: 1,
    rounds: 5,
    callers: 2,
    tputRounds: 2,
    tputWindowMs: 1500,
    tputWarmupMs: 400,
    lagInFlight: 4,
    lagRounds: 2,
    lagWindowMs: 500,
    microWarmup: 2,
    batches: 10,
    batchSize: 50000,
    sessWarmup: 2,
    sessRounds: 8,
    sessBatch: 100,
    sessDiagRequests: 100,
    httpDuration: 3,
    httpRounds: 1,
    httpWarmup: 1,
    httpConnections: 50,
    httpManyReps: 5,
  },
}

// CLI flag → [profile key, env var]. Flags win over env vars, which win over
// the profile.
const KNOBS = {
  warmup: ["warmup", "BENCH_WARMUP"],
  rounds: ["rounds", "BENCH_ROUNDS"],
  callers: ["callers", "BENCH_CALLERS"],
  "tput-rounds": ["tputRounds", "BENCH_TPUT_ROUNDS"],
  "window-ms": ["tputWindowMs", "BENCH_WINDOW_MS"],
  "lag-in-flight": ["lagInFlight", "BENCH_LAG_IN_FLIGHT"],
  "lag-rounds": ["lagRounds", "BENCH_LAG_ROUNDS"],
  "lag-window-ms": ["lagWindowMs", "BENCH_LAG_WINDOW_MS"],
  batches: ["batches", "BENCH_BATCHES"],
  "batch-size": ["batchSize", "BENCH_BATCH_SIZE"],
  "sess-warmup": ["sessWarmup", "BENCH_SESS_WARMUP"],
  "sess-rounds": ["sessRounds", "BENCH_SESS_ROUNDS"],
  "sess-batch": ["sessBatch", "BENCH_SESS_BATCH"],
  "http-duration": ["httpDuration", "BENCH_HTTP_DURATION"],
  "http-rounds": ["httpRounds", "BENCH_HTTP_ROUNDS"],
  "http-warmup": ["httpWarmup", "BENCH_HTTP_WARMUP"],
  "http-connections": ["httpConnections", "BENCH_HTTP_CONNECTIONS"],
  "http-many-reps": ["httpManyReps", "BENCH_HTTP_MANY_REPS"],
}

const HELP = `Usage: node bench/run.js [options]

  --quick                 short smoke run (env BENCH_QUICK=1)
  --only=a,b              run only these sections: ${SECTIONS.join(", ")} (env BENCH_ONLY)
  --out=FILE              JSON output (default bench/results/latest.json, env BENCH_OUT)
${Object.entries(KNOBS)
  .map(([flag, [key, env]]) => `  --${`${flag}=N`.padEnd(22)}${key} (full ${PROFILES.full[key]}, quick ${PROFILES.quick[key]}; env ${env})`)
  .join("\n")}
  --help                  this text

Agreement checks always run first; any disagreement exits with status 1.`

const usageError = (message) => Object.assign(new Error(message), { usage: true })

function parseConfig(argv, env) {
  const options = { quick: { type: "boolean" }, help: { type: "boolean" }, only: { type: "string" }, out: { type: "string" } }
  for (const flag of Object.keys(KNOBS)) options[flag] = { type: "string" }
  const { values } = parseArgs({ args: argv, options, strict: true })
  if (values.help) {
    console.log(HELP)
    process.exit(0)
  }
  const quick = values.quick || /^(1|true|yes)$/i.test(env.BENCH_QUICK || "")
  const config = { profile: quick ? "quick" : "full", ...PROFILES[quick ? "quick" : "full"] }
  for (const [flag, [key, envName]] of Object.entries(KNOBS)) {
    const raw = values[flag] ?? env[envName]
    if (raw === undefined || raw === "") continue
    const n = Number(raw)
    const min = key === "warmup" || key === "sessWarmup" || key === "httpWarmup" ? 0 : 1
    if (!Number.isInteger(n) || n < min) throw usageError(`--${flag} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`)
    config[key] = n
  }
  const only = (values.only ?? env.BENCH_ONLY ?? "").split(",").map((s) => s.trim()).filter(Boolean)
  const unknown = only.filter((s) => !SECTIONS.includes(s))
  if (unknown.length) throw usageError(`unknown section(s) ${unknown.join(", ")}; known: ${SECTIONS.join(", ")}`)
  config.sections = only.length ? SECTIONS.filter((s) => only.includes(s)) : SECTIONS
  config.out = path.resolve(values.out ?? env.BENCH_OUT ?? path.join(__dirname, "results", "latest.json"))
  return config
}

// ---------------------------------------------------------------- helpers

const PASSWORD = "correct horse battery staple"
// 1 ms is the finest timer libuv offers; each recorded delay includes that
// interval, so it is subtracted to report how late the loop actually was.
const LAG_RESOLUTION_MS = 1

const progress = (text) => process.stderr.write(text)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Keep `inFlight` calls going until the window closes; calls started before
// the deadline are allowed to finish and are counted, and the elapsed time
// runs until the last one does, so the rate is not inflated by a cut-off.
async function keepInFlight(contender, inFlight, windowMs) {
  let done = 0
  const start = performance.now()
  const deadline = start + windowMs
  const caller = async () => {
    while (performance.now() < deadline) {
      await contender.hash(PASSWORD)
      done++
    }
  }
  await Promise.all(Array.from({ length: inFlight }, caller))
  const elapsedMs = performance.now() - start
  return { done, elapsedMs, perSecond: done / (elapsedMs / 1000) }
}

// Rows for a report table: summary per contender plus the ratio against ours,
// oriented so that > 1 always means ours is better.
function withRatios(rows, { higherIsBetter = false, key = "median" } = {}) {
  const ours = rows.find((r) => r.ours)
  return rows.map((r) => {
    const mine = ours ? ours.summary[key] : NaN
    const theirs = r.summary[key]
    return { ...r, ratio: r.idle ? NaN : higherIsBetter ? mine / theirs : theirs / mine }
  })
}

function renderTimes(rows, { unit, ratioLabel, higherIsBetter = false }) {
  return table(
    ["contender", `median ${unit}`, `p25–p75 ${unit}`, "n", ratioLabel],
    rows.map((r) => [
      r.ours ? `**${r.name}**` : r.name,
      num(r.summary.median),
      `${num(r.summary.p25)}–${num(r.summary.p75)}`,
      r.summary.n,
      r.ours ? "1.00× (ours)" : ratio(r.ratio),
    ]),
    ["l", "r", "r", "r", "r"],
  ) + `\n\n${ratioLabel} > 1 means ours is ${higherIsBetter ? "higher" : "faster"}; p25–p75 is the spread across rounds.`
}

// ---------------------------------------------------------------- sections

// One call at a time, round-robin, first mover rotated each round; warm-up
// rounds (pool threads starting, arenas being allocated, JIT) are discarded.
async function latency(contenders, config, call) {
  const samples = contenders.map(() => [])
  const total = config.warmup + config.rounds
  for (let round = 0; round < total; round++) {
    for (const index of rotate(contenders.map((_, i) => i), round)) {
      const start = performance.now()
      await call(contenders[index])
      const ms = performance.now() - start
      if (round >= config.warmup) samples[index].push(ms)
    }
    progress(".")
  }
  progress("\n")
  return withRatios(contenders.map((c, i) => ({ name: c.name, ours: !!c.ours, samples: samples[i], summary: summarize(samples[i]) })))
}

async function throughput(contenders, config) {
  // A short untimed window per contender first, so ours has started both pool
  // workers (and their arenas) and the peers' thread pools are warm.
  for (const c of contenders) await keepInFlight(c, config.callers, config.tputWarmupMs)
  const runs = contenders.map(() => [])
  for (let round = 0; round < config.tputRounds; round++) {
    for (const index of rotate(contenders.map((_, i) => i), round)) {
      runs[index].push(await keepInFlight(contenders[index], config.callers, config.tputWindowMs))
      progress(".")
    }
  }
  progress("\n")
  return withRatios(
    contenders.map((c, i) => {
      const samples = runs[i].map((r) => r.perSecond)
      return { name: c.name, ours: !!c.ours, samples, runs: runs[i], summary: summarize(samples) }
    }),
    { higherIsBetter: true },
  )
}

// Event-loop delay while `lagInFlight` hashes of one contender are kept in
// flight. An idle baseline runs in the same rotation, so the numbers can be
// read against what this machine shows with nothing going on.
async function lag(contenders, config) {
  const runners = [{ name: "idle (nothing running, baseline)", idle: true }, ...contenders]
  const trials = runners.map(() => [])
  const toLag = (ns) => Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS)
  for (let round = 0; round < config.lagRounds; round++) {
    for (const index of rotate(runners.map((_, i) => i), round)) {
      const runner = runners[index]
      const histogram = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS })
      histogram.enable()
      const run = runner.idle ? (await sleep(config.lagWindowMs), null) : await keepInFlight(runner, config.lagInFlight, config.lagWindowMs)
      histogram.disable()
      trials[index].push({
        p50: toLag(histogram.percentile(50)),
        p99: toLag(histogram.percentile(99)),
        max: toLag(histogram.max),
        timerSamples: histogram.count,
        hashes: run ? run.done : 0,
        perSecond: run ? run.perSecond : 0,
      })
      progress(".")
    }
  }
  progress("\n")
  // Per-trial figures, then the median across trials (and the single worst
  // max, since a rare long stall is exactly what an event loop cannot afford).
  const rows = runners.map((r, i) => {
    const t = trials[i]
    return {
      name: r.name,
      ours: !!r.ours,
      idle: !!r.idle,
      trials: t,
      summary: {
        n: t.length,
        p50: summarize(t.map((x) => x.p50)).median,
        p99: summarize(t.map((x) => x.p99)).median,
        max: summarize(t.map((x) => x.max)).median,
        worstMax: Math.max(...t.map((x) => x.max)),
        perSecond: summarize(t.map((x) => x.perSecond)).median,
      },
    }
  })
  return withRatios(rows, { key: "p99" })
}

// Each contender gets its own compiled copy of the loop, so every call site
// sees exactly one target (monomorphic, inlinable) instead of one shared,
// megamorphic site. The name in the source keeps V8's eval cache from handing
// back a shared copy.
function compileLoop(label) {
  return new Function(
    "fn",
    "inputs",
    "n",
    `// timing loop for ${JSON.stringify(label)}
    const mask = inputs.length - 1
    let sink = 0
    for (let i = 0; i < n; i++) sink += fn(inputs[i & mask]).length
    return sink`,
  )
}

let sink = 0 // results feed this so no call can be optimized away

function micro(contenders, inputs, config) {
  const loops = contenders.map((c) => compileLoop(c.name))
  const samples = contenders.map(() => [])
  const total = config.microWarmup + config.batches
  for (let batch = 0; batch < total; batch++) {
    for (const index of rotate(contenders.map((_, i) => i), batch)) {
      const start = process.hrtime.bigint()
      sink += loops[index](contenders[index].fn, inputs, config.batchSize)
      const nsPerOp = Number(process.hrtime.bigint() - start) / config.batchSize
      if (batch >= config.microWarmup) samples[index].push(nsPerOp)
    }
    if (batch % 5 === 4) progress(".")
  }
  progress("\n")
  return withRatios(contenders.map((c, i) => ({ name: c.name, ours: !!c.ours, samples: samples[i], summary: summarize(samples[i]) })))
}

// ---------------------------------------------------------------- main

async function main() {
  const config = parseConfig(process.argv.slice(2), process.env)
  const startedAt = new Date()
  const t0 = performance.now()
  const cpuAtStart = cpuSnapshot()
  const { ours, passwords, hash256, tokens, peers } = loadContenders()
  const info = { machine: machine(), versions: packageVersions(ROOT), ours: ours.source, poolAtStart: ours.binding.hashPoolStats() }

  // 256 distinct 32-character ASCII strings (a power of two, for the index
  // mask in the timing loop), so no implementation can benefit from seeing
  // the very same input over and over.
  const hash256Inputs = Array.from({ length: 256 }, () => crypto.randomBytes(24).toString("base64"))

  const m = info.machine
  const knobs = Object.fromEntries(Object.entries(config).filter(([k]) => !["profile", "out", "sections"].includes(k)))
  console.log(
    [
      "# blitz-auth-native benchmark",
      "",
      `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform}`,
      `- Node ${m.node} (V8 ${m.v8}), UV_THREADPOOL_SIZE ${m.uvThreadpoolSize}, load average at start ${m.loadavgAtStart.join(" ")}`,
      `- Ours loaded from ${info.ours}; password pool max ${info.poolAtStart.maxThreads} threads`,
      `- Versions: ${Object.entries(info.versions).map(([k, v]) => `${k} ${v}`).join(", ")}`,
      `- Profile: ${config.profile} ${JSON.stringify(knobs)}`,
      "",
    ].join("\n"),
  )

  // 1. Agreement before timing: abort on any disagreement.
  progress("checks…\n")
  const checks = await runChecks({ ours, peers, password: PASSWORD, hash256Inputs })
  // Sessions (only when selected): ours, ours + JS storage and Blitz, each
  // with its own sessions, checked against each other before any timing.
  let sessionContenders = null
  if (config.sections.some((s) => SESSION_SECTIONS.includes(s))) {
    try {
      sessionContenders = loadSessionContenders()
      checks.push(...(await sessionChecks(sessionContenders)))
    } catch (err) {
      checks.push({ name: "sessions: load ours and @blitzjs/auth side by side", ok: false, detail: `threw ${err && err.stack ? err.stack.split("\n")[0] : err}` })
    }
  }
  console.log("## 1. Agreement checks\n")
  console.log(`${checks.map((c) => `- [${c.ok ? "x" : " "}] ${c.name}${c.detail && !c.ok ? ` — ${c.detail}` : ""}`).join("\n")}\n`)
  const results = { startedAt: startedAt.toISOString(), config, ...info, checks, sections: {} }
  if (checks.some((c) => !c.ok)) {
    console.log("**Aborted: the implementations disagree, nothing was timed.**")
    writeJson(config.out, { ...results, aborted: true })
    process.exit(1)
  }

  const argonLabel = "m=64 MiB, t=2, p=1"
  // Runs one section if selected: times it, gauges background load, prints
  // its table and keeps its rows for the JSON.
  const section = async (key, progressText, body) => {
    if (!config.sections.includes(key)) return
    progress(progressText)
    const before = cpuSnapshot()
    const { title, rows, text, extra, foreignCpuShare: own } = await body()
    // A section may measure the load itself (e.g. leaving out its own child process).
    const share = own ?? foreignCpuShare(before, cpuSnapshot())
    results.sections[key] = { title, foreignCpuShare: share, rows, ...extra }
    const noise = Number.isFinite(share) ? `\n\nOther processes kept ${Math.round(share * 100)}% of the ${os.cpus().length} cores busy during this section.` : ""
    console.log(`## ${title}\n\n${text}${noise}\n`)
  }

  await section("latency", `hash latency (${config.warmup} warm-up + ${config.rounds} rounds × ${passwords.length})`, async () => {
    const rows = await latency(passwords, config, (c) => c.hash(PASSWORD))
    return {
      title: `2. Password hashing latency (${argonLabel}, one at a time)`,
      rows,
      text: renderTimes(rows, { unit: "ms", ratioLabel: "peer/ours" }),
    }
  })

  await section("throughput", `throughput (${config.callers} callers, ${config.tputRounds} rounds × ${config.tputWindowMs} ms × ${passwords.length})`, async () => {
    const rows = await throughput(passwords, config)
    return {
      title: `3. Hashing throughput (${config.callers} calls in flight, ${config.tputWindowMs / 1000} s windows, ${os.cpus().length} cores)`,
      rows,
      text: renderTimes(rows, { unit: "hashes/s", ratioLabel: "ours/peer", higherIsBetter: true }),
    }
  })

  await section("lag", `event-loop lag (${config.lagInFlight} in flight, ${config.lagRounds} rounds × ${config.lagWindowMs} ms × ${passwords.length + 1})`, async () => {
    const rows = await lag(passwords, config)
    const text = table(
      ["contender", "p50 ms", "p99 ms", "max ms", "worst max ms", "hashes/s", "p99 peer/ours"],
      rows.map((r) => [
        r.ours ? `**${r.name}**` : r.name,
        num(r.summary.p50),
        num(r.summary.p99),
        num(r.summary.max),
        num(r.summary.worstMax),
        r.idle ? "—" : num(r.summary.perSecond),
        r.ours ? "1.00× (ours)" : r.idle ? "—" : ratio(r.ratio),
      ]),
      ["l", "r", "r", "r", "r", "r", "r"],
    )
    return {
      title: `4. Event-loop lag with ${config.lagInFlight} hashes in flight (monitorEventLoopDelay, ${LAG_RESOLUTION_MS} ms resolution)`,
      rows,
      text:
        `${text}\n\nLag = how late a ${LAG_RESOLUTION_MS} ms timer fired. p50/p99/max are medians over ${config.lagRounds} windows of ${config.lagWindowMs} ms; ` +
        "worst max is the single largest stall seen. Read the ratios against the idle baseline: lag the idle row shows too comes from the machine, not the contender.",
    }
  })

  await section("hash256", `hash256 (${config.microWarmup} warm-up + ${config.batches} batches × ${config.batchSize} × ${hash256.length})`, async () => {
    const rows = micro(hash256, hash256Inputs, config)
    return {
      title: `5. hash256 of a 32-byte ASCII string (${config.batches} batches × ${config.batchSize.toLocaleString("en-US")} calls)`,
      rows,
      text: renderTimes(rows, { unit: "ns/op", ratioLabel: "peer/ours" }),
    }
  })

  await section("token", `generateToken (${config.microWarmup} warm-up + ${config.batches} batches × ${config.batchSize} × ${tokens.length})`, async () => {
    const rows = micro(tokens, hash256Inputs, config)
    return {
      title: `6. generateToken() → 32 characters (${config.batches} batches × ${config.batchSize.toLocaleString("en-US")} calls)`,
      rows,
      text: renderTimes(rows, { unit: "ns/op", ratioLabel: "peer/ours" }),
    }
  })

  await section("verify", `verify latency (${config.warmup} warm-up + ${config.rounds} rounds × ${passwords.length})`, async () => {
    // Each contender verifies a hash it made itself, in its own stored format.
    const verifiers = []
    for (const c of passwords) verifiers.push({ ...c, stored: await c.hash(PASSWORD) })
    const rows = await latency(verifiers, config, (c) => c.verify(c.stored, PASSWORD))
    return {
      title: `7. Password verify latency (${argonLabel}, correct password, one at a time)`,
      rows,
      text: renderTimes(rows, { unit: "ms", ratioLabel: "peer/ours" }),
    }
  })

  const sessLabel = `${config.sessWarmup} warm-up + ${config.sessRounds} batches × ${config.sessBatch} requests × 3–4 contenders`
  await section("sessions", `sessions (${sessLabel})`, () => sessionsSection("sessions", sessionContenders, config, 8))
  await section("session-ops", `session ops (${sessLabel})`, () => sessionsSection("session-ops", sessionContenders, config, 9))
  await section(
    "http",
    `http on Redis (${config.httpRounds} rounds × 2 scenarios × 3 contenders × ${config.httpDuration} s, ${config.httpConnections} connections)\n`,
    () => httpSection(config, 10),
  )

  results.poolAtEnd = ours.binding.hashPoolStats()
  results.loadavgAtEnd = os.loadavg().map((x) => Math.round(x * 100) / 100)
  results.durationSeconds = Math.round((performance.now() - t0) / 100) / 10
  // The sessions' diagnostic child is this benchmark's own work, not background load.
  results.foreignCpuShare = foreignCpuShare(cpuAtStart, cpuSnapshot(), childCpuSeconds() + httpChildCpuSeconds())
  results.sink = sink
  writeJson(config.out, results)
  const share = Number.isFinite(results.foreignCpuShare) ? `, other processes used ${Math.round(results.foreignCpuShare * 100)}% of the machine` : ""
  console.log(`Finished in ${results.durationSeconds} s (load average at end ${results.loadavgAtEnd.join(" ")}${share}); raw results in ${path.relative(process.cwd(), config.out) || config.out}`)
}

function writeJson(file, data) {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`)
}

main().then(
  // The password pools keep native threads around; exit explicitly once the
  // report is out rather than relying on them to wind down.
  () => process.exit(0),
  (err) => {
    // Bad flags get a one-line message; anything else is a bug worth a stack.
    const usage = err && (err.usage || String(err.code).startsWith("ERR_PARSE_ARGS"))
    console.error(usage ? `bench: ${err.message} (see --help)` : err && err.stack ? err.stack : err)
    process.exit(usage ? 2 : 1)
  },
)
