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

module.exports = { toNativeStore, MemoryStorage, kNativeStore }
