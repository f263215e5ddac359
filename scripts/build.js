#!/usr/bin/env node
// Builds the native addon (release profile) with the napi-rs CLI.
// Runs on `npm install` in a clone (the `prepare` script) and on `npm run build`.
"use strict"

const { spawnSync } = require("node:child_process")
const path = require("node:path")

const root = path.resolve(__dirname, "..")
const debug = process.argv.includes("--debug")

const cargo = spawnSync("cargo", ["--version"], { encoding: "utf8" })
if (cargo.error || cargo.status !== 0) {
  console.error(
    [
      "",
      "blitz-auth-native: cannot build the native addon because `cargo` was not found.",
      "Install the Rust toolchain (https://rustup.rs: `curl https://sh.rustup.rs -sSf | sh`),",
      "open a new shell so `cargo` is on PATH, then run `npm install` again.",
      "",
    ].join("\n"),
  )
  process.exit(1)
}

let cli
try {
  // The package's exports map hides dist/cli.js; find it next to package.json.
  const pkg = require.resolve("@napi-rs/cli/package.json", { paths: [root] })
  cli = path.join(path.dirname(pkg), "dist", "cli.js")
} catch {
  console.error("blitz-auth-native: @napi-rs/cli is missing; run `npm install` (dev dependencies) first.")
  process.exit(1)
}

const args = [
  cli,
  "build",
  "--platform",
  "--features",
  "node",
  "--js",
  "binding.js",
  "--dts",
  "binding.d.ts",
  "--no-const-enum",
]
if (!debug) args.push("--release")

console.log(`blitz-auth-native: building the native addon (${debug ? "debug" : "release"})…`)
const r = spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" })
if (r.status !== 0) {
  console.error("blitz-auth-native: the native build failed (see the cargo output above).")
  process.exit(r.status || 1)
}
