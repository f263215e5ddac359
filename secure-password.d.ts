export { SecurePassword, SecurePasswordApi, PasswordInput } from "./index"
