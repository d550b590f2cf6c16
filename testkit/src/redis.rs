//! The baseline the benchmarks hold lookups against: a `redis-server` with
//! no persistence on 127.0.0.1, and `redis-benchmark -t get` runs against
//! it with the CPU time each side used. That test asks for a key nobody
//! set, so each reply is redis's 5-byte nil; [`Redis::set`] and a run
//! with [`Get::Key`] give a baseline whose replies are as long as a
//! lookup's. Debian's redis-server package has both programs
//! (scripts/bench-servers and scripts/bench-witnesses install it).

use crate::free_port_on;
use crate::process::{self, Proc};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The programs the baseline runs.
pub const TOOLS: [&str; 2] = ["redis-server", "redis-benchmark"];

/// How long redis-server may take to start listening.
pub const START_LIMIT: Duration = Duration::from_secs(30);

/// How long one redis-benchmark run may take.
pub const RUN_LIMIT: Duration = Duration::from_secs(300);

/// Pause between looks at a running redis-benchmark.
const POLL: Duration = Duration::from_millis(20);

/// The first of [`TOOLS`] that is not on PATH, if any.
pub fn missing_tool() -> Option<&'static str> {
    TOOLS
        .into_iter()
        .find(|tool| crate::find_on_path(tool).is_none())
}

/// What a redis-benchmark run asks for.
#[derive(Clone, Copy)]
pub enum Get<'a> {
    /// `-t get`: a key nobody set, answered with a nil.
    Missing,
    /// `GET key`, a key [`Redis::set`] gave a value.
    Key(&'a str),
}

/// A running `redis-server`, stopped by its PID when dropped.
pub struct Redis {
    proc: Proc,
    port: u16,
}

/// One redis-benchmark run.
pub struct RedisRun {
    /// GETs per second, as redis-benchmark reports them.
    pub rate: f64,
    /// redis-server's CPU seconds during the run.
    pub server_cpu: f64,
    /// redis-benchmark's CPU seconds (it is reaped in between).
    pub client_cpu: f64,
}

impl Redis {
    /// Starts redis-server on a free port of 127.0.0.1, working and
    /// logging in `dir`, and waits (bounded) until it listens.
    pub fn start(dir: &Path) -> Redis {
        let port = free_port_on("127.0.0.1");
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .current_dir(dir);
        let mut proc = Proc::spawn(
            command,
            &format!("redis-server on 127.0.0.1:{port}"),
            &dir.join("redis.log"),
        );
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        proc.wait_listening(addr, START_LIMIT);
        Redis { proc, port }
    }

    /// Sets `key` to `bytes` bytes of `x`, over one connection of its own.
    pub fn set(&mut self, key: &str, bytes: usize) {
        let value = "x".repeat(bytes);
        let command = format!(
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${bytes}\r\n{value}\r\n",
            key.len()
        );
        let mut conn = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("connecting to redis-server: {e}"));
        conn.set_read_timeout(Some(START_LIMIT))
            .expect("a read timeout");
        conn.write_all(command.as_bytes())
            .unwrap_or_else(|e| panic!("sending SET to redis-server: {e}"));
        let mut reply = [0u8; 5];
        conn.read_exact(&mut reply)
            .unwrap_or_else(|e| panic!("reading the SET reply: {e}"));
        assert_eq!(&reply, b"+OK\r\n", "redis-server's reply to SET {key}");
    }

    /// One `redis-benchmark -c CONNS -n REQUESTS -q` run of `get`, its
    /// output in `dir`.
    pub fn get_run(&mut self, dir: &Path, get: Get<'_>, conns: usize, requests: usize) -> RedisRun {
        self.proc.check_running();
        let out = dir.join("redis-benchmark.out");
        let mut command = Command::new("redis-benchmark");
        command
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-c", &conns.to_string()])
            .args(["-n", &requests.to_string(), "-q"]);
        match get {
            Get::Missing => command.args(["-t", "get"]),
            Get::Key(key) => command.args(["GET", key]),
        };
        let server_cpu = self.proc.cpu_secs();
        let client_cpu = process::children_cpu_secs();
        let mut run = Proc::spawn(command, "redis-benchmark", &out);
        let deadline = Instant::now() + RUN_LIMIT;
        let status = loop {
            if let Some(status) = run.exited() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "redis-benchmark ran over {RUN_LIMIT:?}"
            );
            std::thread::sleep(POLL);
        };
        let client_cpu = process::children_cpu_secs() - client_cpu;
        let server_cpu = self.proc.cpu_secs() - server_cpu;
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        assert!(
            status.success(),
            "redis-benchmark failed ({status}): {text}"
        );
        let rate = parse_get_rate(&text)
            .unwrap_or_else(|| panic!("no \"GET...: N requests per second\" in {text:?}"));
        RedisRun {
            rate,
            server_cpu,
            client_cpu,
        }
    }
}

/// The rate of `GET: 123456.79 requests per second, p50=...` (or `GET
/// key: ...` for a run of `GET key`) in redis-benchmark's `-q` output
/// (progress lines end with `\r`).
pub fn parse_get_rate(text: &str) -> Option<f64> {
    text.split(['\r', '\n'])
        .filter(|l| l.contains("requests per second"))
        .filter_map(|l| l.strip_prefix("GET")?.split_once(": "))
        .filter_map(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .next_back()
}
