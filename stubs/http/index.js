// @blitzjs/auth 3.0.2 depends on the placeholder package `http`; Node's own module is what it means.
module.exports = require("node:http")
