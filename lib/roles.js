"use strict"
// simpleRolesIsAuthorized, exactly as Blitz's (spec §14), messages verbatim.

/**
 * @param {{ ctx: { session: { $publicData: any } }, args: any[] }} input
 * @returns {boolean}
 */
function simpleRolesIsAuthorized({ ctx, args }) {
  const pd = ctx.session.$publicData
  const want = args[0]
  if ("role" in pd && "roles" in pd) {
    throw new Error("Session publicData can only have only `role` or `roles`, but not both.'")
  }
  /** @type {unknown[]} */
  let roles
  if ("role" in pd) {
    if (typeof pd.role !== "string") throw new Error("Session publicData.role field must be a string")
    roles = [pd.role]
  } else if ("roles" in pd) {
    if (!Array.isArray(pd.roles)) throw new Error("Session `publicData.roles` is not an array, but it must be")
    roles = pd.roles
  } else {
    throw new Error("Session publicData is missing the required `role` or roles` field")
  }
  if (!want) return true
  const wanted = Array.isArray(want) ? want : [want]
  return wanted.some((r) => roles.includes(r))
}

module.exports = { simpleRolesIsAuthorized }
