//! Micro-benchmark of the session engine without napi or JS:
//! `cargo run --release --example engine_micro`.
//! Prints the median time of `Engine::resolve` for a first visit and for an
//! authenticated GET on the in-memory store.
// A measuring tool, not shipped code: failing loudly on a broken set-up is right here.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::Instant;

use blitz_auth_native::session::config::SessionConfig;
use blitz_auth_native::session::engine::{Engine, RequestInput};
use blitz_auth_native::store::memory::MemoryStore;
use blitz_auth_native::store::JsonMerge;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let engine =
        Engine::new(SessionConfig::default(), Arc::new(MemoryStore::new())).expect("engine");
    let now = 1_736_942_400_000i64;
    let first = RequestInput {
        method: "GET",
        cookie_header: None,
        anti_csrf_header: None,
        now_ms: now,
        read_only: false,
    };
    // Log in once to get an authenticated cookie header.
    let Ok(mut s) = rt.block_on(engine.resolve(&first)) else {
        panic!("resolve failed")
    };
    let mut set = serde_json::Map::new();
    set.insert("userId".into(), 1.into());
    set.insert("role".into(), "user".into());
    rt.block_on(s.create(
        &JsonMerge {
            set,
            remove: vec![],
        },
        None,
        now,
    ))
    .expect("create");
    let cookie: String = s
        .response()
        .cookies
        .iter()
        .filter_map(|c| c.split(';').next())
        .filter(|p| !p.ends_with('='))
        .collect::<Vec<_>>()
        .join("; ");
    let auth = RequestInput {
        method: "GET",
        cookie_header: Some(&cookie),
        anti_csrf_header: None,
        now_ms: now + 60_000,
        read_only: false,
    };
    for (name, input) in [("first visit", &first), ("authenticated GET", &auth)] {
        let mut samples = Vec::new();
        for _ in 0..30 {
            let n = 2000;
            let t = Instant::now();
            for _ in 0..n {
                let r = rt.block_on(engine.resolve(input));
                std::hint::black_box(&r.is_ok());
            }
            samples.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
        println!("{name:20} {:.2} µs", median(samples));
    }
}
