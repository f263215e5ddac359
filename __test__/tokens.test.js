// @ts-check
"use strict"
const test = require("node:test")
const assert = require("node:assert/strict")

const { generateToken, hash256 } = require("..")
const { blitzAuth: blitz } = require("./helpers/peers")
const { loadVectors } = require("./helpers/vectors")

const hv = loadVectors("hash256.json")
const tv = loadVectors("generate-token.json")

/** Inputs that the vector file describes in words. */
const special = {
  undefined: undefined,
  null: null,
  "'\\ud800' (lone surrogate)": "\ud800",
  "Buffer [0x00,0xff,0x01]": Buffer.from([0x00, 0xff, 0x01]),
  "123 (number)": 123,
}

test("hash256 vectors", () => {
  for (const c of hv.vectors) {
    const input = typeof c.input === "string" ? c.input : /** @type {any} */ (special)[c.input.js]
    assert.ok(typeof c.input === "string" || c.input.js in special, `unknown vector input ${JSON.stringify(c.input)}`)
    if (c.throws) {
      assert.throws(() => hash256(input), (/** @type {any} */ e) => e.code === c.code && e instanceof TypeError, c.label)
    } else {
      assert.equal(hash256(input), c.output, c.label)
    }
  }
})

test("hash256 agrees with Blitz's on strings, Buffers and typed arrays", () => {
  const inputs = ["", "a", "x".repeat(10_000), "emoji 😀 \ud83d", Buffer.alloc(0), Buffer.from("bytes"), new Uint16Array([1, 2, 3]), new DataView(new ArrayBuffer(5))]
  for (const i of inputs) assert.equal(hash256(/** @type {any} */ (i)), blitz.hash256(/** @type {any} */ (i)))
  for (const bad of [{}, [], 1n, true, () => 1]) {
    assert.throws(() => hash256(/** @type {any} */ (bad)), (/** @type {any} */ e) => e.code === "ERR_INVALID_ARG_TYPE")
  }
})

test("generateToken: alphabet, lengths, default", () => {
  assert.equal(tv.alphabet.length, 64)
  const alphabet = new Set(tv.alphabet)
  for (const s of tv.samples) {
    const n = s.length_arg === "undefined (default)" ? undefined : s.length_arg
    const t = generateToken(n)
    assert.equal(t.length, s.output_length)
    assert.equal(blitz.generateToken(n).length, t.length)
    for (const ch of t) assert.ok(alphabet.has(ch), ch)
    for (const ch of s.output) assert.ok(alphabet.has(ch), `vector char ${ch}`)
  }
  assert.equal(generateToken().length, tv.default_length)
})

test("generateToken draws every character uniformly (chi-square)", () => {
  const counts = new Map()
  const n = 64 * 2000
  const t = generateToken(n)
  for (const ch of t) counts.set(ch, (counts.get(ch) || 0) + 1)
  assert.equal(counts.size, 64)
  const expected = n / 64
  let chi = 0
  for (const c of counts.values()) chi += (c - expected) ** 2 / expected
  // 63 degrees of freedom: P(chi2 > 130) < 1e-6.
  assert.ok(chi < 130, `chi-square ${chi.toFixed(1)}`)
  const many = new Set(Array.from({ length: 10_000 }, () => generateToken()))
  assert.equal(many.size, 10_000)
})

test("generateToken rejects nonsense lengths with clear errors", () => {
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 21]) {
    assert.throws(() => generateToken(bad), (/** @type {any} */ e) => e.code === "ERR_OUT_OF_RANGE" && e instanceof RangeError, String(bad))
  }
  for (const bad of ["32", null, {}]) {
    assert.throws(() => generateToken(/** @type {any} */ (bad)), (/** @type {any} */ e) => e.code === "ERR_INVALID_ARG_TYPE" && e instanceof TypeError)
  }
  assert.equal(generateToken(0), "")
})

test("hash256 is exact around the native stack-buffer boundary, for 1- to 4-byte characters", () => {
  const crypto = require("node:crypto")
  for (let len = 0; len < 1100; len += 1) {
    for (const ch of ["x", "é", "€", "😀"]) {
      const s = ch.repeat(len).slice(0, len)
      assert.equal(hash256(s), crypto.createHash("sha256").update(s).digest("hex"), `${ch} × ${len}`)
    }
  }
})

test("pooled tokens never repeat characters across calls and keep the length asked for", () => {
  const seen = new Set()
  for (let i = 0; i < 5000; i++) {
    const n = i % 70
    const t = generateToken(n)
    assert.equal(t.length, n)
    if (n >= 16) {
      assert.ok(!seen.has(t), "a token was handed out twice")
      seen.add(t)
    }
  }
  assert.equal(generateToken(300).length, 300) // above the pooled size: made directly
})
