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
  | "INVALID_CONFIG"
  | "SESSION_STORE_UNAVAILABLE"
  | "SESSION_STORE_FAILED"
  | "CSRF_TOKEN_MISMATCH"
  | "INVALID_SESSION_OPERATION"
  | "INVALID_ARGUMENT"
  | "RANDOM_UNAVAILABLE"
  | "PASSWORD_HASHING_FAILED"
  | "WORKER_POOL_UNAVAILABLE"
  | "INTERNAL_ERROR"

export declare const ERROR_CODES: readonly NativeErrorCode[]

// ---------------------------------------------------------------------------
// Sessions

/** Augment this interface (as in Blitz) to type `session.$publicData`. */
export interface Session {
  // PublicData?: { userId: number; role: string }
}

/** The public data of a session: `Session["PublicData"]` when declared, else an open record. */
export type PublicData = Session extends { PublicData: infer P } ? P & { userId: unknown } : { userId: unknown; [key: string]: unknown }

/** Blitz's storage interface (`SessionConfigMethods`), e.g. its `PrismaStorage(db)`. */
export interface SessionModel {
  handle: string
  userId?: unknown
  expiresAt?: Date | null
  hashedSessionToken?: string | null
  antiCSRFToken?: string | null
  publicData?: string | null
  privateData?: string | null
  [key: string]: unknown
}

export interface SessionConfigMethods {
  getSession: (handle: string) => Promise<SessionModel | null>
  getSessions: (userId: PublicData["userId"]) => Promise<SessionModel[]>
  createSession: (session: SessionModel) => Promise<SessionModel>
  updateSession: (handle: string, session: Partial<SessionModel>) => Promise<SessionModel | undefined>
  deleteSession: (handle: string) => Promise<SessionModel | undefined>
}

/** The in-memory store (the default when `storage` is not given). */
export declare class MemoryStorage {
  constructor()
}

export interface RedisStorageOptions {
  /** `redis://[:password@]host:port[/db]`, or Cluster seed nodes. Default: `REDIS_URL`, else redis://127.0.0.1:6379. */
  url?: string | string[]
  /** Key prefix (default "blitz-auth:"). */
  prefix?: string
  /** Redis Cluster (default false). */
  cluster?: boolean
  /** Connections kept open, each multiplexing every request sent on it (default 1: the requests of one event-loop turn share one write). */
  poolSize?: number
  /** Bound on every Redis call in ms; past it the request fails with `SESSION_STORE_UNAVAILABLE` (default 1000). */
  timeoutMs?: number
  /** Idle lifetime of anonymous private-data rows in ms (default 30 days; 0 = never). */
  anonymousTtlMs?: number
}

/** A session store in Redis, to pass as `storage`. */
export interface RedisSessionStorage {
  readonly [key: symbol]: unknown
}

/** Sessions in Redis (single node or Cluster): `storage: RedisStorage({ url })`. */
export declare function RedisStorage(options?: RedisStorageOptions): RedisSessionStorage

export interface IsAuthorizedArgs {
  ctx: { session: SessionContext }
  args: any[]
}

/** Options of `AuthServerPlugin` (Blitz's names and defaults). */
export interface AuthPluginOptions {
  /** Prefix of every cookie name (default "blitz"); give Blitz's client the same. */
  cookiePrefix?: string
  /** Idle window of a logged-in session, in minutes (default 43200 = 30 days). */
  sessionExpiryMinutes?: number
  /** Lifetime of an anonymous session's cookies, in minutes (default 2628000 ≈ 5 years). */
  anonSessionExpiryMinutes?: number
  /** Only "essential" exists. */
  method?: "essential"
  /** Cookie SameSite: "lax" (default), "strict", "none", true (strict) or false (omitted). */
  sameSite?: "lax" | "strict" | "none" | "Lax" | "Strict" | "None" | boolean
  /** Add Secure to every cookie (default: in production, unless DISABLE_SECURE_COOKIES=1/true). */
  secureCookies?: boolean
  /** Cookie Domain attribute. */
  domain?: string
  /** Public-data keys copied to all of a user's sessions by `$setPublicData` (default ["role", "roles"]). */
  publicDataKeysToSyncAcrossSessions?: string[]
  /** Where sessions live: omitted = in memory; an app's SessionConfigMethods (e.g. PrismaStorage(db)); or a store of this package. */
  storage?: SessionConfigMethods | MemoryStorage | RedisSessionStorage
  /** Authorization rule of `$authorize` / `$isAuthorized`, e.g. `simpleRolesIsAuthorized`. */
  isAuthorized: (input: IsAuthorizedArgs) => boolean
}

/** A request's session (Blitz's `SessionContext`). Unknown properties read from `$publicData`. */
export interface SessionContext {
  readonly $handle: string
  readonly userId: PublicData["userId"] | null
  readonly $publicData: PublicData | ({ userId: null } & Partial<Omit<PublicData, "userId">>)
  $antiCSRFToken(): string
  $authorize(...args: any[]): void
  $isAuthorized(...args: any[]): boolean
  $thisIsAuthorized(...args: any[]): boolean
  /** Write this request's cookies and headers to a response. */
  setSession(response: Response | import("http").ServerResponse): void
  /** Log in: needs `publicData.userId` (any value but null/undefined). */
  $create(publicData: PublicData, privateData?: Record<string, any>): Promise<void>
  /** Log out; the request continues with a new anonymous session. */
  $revoke(): Promise<void>
  /** Log out every session of this user. */
  $revokeAll(): Promise<void>
  /** Shallow-merge into the public data (`userId` cannot change). */
  $setPublicData(data: Record<string, any>): Promise<void>
  $getPrivateData(): Promise<Record<string, any>>
  $setPrivateData(data: Record<string, any>): Promise<void>
  [key: string]: unknown
}

export declare const SessionContextClass: new (...args: any[]) => SessionContext

type NodeReq = import("http").IncomingMessage
type NodeRes = import("http").ServerResponse

/** The request's session. With a Node `res`, cookies are written to it at once. */
export declare function getSession(req: Request): Promise<SessionContext>
export declare function getSession(req: NodeReq, res: NodeRes, isRsc?: boolean): Promise<SessionContext>
export declare function getSession(req: Request | NodeReq | { headers: Record<string, string>; method?: string }, res?: NodeRes | null, isRsc?: boolean): Promise<SessionContext>

/** Write a session's cookies and headers to a response. */
export declare function setSession(session: SessionContext, response: Response | NodeRes): void

/** Merge `data` into the public data of every live session of `userId`. */
export declare function setPublicDataForUser(userId: PublicData["userId"], data: Record<string, any>): Promise<void>

/** Handles of the live sessions of `userId`. */
export declare function getAllSessionHandlesForUser(userId: PublicData["userId"]): Promise<string[]>

/** Blitz's role check: `publicData.role` (string) or `publicData.roles` (array) against `args[0]`. */
export declare function simpleRolesIsAuthorized(input: IsAuthorizedArgs): boolean

type RouteHandler = (request: Request, params: any, ctx: { session: SessionContext }) => Response | Promise<Response>

/** App Router: one handler, or an object of handlers by HTTP method. */
export declare function withBlitzAuth(handler: RouteHandler): (request: Request, params: any) => Promise<Response>
export declare function withBlitzAuth<H extends Record<string, RouteHandler>>(
  handlers: H,
): { [K in keyof H]: (request: Request, params: any) => Promise<Response> }

/** Pages Router API route with `ctx.session`. */
export declare function api(
  handler: (req: NodeReq & Record<string, any>, res: NodeRes & Record<string, any>, ctx: { session: SessionContext }) => unknown,
): (req: NodeReq, res: NodeRes) => Promise<unknown>

/** getServerSideProps with `ctx.session`. */
export declare function gSSP<P = any>(
  handler: (args: { req: NodeReq; res: NodeRes; ctx: { session: SessionContext }; [key: string]: any }) => P | Promise<P>,
): (context: { req: NodeReq; res: NodeRes; [key: string]: any }) => Promise<P>

/** React Server Components: the current request's session (read-only). */
export declare function getBlitzContext(): Promise<{ session: SessionContext }>
export declare function useAuthenticatedBlitzContext(options?: {
  redirectTo?: string | ((ctx: { session: SessionContext }) => string)
  redirectAuthenticatedTo?: string | ((ctx: { session: SessionContext }) => string)
  role?: string | string[]
}): Promise<{ session: SessionContext }>

/** The Blitz server plugin (for `setupBlitzServer({ plugins: [...] })`). */
export declare function AuthServerPlugin(options: AuthPluginOptions): {
  requestMiddlewares: Array<(req: NodeReq, res: NodeRes, next: () => unknown) => Promise<unknown>>
  exports: () => {
    getBlitzContext: typeof getBlitzContext
    useAuthenticatedBlitzContext: typeof useAuthenticatedBlitzContext
    withBlitzAuth: typeof withBlitzAuth
  }
}

export declare const TOKEN_SEPARATOR: ";"
export declare const HANDLE_SEPARATOR: ":"
export declare const SESSION_TYPE_OPAQUE_TOKEN_SIMPLE: "ots"
export declare const SESSION_TYPE_ANONYMOUS_JWT: "ajwt"
export declare const SESSION_TOKEN_VERSION_0: "v0"
export declare const HEADER_CSRF: "anti-csrf"
export declare const HEADER_CSRF_ERROR: "csrf-error"
export declare const HEADER_PUBLIC_DATA_TOKEN: "public-data-token"
export declare const HEADER_SESSION_CREATED: "session-created"
export declare const LOCALSTORAGE_PREFIX: "_blitz-"
export declare const COOKIE_ANONYMOUS_SESSION_TOKEN: () => string
export declare const COOKIE_SESSION_TOKEN: () => string
export declare const COOKIE_REFRESH_TOKEN: () => string
export declare const COOKIE_CSRF_TOKEN: () => string
export declare const COOKIE_PUBLIC_DATA_TOKEN: () => string
export declare const LOCALSTORAGE_CSRF_TOKEN: () => string
export declare const LOCALSTORAGE_PUBLIC_DATA_TOKEN: () => string
