//! Build script: links the Node-API symbols when the `node` feature is on.

// The napi link flags are only wanted when the Node binding is built; `cargo test`
// of the core must not depend on a Node runtime.
fn main() {
    if std::env::var_os("CARGO_FEATURE_NODE").is_some() {
        napi_build::setup();
    }
}
