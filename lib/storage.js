"use strict"
// Stores the session engine can use: the embedded in-memory store (default)
// and an adapter for an app's own JS storage (Blitz's SessionConfigMethods,
// e.g. its PrismaStorage). The adapter only converts values: JSON text and
// epoch milliseconds on the native side, Dates and the app's own user ids on
// the JS side.

const { binding } = require("./native")

/** Marks objects that already are native stores. */
const kNativeStore = Symbol.for("blitz-auth-native.store")

const METHODS = /** @type {const} */ (["getSession", "getSessions", "createSession", "updateSession", "deleteSession"])

/** Prisma's "record not found" codes: a missing row, not a failure. */
const NOT_FOUND_CODES = new Set(["P2025", "P2016"])

/** @param {any} row */
function rowToJson(row) {
  if (row === null || row === undefined) return null
  const out = { ...row }
  if (out.expiresAt instanceof Date) out.expiresAt = out.expiresAt.getTime()
  else if (typeof out.expiresAt === "string") out.expiresAt = Date.parse(out.expiresAt)
  return out
}

/** @param {any} obj */
function withDates(obj) {
  if (obj && typeof obj.expiresAt === "number") return { ...obj, expiresAt: new Date(obj.expiresAt) }
  return obj
}

/**
 * A native store backed by an app's SessionConfigMethods.
 * @param {Record<string, Function>} storage
 */
function fromSessionConfigMethods(storage) {
  for (const m of METHODS) {
    if (typeof storage[m] !== "function") {
      throw Object.assign(new TypeError(`storage.${m} must be a function (Blitz's SessionConfigMethods)`), {
        code: "INVALID_CONFIG",
      })
    }
  }
  /** @param {string} requestJson */
  const bridge = async (requestJson) => {
    const { op, args } = JSON.parse(requestJson)
    try {
      switch (op) {
        case "getSession":
          return JSON.stringify(rowToJson(await storage.getSession(args[0])))
        case "getSessions": {
          const rows = await storage.getSessions(args[0])
          return JSON.stringify(Array.isArray(rows) ? rows.map(rowToJson) : [])
        }
        case "createSession":
          await storage.createSession(withDates(args[0]))
          return null
        case "updateSession": {
          const r = await storage.updateSession(args[0], withDates(args[1]))
          return r === false ? "false" : null
        }
        case "deleteSession":
          await storage.deleteSession(args[0])
          return null
        default:
          throw new Error(`unknown storage operation ${op}`)
      }
    } catch (e) {
      const err = /** @type {any} */ (e)
      if ((op === "updateSession" || op === "deleteSession") && NOT_FOUND_CODES.has(err?.code)) return "false"
      const code = err?.code === "SESSION_STORE_UNAVAILABLE" ? "SESSION_STORE_UNAVAILABLE" : "SESSION_STORE_FAILED"
      throw new Error(`${code}|storage.${op} failed: ${err?.message ?? String(err)}`)
    }
  }
  return binding.NativeStore.fromJs(bridge)
}

/**
 * The native store for the `storage` option: ours as is, an app's
 * SessionConfigMethods through the adapter, nothing for the in-memory default.
 * @param {any} storage
 */
function toNativeStore(storage) {
  if (storage === undefined || storage === null) return binding.NativeStore.memory()
  if (storage[kNativeStore]) return storage[kNativeStore]
  if (typeof storage === "object") return fromSessionConfigMethods(storage)
  throw Object.assign(new TypeError("storage must be a SessionConfigMethods object or a store from blitz-auth-native"), {
    code: "INVALID_CONFIG",
  })
}

/** The in-memory store, explicitly (it is also the default). */
class MemoryStorage {
  constructor() {
    /** @type {any} */
    this[kNativeStore] = binding.NativeStore.memory()
  }
}

/**
 * @typedef {object} RedisStorageOptions
 * @property {string | string[]} [url] `redis://[:password@]host:port[/db]`; for a Cluster, one or more seed nodes. Default: `REDIS_URL`, else redis://127.0.0.1:6379
 * @property {string} [prefix] key prefix (default "blitz-auth:"; no `{` or `}`)
 * @property {boolean} [cluster] Redis Cluster (default false)
 * @property {number} [poolSize] connections kept open, each multiplexing every request sent on it (default 1: the requests of one event-loop turn then share one write)
 * @property {number} [timeoutMs] bound on every Redis call; past it a request fails with SESSION_STORE_UNAVAILABLE (default 1000)
 * @property {number} [anonymousTtlMs] idle lifetime of anonymous private-data rows (default 30 days; 0: never expire)
 */

/** @param {string} message */
const optionError = (message) => Object.assign(new TypeError(`RedisStorage: ${message}`), { code: "INVALID_CONFIG" })

/**
 * Sessions in Redis (single node or Cluster), shared by every process of the
 * app: `AuthServerPlugin({ storage: RedisStorage({ url }), … })`. Callable with
 * or without `new`. Connections open on first use.
 * @param {RedisStorageOptions} [options]
 */
function RedisStorage(options = {}) {
  if (options === null || typeof options !== "object") throw optionError("options must be an object")
  const url = options.url ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
  const urls = Array.isArray(url) ? url : [url]
  if (urls.length === 0 || !urls.every((u) => typeof u === "string" && u.length > 0)) {
    throw optionError("url must be a redis:// URL or a list of them")
  }
  /** @param {string} name @param {unknown} v */
  const count = (name, v) => {
    if (v === undefined) return undefined
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw optionError(`${name} must be a non-negative integer`)
    return v
  }
  if (options.prefix !== undefined && typeof options.prefix !== "string") throw optionError("prefix must be a string")
  const store = binding.NativeStore.redis({
    urls,
    prefix: options.prefix,
    cluster: options.cluster === undefined ? undefined : Boolean(options.cluster),
    poolSize: count("poolSize", options.poolSize),
    timeoutMs: count("timeoutMs", options.timeoutMs),
    anonymousTtlMs: count("anonymousTtlMs", options.anonymousTtlMs),
  })
  return { [kNativeStore]: store }
}

module.exports = { toNativeStore, MemoryStorage, RedisStorage, kNativeStore }
