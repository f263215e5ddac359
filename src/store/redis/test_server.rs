//! Test-only: `redis-server` processes of a test's own, on free loopback
//! ports, each in a temp directory, and a three-node Cluster made of them.
//!
//! A server is killed (SIGKILL) and its directory removed on drop, also when
//! the test panics. Each also gets a small `sh` watchdog that does the same
//! when the test process dies without unwinding (an abort, a CI timeout, or
//! a server held in a `static`, which is never dropped).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::token::generate_token;

/// How long a server may take to answer `PING` (or a Cluster to be `ok`).
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A free loopback port. With `bus`, `port + 10000` (the Cluster bus) is
/// free too. Another process may take it before the server binds it; the
/// start then fails with the server's log, which says so.
pub fn free_port(bus: bool) -> u16 {
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind a loopback port")
            .port();
        if !bus {
            return port;
        }
        if port <= 55_535 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port (with its Cluster bus port) in 100 tries")
}

/// `redis-cli -p <port> <args>` on loopback: its stdout, or `None` when it
/// could not run or Redis answered with an error.
pub fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success() && !text.starts_with("ERR") && !text.starts_with("LOADING"))
        .then_some(text)
}

/// One `redis-server` on `127.0.0.1:<port>`, its files in a temp directory.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    watchdog: Option<Child>,
}

impl RedisServer {
    /// Start a server without persistence (`--save ""`, `--appendonly no`);
    /// `extra` arguments come last, so they may override those.
    pub fn start(extra: &[&str]) -> RedisServer {
        let port = free_port(extra.contains(&"--cluster-enabled"));
        let dir = std::env::temp_dir().join(format!(
            "blitz-auth-redis-{}-{port}-{}",
            std::process::id(),
            generate_token(8).expect("random")
        ));
        std::fs::create_dir_all(&dir).expect("create the server's temp dir");
        let mut server = RedisServer {
            port,
            dir,
            args: extra.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
            watchdog: None,
        };
        server.restart();
        server
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its `redis://` URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL the server (no shutdown, no final save) and reap it.
    pub fn kill(&mut self) {
        for mut child in [self.watchdog.take(), self.child.take()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the server (again) on the same port, directory and arguments,
    /// and wait until it answers `PING`.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.port.to_string();
        let dir = self.dir.to_string_lossy().into_owned();
        let log = self.log_path().to_string_lossy().into_owned();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--dir", &dir])
            .args(["--logfile", &log, "--save", "", "--appendonly", "no"])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); these tests need it on PATH")
            });
        self.watchdog = Some(watchdog(child.id(), &self.dir));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if cli(self.port, &["PING"]).is_some_and(|r| r.trim() == "PONG") {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                panic!(
                    "redis-server on 127.0.0.1:{} did not answer PING (exit: {exited:?}); its log ends:\n{}",
                    self.port,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A shell that SIGKILLs `pid` and removes `dir` once this test process is
/// gone; killed itself when the server is killed normally.
fn watchdog(pid: u32, dir: &Path) -> Child {
    Command::new("sh")
        .args([
            "-c",
            r#"while kill -0 "$0" 2>/dev/null; do sleep 0.2; done; kill -9 "$1" 2>/dev/null; rm -rf "$2""#,
        ])
        .arg(std::process::id().to_string())
        .arg(pid.to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the redis-server watchdog")
}

/// A Redis Cluster of three primaries on loopback, no replicas.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Start three `--cluster-enabled` nodes, join them with
    /// `redis-cli --cluster create`, and wait until every node reports
    /// `cluster_state:ok`.
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                // The config file name needs the port, known only inside
                // `start`; one directory per node, so a fixed name will do.
                RedisServer::start(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + START_TIMEOUT;
        for n in &nodes {
            loop {
                let info = cli(n.port(), &["CLUSTER", "INFO"]).unwrap_or_default();
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node 127.0.0.1:{} never reached cluster_state:ok:\n{info}",
                    n.port()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        RedisCluster { nodes }
    }

    /// The nodes' `redis://` URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes' ports.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }
}
