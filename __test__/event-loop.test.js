// @ts-check
"use strict"
// The async API must not run Argon2 on the JS thread. The precise lag figure
// belongs to `npm run bench`; here only a generous bound is asserted.
const test = require("node:test")
const assert = require("node:assert/strict")
const { monitorEventLoopDelay } = require("node:perf_hooks")

const { SecurePassword } = require("..")

test("the event loop keeps ticking while 4 hashes run", async () => {
  await SecurePassword.hash("warm-up") // first use starts the pool and maps an arena
  const h = monitorEventLoopDelay({ resolution: 1 })
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  h.enable()
  const started = process.hrtime.bigint()
  await Promise.all([1, 2, 3, 4].map((i) => SecurePassword.hash(`pw-${i}`)))
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6
  h.disable()
  clearInterval(timer)
  const maxLagMs = h.max / 1e6
  // A hash on the JS thread would block it for ~50-100 ms at a time.
  assert.ok(maxLagMs < 40, `event loop blocked for ${maxLagMs.toFixed(1)} ms`)
  assert.ok(ticks >= Math.floor(elapsedMs / 5 / 3), `only ${ticks} timer ticks in ${elapsedMs.toFixed(0)} ms`)
})
