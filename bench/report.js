"use strict"

const fs = require("fs")
const os = require("os")
const path = require("path")
const { performance } = require("perf_hooks")

// Markdown table with padded columns, so the report also reads well as plain
// text in a terminal. `align` holds "l" or "r" per column.
function table(headers, rows, align = []) {
  const cells = [headers, ...rows].map((row) => row.map(String))
  const widths = headers.map((_, i) => Math.max(3, ...cells.map((row) => row[i].length)))
  const pad = (text, i) => (align[i] === "r" ? text.padStart(widths[i]) : text.padEnd(widths[i]))
  const line = (row) => `| ${row.map(pad).join(" | ")} |`
  const rule = `|${widths.map((w, i) => (align[i] === "r" ? `${"-".repeat(w + 1)}:` : `${"-".repeat(w + 2)}`)).join("|")}|`
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join("\n")
}

// Enough significant digits to compare contenders, never a wall of decimals.
function num(x, digits = 3) {
  if (!Number.isFinite(x)) return "n/a"
  const abs = Math.abs(x)
  if (abs >= 1000) return Math.round(x).toLocaleString("en-US")
  if (abs >= 100) return x.toFixed(1)
  if (abs >= 1) return x.toFixed(Math.max(0, digits - 1))
  return x.toFixed(digits)
}

// Ratios are always oriented so that > 1 means "ours is better".
function ratio(x) {
  if (!Number.isFinite(x)) return "n/a"
  return `${x.toFixed(2)}×`
}

function versionOf(pkgDir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8")).version
  } catch {
    return "unknown"
  }
}

// Versions actually on disk (Blitz pins its own nanoid), so a saved result
// says exactly what was measured.
function packageVersions(root) {
  const nm = path.join(root, "node_modules")
  return {
    "blitz-auth-native": versionOf(root),
    "secure-password": versionOf(path.join(nm, "secure-password")),
    "sodium-native": versionOf(path.join(nm, "sodium-native")),
    "@node-rs/argon2": versionOf(path.join(nm, "@node-rs", "argon2")),
    argon2: versionOf(path.join(nm, "argon2")),
    nanoid: versionOf(path.join(nm, "nanoid")),
    "@blitzjs/auth": versionOf(path.join(nm, "@blitzjs", "auth")),
    "@blitzjs/auth → nanoid": fs.existsSync(path.join(nm, "@blitzjs", "auth", "node_modules", "nanoid"))
      ? versionOf(path.join(nm, "@blitzjs", "auth", "node_modules", "nanoid"))
      : versionOf(path.join(nm, "nanoid")),
  }
}

function machine() {
  const cpus = os.cpus()
  return {
    cpu: cpus[0] ? cpus[0].model.trim() : "unknown",
    cores: cpus.length,
    availableParallelism: typeof os.availableParallelism === "function" ? os.availableParallelism() : cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    v8: process.versions.v8,
    uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE || "4 (default)",
    loadavgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  }
}

// This box is shared (a cargo build next door skews every number), so each
// section reports how much of the machine other processes used meanwhile:
// all busy CPU time from /proc/stat minus this process's own (all threads).
function cpuSnapshot() {
  let busySeconds = NaN
  try {
    const [user, nice, system, , , irq, softirq, steal = 0] = fs
      .readFileSync("/proc/stat", "utf8")
      .split("\n")[0]
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number)
    busySeconds = (user + nice + system + irq + softirq + steal) / 100 // USER_HZ is 100 on Linux
  } catch {
    // Not Linux: the gauge reads n/a.
  }
  const own = process.cpuUsage()
  return { at: performance.now(), busySeconds, ownSeconds: (own.user + own.system) / 1e6 }
}

// `ownChildSeconds`: CPU time of this benchmark's own child processes in the
// interval, which /proc/stat counts as busy but is not background load.
function foreignCpuShare(before, after, ownChildSeconds = 0) {
  const wallSeconds = (after.at - before.at) / 1000
  const others = after.busySeconds - before.busySeconds - (after.ownSeconds - before.ownSeconds) - ownChildSeconds
  return Math.min(1, Math.max(0, others / (wallSeconds * os.cpus().length)))
}

module.exports = { table, num, ratio, packageVersions, machine, cpuSnapshot, foreignCpuShare }
