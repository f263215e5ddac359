"use strict"
// `blitz-auth-native/secure-password`, the counterpart of `@blitzjs/auth/secure-password`.
const { SecurePassword } = require("./lib/secure-password")

module.exports = { SecurePassword }
