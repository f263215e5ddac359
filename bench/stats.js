"use strict"

// Small, dependency-free statistics for the benchmark. Medians and quartiles
// rather than means: a single GC pause or scheduler hiccup on a shared 2-core
// box would otherwise drag a mean around.

// Linear interpolation between closest ranks (the same rule as numpy's
// default), so small samples still give a sensible quartile.
function quantile(sorted, q) {
  if (sorted.length === 0) return NaN
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo)
}

function summarize(samples) {
  const sorted = [...samples].sort((a, b) => a - b)
  const n = sorted.length
  return {
    n,
    median: quantile(sorted, 0.5),
    p25: quantile(sorted, 0.25),
    p75: quantile(sorted, 0.75),
    min: n ? sorted[0] : NaN,
    max: n ? sorted[n - 1] : NaN,
    mean: n ? sorted.reduce((s, x) => s + x, 0) / n : NaN,
  }
}

const median = (samples) => summarize(samples).median

// Every section interleaves contenders and rotates who goes first each round,
// so slow drift (thermal, other tenants, a cargo build next door) spreads over
// all contenders instead of landing on whoever happens to run last.
function rotate(list, by) {
  const k = ((by % list.length) + list.length) % list.length
  return [...list.slice(k), ...list.slice(0, k)]
}

module.exports = { quantile, summarize, median, rotate }
