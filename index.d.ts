// Public types of blitz-auth-native. The native layer's own declarations are
// generated into binding.d.ts by the napi-rs CLI; this file describes the JS API.

/// <reference types="node" />

import type { HashPoolStats } from "./binding"

export type { HashPoolStats }

/** Blitz's `AuthenticationError` (the app's own class when `blitz` is installed). */
export declare class AuthenticationError extends Error {
  constructor(message?: string)
  name: "AuthenticationError"
  statusCode: 401
  get _clearStack(): boolean
}

/** Blitz's `AuthorizationError`. */
export declare class AuthorizationError extends Error {
  constructor(message?: string)
  name: "AuthorizationError"
  statusCode: 403
  get _clearStack(): boolean
}

/** Blitz's `CSRFTokenMismatchError`. */
export declare class CSRFTokenMismatchError extends Error {
  constructor(message?: string)
  name: "CSRFTokenMismatchError"
  statusCode: 401
  get _clearStack(): boolean
}

/** A password to hash or check: a string (hashed as UTF-8) or its bytes. */
export type PasswordInput = string | Buffer | Uint8Array

/** `secure-password`'s static members plus Blitz's `hash` and `verify`. */
export interface SecurePasswordApi {
  readonly HASH_BYTES: number
  readonly PASSWORD_BYTES_MIN: number
  readonly PASSWORD_BYTES_MAX: number
  readonly MEMLIMIT_MIN: number
  readonly MEMLIMIT_MAX: number
  readonly OPSLIMIT_MIN: number
  readonly OPSLIMIT_MAX: number
  readonly MEMLIMIT_DEFAULT: number
  readonly OPSLIMIT_DEFAULT: number
  /** `secure-password`'s own Symbols when that package is installed. */
  readonly INVALID_UNRECOGNIZED_HASH: symbol
  readonly INVALID: symbol
  readonly VALID: symbol
  readonly VALID_NEEDS_REHASH: symbol
  /**
   * Hash a password (argon2id, 64 MiB, t=2, p=1) off the event loop.
   * Resolves to the base64 string to store (172 characters).
   * Rejects with `AuthenticationError` for an empty/missing password and
   * `TypeError` (`ERR_INVALID_ARG_TYPE`) for a value that is not a string or bytes.
   */
  hash(password: PasswordInput | null | undefined): Promise<string>
  /**
   * Check a password against a stored hash. Resolves to `VALID`, or to
   * `VALID_NEEDS_REHASH` when the hash should be replaced by `hash(password)`;
   * rejects with `AuthenticationError` for a wrong password or an unusable hash.
   */
  verify(hashedPassword: string | Buffer | Uint8Array | null | undefined, password: PasswordInput | null | undefined): Promise<symbol>
  /** Blocking `hash`: holds the JS thread for the whole hash (scripts, seeds). */
  hashSync(password: PasswordInput | null | undefined): string
  /** Blocking `verify`. */
  verifySync(hashedPassword: string | Buffer | Uint8Array | null | undefined, password: PasswordInput | null | undefined): symbol
}

export declare const SecurePassword: SecurePasswordApi

/**
 * A random token of `numberOfCharacters` (default 32) characters from nanoid's
 * URL alphabet, drawn from the OS CSPRNG.
 * Throws `TypeError` for a non-number and `RangeError` for a non-integer, a
 * negative value or more than 1,048,576.
 */
export declare function generateToken(numberOfCharacters?: number): string

/**
 * Lower-case hex SHA-256 of a string (as UTF-8) or of bytes; `hash256()` hashes "".
 * Throws `TypeError` (`ERR_INVALID_ARG_TYPE`) for `null`, numbers and other values.
 */
export declare function hash256(input?: string | NodeJS.ArrayBufferView): string

/** Figures of the native password worker pool. */
export declare function hashPoolStats(): HashPoolStats

/** Stable `code` values of errors raised by the native core. */
export type NativeErrorCode =
  | "INVALID_ARGUMENT"
  | "RANDOM_UNAVAILABLE"
  | "PASSWORD_HASHING_FAILED"
  | "WORKER_POOL_UNAVAILABLE"
  | "INTERNAL_ERROR"

export declare const ERROR_CODES: readonly NativeErrorCode[]
