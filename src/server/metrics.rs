//! Prometheus metrics (`--metrics IP:PORT`): the counters the other
//! threads bump as things happen, the text of one scrape (exposition
//! format 0.0.4), and the small HTTP server that answers `GET /metrics`.
//!
//! Counters are atomics in [`Metrics`], held in [`Shared`]; gauges are read
//! when scraped from what the server already keeps (the store, `Stats`,
//! the audit, a witness's report), so nothing is counted twice. The HTTP
//! side is one thread with a non-blocking std listener polled every
//! [`POLL`], never the protocol's event loop: it answers one connection at
//! a time, each read within [`READ_LIMIT`] and [`REQUEST_LIMIT`] bytes, and
//! stops within a poll of a stop request.

use super::Shared;
use crate::clock;
use crate::store::{LatencySnapshot, LATENCY_BUCKETS};
use crate::wire::{Code, ServerRole, WireError, CODES};
use std::fmt::{Display, Write as _};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the listener is polled, and so how soon the thread stops.
pub const POLL: Duration = Duration::from_millis(100);
/// Longest time a client may take to send its request.
pub const READ_LIMIT: Duration = Duration::from_secs(2);
/// Longest request (request line and headers), in bytes.
pub const REQUEST_LIMIT: usize = 8192;
/// Longest time a reply may take to write.
const WRITE_LIMIT: Duration = Duration::from_secs(5);
/// After refusing a request, how long unread input is drained so the
/// close is orderly (a close with unread input resets the connection and
/// can destroy the reply).
const LINGER: Duration = Duration::from_secs(1);
/// Most bytes drained while lingering.
const LINGER_BYTES: usize = 1 << 20;

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a lookup came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A record, with its presence proof.
    Found,
    /// An absence proof.
    NotFound,
    /// No head to answer against yet.
    NoHead,
    /// The store failed.
    Error,
}

impl Lookup {
    /// Every result, in the order counted.
    const ALL: [Lookup; 4] = [
        Lookup::Found,
        Lookup::NotFound,
        Lookup::NoHead,
        Lookup::Error,
    ];

    /// The `result` label.
    fn as_str(self) -> &'static str {
        match self {
            Lookup::Found => "found",
            Lookup::NotFound => "not_found",
            Lookup::NoHead => "no_head",
            Lookup::Error => "error",
        }
    }
}

/// Where `code` is counted: its place in [`CODES`].
fn code_index(code: Code) -> usize {
    CODES.iter().position(|c| *c == code).unwrap_or(0)
}

/// Counters bumped where things happen; only atomics, never a lock.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Lookups by [`Lookup`].
    lookups: [AtomicU64; Lookup::ALL.len()],
    /// Puts: accepted first, then refused by code (in [`CODES`] order).
    puts: [AtomicU64; CODES.len() + 1],
    /// `error` replies by code (in [`CODES`] order).
    errors: [AtomicU64; CODES.len()],
    /// Subscribers dropped for a full queue.
    subscribers_dropped: AtomicU64,
}

impl Metrics {
    /// Counts a lookup's result.
    pub fn lookup(&self, result: Lookup) {
        let i = Lookup::ALL.iter().position(|r| *r == result).unwrap_or(0);
        self.lookups[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a put answered `accepted` (a repeat of the live record too).
    pub fn put_accepted(&self) {
        self.puts[0].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a put refused with `code`.
    pub fn put_refused(&self, code: Code) {
        self.puts[1 + code_index(code)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an `error` reply with `code`.
    pub fn error(&self, code: Code) {
        self.errors[code_index(code)].fetch_add(1, Ordering::Relaxed);
    }

    /// The `error` reply line of `err`, counted: every error the server
    /// sends goes through here.
    pub fn error_line(&self, err: &WireError) -> Vec<u8> {
        self.error(err.code);
        err.to_line()
    }

    /// Counts a subscriber dropped for a full queue.
    pub fn subscriber_dropped(&self) {
        self.subscribers_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// A mirror's upstream, as scraped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UpstreamSnapshot {
    /// Whether the upstream session is up.
    pub connected: bool,
    /// Records the upstream holds that this mirror does not.
    pub lag_records: u64,
    /// Seconds since the mirror last held everything (0 when it does).
    pub lag_secs: u64,
}

/// A mirror's audit, as scraped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditSnapshot {
    /// Heads audited since start.
    pub checked: u64,
    /// Of those, how many did not match.
    pub mismatches: u64,
    /// Whether it holds evidence of two conflicting heads.
    pub evidence: bool,
}

/// Everything one scrape shows, read at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Quorum or mirror.
    pub role: ServerRole,
    /// When (Unix seconds) the server started.
    pub started: u64,
    /// Lookups by [`Lookup`] (in `Lookup::ALL` order).
    pub lookups: [u64; 4],
    /// Puts: accepted, then refused by code.
    pub puts: [u64; CODES.len() + 1],
    /// `error` replies by code.
    pub errors: [u64; CODES.len()],
    /// Open connections.
    pub connections: u64,
    /// Current subscribers.
    pub subscribers: u64,
    /// Subscribers dropped for a full queue.
    pub subscribers_dropped: u64,
    /// Highest seq in the log.
    pub seq: u64,
    /// The head's seq and time: the Quorum's newest, a mirror's current.
    pub head: Option<(u64, u64)>,
    /// Names whose newest record has not expired.
    pub live_records: u64,
    /// At a mirror, its upstream.
    pub upstream: Option<UpstreamSnapshot>,
    /// The store's fsyncs.
    pub fsync: LatencySnapshot,
    /// At a mirror, its audit.
    pub audit: Option<AuditSnapshot>,
    /// At a witness, cosignatures made and heads refused since start.
    pub witness: Option<(u64, u64)>,
}

fn load<const N: usize>(counters: &[AtomicU64; N]) -> [u64; N] {
    std::array::from_fn(|i| counters[i].load(Ordering::Relaxed))
}

impl Snapshot {
    /// Reads everything `shared` holds. Locks the audit and a witness's
    /// report one at a time, briefly, as status does.
    pub fn of(shared: &Shared) -> Snapshot {
        let metrics = &shared.metrics;
        let stats = &shared.stats;
        let store = &shared.store;
        let role = shared.role();
        let head = match role {
            ServerRole::Quorum => store.newest_head(),
            ServerRole::Mirror => store.current_head(),
        };
        let upstream = shared.upstream.as_ref().map(|_| {
            let (lag_records, lag_secs) = shared.upstream_lag();
            UpstreamSnapshot {
                connected: stats.upstream_connected.load(Ordering::Relaxed),
                lag_records,
                lag_secs,
            }
        });
        let audit = shared.audit.as_ref().map(|audit| {
            let audit = audit.lock();
            AuditSnapshot {
                checked: audit.checked(),
                mismatches: audit.mismatches(),
                evidence: audit.holds_evidence(),
            }
        });
        let witness = shared.witness.as_ref().map(|report| {
            let report = report.lock();
            (report.made, report.refused)
        });
        Snapshot {
            role,
            started: stats.started.load(Ordering::Relaxed),
            lookups: load(&metrics.lookups),
            puts: load(&metrics.puts),
            errors: load(&metrics.errors),
            connections: stats.connections.load(Ordering::Relaxed) as u64,
            subscribers: stats.subscribers.load(Ordering::Relaxed) as u64,
            subscribers_dropped: metrics.subscribers_dropped.load(Ordering::Relaxed),
            seq: store.seq(),
            head: head.map(|h| (h.seq, h.time)),
            live_records: store.live_count(clock::now()) as u64,
            upstream,
            fsync: store.fsync_latency(),
            audit,
            witness,
        }
    }

    /// The scrape's text, exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = Text(String::with_capacity(8192));
        out.family("onions_info", "The server's role and version.", "gauge");
        out.sample(
            "onions_info",
            &[
                ("role", self.role.as_str()),
                ("version", env!("CARGO_PKG_VERSION")),
            ],
            1,
        );
        out.family(
            "onions_start_time_seconds",
            "When the server started, in Unix seconds.",
            "gauge",
        );
        out.sample("onions_start_time_seconds", &[], self.started);

        out.family(
            "onions_lookups_total",
            "Lookups answered, by result.",
            "counter",
        );
        for (result, n) in Lookup::ALL.iter().zip(self.lookups) {
            out.sample("onions_lookups_total", &[("result", result.as_str())], n);
        }
        out.family(
            "onions_puts_total",
            "Puts answered, by result: accepted, or the code they were refused with.",
            "counter",
        );
        out.sample("onions_puts_total", &[("result", "accepted")], self.puts[0]);
        for (code, n) in CODES.iter().zip(&self.puts[1..]) {
            out.sample("onions_puts_total", &[("result", code.as_str())], n);
        }
        out.family(
            "onions_errors_total",
            "Error replies sent, by code.",
            "counter",
        );
        for (code, n) in CODES.iter().zip(self.errors) {
            out.sample("onions_errors_total", &[("code", code.as_str())], n);
        }

        out.family("onions_connections", "Open connections.", "gauge");
        out.sample("onions_connections", &[], self.connections);
        out.family("onions_subscribers", "Current subscribers.", "gauge");
        out.sample("onions_subscribers", &[], self.subscribers);
        out.family(
            "onions_subscribers_dropped_total",
            "Subscribers dropped because their queue was full (--subscriber-queue).",
            "counter",
        );
        out.sample(
            "onions_subscribers_dropped_total",
            &[],
            self.subscribers_dropped,
        );

        out.family("onions_seq", "Highest seq in the log.", "gauge");
        out.sample("onions_seq", &[], self.seq);
        let (head_seq, head_time) = self.head.unwrap_or((0, 0));
        out.family(
            "onions_head_seq",
            "Seq of the head: the Quorum's newest, the one a mirror answers with (0 without one).",
            "gauge",
        );
        out.sample("onions_head_seq", &[], head_seq);
        out.family(
            "onions_head_time_seconds",
            "Time of that head, in Unix seconds (0 without one).",
            "gauge",
        );
        out.sample("onions_head_time_seconds", &[], head_time);
        out.family(
            "onions_live_records",
            "Names whose newest record has not expired.",
            "gauge",
        );
        out.sample("onions_live_records", &[], self.live_records);

        if let Some(up) = &self.upstream {
            out.family(
                "onions_upstream_connected",
                "1 while the mirror's upstream session is up.",
                "gauge",
            );
            out.sample("onions_upstream_connected", &[], u64::from(up.connected));
            out.family(
                "onions_upstream_lag_records",
                "Records the upstream holds that this mirror does not yet.",
                "gauge",
            );
            out.sample("onions_upstream_lag_records", &[], up.lag_records);
            out.family(
                "onions_upstream_lag_seconds",
                "Seconds since this mirror last held everything its upstream had (0 when it does).",
                "gauge",
            );
            out.sample("onions_upstream_lag_seconds", &[], up.lag_secs);
        }

        out.histogram(
            "onions_fsync_duration_seconds",
            "How long the fsyncs of the log's records and heads took.",
            &self.fsync,
        );

        if let Some(audit) = &self.audit {
            out.family(
                "onions_audit_heads_checked_total",
                "Heads from upstream whose root was recomputed and compared.",
                "counter",
            );
            out.sample("onions_audit_heads_checked_total", &[], audit.checked);
            out.family(
                "onions_audit_mismatches_total",
                "Audited heads whose root or size this replica does not give (AUDIT ALARM).",
                "counter",
            );
            out.sample("onions_audit_mismatches_total", &[], audit.mismatches);
            out.family(
                "onions_audit_evidence",
                "1 when the mirror holds evidence that the Quorum signed two conflicting heads.",
                "gauge",
            );
            out.sample("onions_audit_evidence", &[], u64::from(audit.evidence));
        }
        if let Some((made, refused)) = self.witness {
            out.family(
                "onions_witness_cosignatures_total",
                "At a witness, heads cosigned (made) and refused.",
                "counter",
            );
            out.sample(
                "onions_witness_cosignatures_total",
                &[("result", "made")],
                made,
            );
            out.sample(
                "onions_witness_cosignatures_total",
                &[("result", "refused")],
                refused,
            );
        }
        out.0
    }
}

/// The scrape text of a running server.
pub fn render(shared: &Shared) -> String {
    Snapshot::of(shared).render()
}

/// Exposition text being written.
struct Text(String);

impl Text {
    /// The HELP and TYPE lines of a metric family.
    fn family(&mut self, name: &str, help: &str, kind: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// One sample line.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (label, text)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{label}=\"{}\"", escape_label(text));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A histogram family: cumulative buckets, `+Inf`, sum and count.
    fn histogram(&mut self, name: &str, help: &str, h: &LatencySnapshot) {
        self.family(name, help, "histogram");
        let bucket = format!("{name}_bucket");
        for ((_, le), n) in LATENCY_BUCKETS.iter().zip(h.cumulative) {
            self.sample(&bucket, &[("le", le)], n);
        }
        self.sample(&bucket, &[("le", "+Inf")], h.count);
        self.sample(&format!("{name}_sum"), &[], seconds(h.sum_ns));
        self.sample(&format!("{name}_count"), &[], h.count);
    }
}

/// Nanoseconds as decimal seconds, exactly: `1500000` is `0.0015`.
fn seconds(ns: u64) -> String {
    let (whole, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// What to answer an HTTP request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics`: the scrape.
    Metrics,
    /// Another path: 404.
    NotFound,
    /// Not GET, a malformed request line, or over the limit: 400, and why.
    Bad(&'static str),
}

/// Reads a request line (without its line end) and decides the answer.
pub fn route(line: &[u8]) -> Route {
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::Bad("the request line is not text");
    };
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Route::Bad("a request line is METHOD TARGET HTTP/VERSION");
    };
    if !version.starts_with("HTTP/1.") || version.len() != "HTTP/1.1".len() {
        return Route::Bad("only HTTP/1.x is served");
    }
    if !target.starts_with('/') || target.chars().any(|c| c.is_ascii_control()) {
        return Route::Bad("the target is not a path");
    }
    if method != "GET" {
        return Route::Bad("only GET is served");
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path == "/metrics" {
        Route::Metrics
    } else {
        Route::NotFound
    }
}

/// What a client sent, read within the limits.
enum Received {
    /// The request line and headers, up to the blank line (or the end of
    /// input, or the time limit).
    Head(Vec<u8>),
    /// More than [`REQUEST_LIMIT`] bytes before the blank line.
    TooLong,
}

/// Reads a request head: until the blank line after the headers, the
/// peer's end of input, [`REQUEST_LIMIT`] or [`READ_LIMIT`].
fn read_head(stream: &mut TcpStream) -> io::Result<Received> {
    let deadline = Instant::now() + READ_LIMIT;
    let mut head = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        if head.len() > REQUEST_LIMIT {
            return Ok(Received::TooLong);
        }
        if header_end(&head) {
            return Ok(Received::Head(head));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || crate::signals::stop_requested() {
            return Ok(Received::Head(head));
        }
        stream.set_read_timeout(Some(left.min(POLL)))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(Received::Head(head)),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// True once `head` holds the blank line that ends a request's headers.
fn header_end(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

/// A whole HTTP/1.1 response that closes the connection.
fn response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Answers one connection.
fn handle(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    let prepared = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_write_timeout(Some(WRITE_LIMIT)));
    if let Err(e) = prepared {
        log::warn!("metrics: {peer}: {e}");
        return;
    }
    let head = match read_head(&mut stream) {
        Ok(head) => head,
        Err(e) => {
            log::debug!("metrics: {peer}: read failed: {e}");
            return;
        }
    };
    let route = match head {
        Received::TooLong => Route::Bad("the request is over 8192 bytes"),
        Received::Head(head) if head.is_empty() => {
            log::debug!("metrics: {peer}: closed without a request");
            return;
        }
        Received::Head(head) => match head.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let line = &head[..end];
                route(line.strip_suffix(b"\r").unwrap_or(line))
            }
            None => Route::Bad("the request line did not end"),
        },
    };
    let (reply, refused) = match route {
        Route::Metrics => (response("200 OK", CONTENT_TYPE, &render(shared)), false),
        Route::NotFound => (
            response(
                "404 Not Found",
                "text/plain; charset=utf-8",
                "not found: metrics are at /metrics\n",
            ),
            false,
        ),
        Route::Bad(why) => {
            log::info!("metrics: {peer}: bad request: {why}");
            (
                response(
                    "400 Bad Request",
                    "text/plain; charset=utf-8",
                    &format!("bad request: {why}\n"),
                ),
                true,
            )
        }
    };
    if let Err(e) = stream.write_all(&reply) {
        log::debug!("metrics: {peer}: write failed: {e}");
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    if refused {
        linger(&mut stream);
    }
}

/// Reads and discards what a refused client still sends, until it closes,
/// [`LINGER`] passes or [`LINGER_BYTES`] arrive, so that closing does not
/// reset the connection under the reply.
fn linger(stream: &mut TcpStream) {
    let deadline = Instant::now() + LINGER;
    let mut drained = 0;
    let mut chunk = [0u8; 8192];
    while drained <= LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left.min(POLL))).is_err() {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => drained += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if crate::signals::stop_requested() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Checks a `--metrics` address against the protocol's `--listen`: never
/// the same port on the same address, or on a wildcard address that
/// covers the other.
pub fn check_addr(metrics: SocketAddr, listen: SocketAddr) -> Result<(), String> {
    if metrics.port() == 0 {
        return Err(format!("--metrics {metrics}: give a port"));
    }
    let overlaps = metrics.ip() == listen.ip()
        || metrics.ip().is_unspecified()
        || listen.ip().is_unspecified();
    if metrics.port() == listen.port() && overlaps {
        return Err(format!(
            "--metrics {metrics}: that is the protocol's address (--listen {listen}); serve metrics on another port"
        ));
    }
    Ok(())
}

/// Binds the metrics listener, non-blocking so that [`serve`] can poll it.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    let listener =
        TcpListener::bind(addr).map_err(|e| format!("cannot listen on --metrics {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("--metrics {addr}: {e}"))?;
    Ok(listener)
}

/// Answers scrapes on `listener` until a stop is requested.
pub fn serve(listener: TcpListener, shared: &Shared) {
    while !crate::signals::stop_requested() {
        match listener.accept() {
            Ok((stream, peer)) => handle(stream, peer, shared),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of descriptors or similar: try again shortly.
                log::warn!("metrics: accept failed: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
    log::debug!("metrics: stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot of a mirror that is also a witness, with a little of
    /// everything.
    fn mirror() -> Snapshot {
        let puts = [0; CODES.len() + 1];
        let mut errors = [0; CODES.len()];
        errors[code_index(Code::ReadOnly)] = 2;
        errors[code_index(Code::NoHead)] = 1;
        Snapshot {
            role: ServerRole::Mirror,
            started: 1_700_000_000,
            lookups: [5, 3, 1, 0],
            puts,
            errors,
            connections: 4,
            subscribers: 2,
            subscribers_dropped: 1,
            seq: 12,
            head: Some((10, 1_700_000_100)),
            live_records: 9,
            upstream: Some(UpstreamSnapshot {
                connected: true,
                lag_records: 2,
                lag_secs: 7,
            }),
            fsync: LatencySnapshot {
                cumulative: [1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3],
                count: 4,
                sum_ns: 2_001_500_000,
            },
            audit: Some(AuditSnapshot {
                checked: 6,
                mismatches: 1,
                evidence: true,
            }),
            witness: Some((5, 1)),
        }
    }

    fn quorum() -> Snapshot {
        let mut puts = [0; CODES.len() + 1];
        puts[0] = 7;
        puts[1 + code_index(Code::NameTaken)] = 2;
        Snapshot {
            role: ServerRole::Quorum,
            upstream: None,
            audit: None,
            witness: None,
            head: None,
            puts,
            ..mirror()
        }
    }

    /// The value of the sample `series` (name and labels as written).
    fn value(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(str::to_owned)
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        for text in [mirror().render(), quorum().render()] {
            let mut declared: Vec<(String, String)> = Vec::new();
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("# HELP ") {
                    let (name, help) = rest.split_once(' ').unwrap();
                    assert!(!help.is_empty());
                    assert!(name.starts_with("onions_"), "{name}");
                    continue;
                }
                if let Some(rest) = line.strip_prefix("# TYPE ") {
                    let (name, kind) = rest.split_once(' ').unwrap();
                    assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                    assert!(
                        !declared.iter().any(|(n, _)| n == name),
                        "{name} declared twice"
                    );
                    declared.push((name.to_owned(), kind.to_owned()));
                    continue;
                }
                assert!(!line.starts_with('#'), "{line}");
                let series = line.split([' ', '{']).next().unwrap();
                let (family, kind) = declared.last().expect("a sample before any TYPE");
                let belongs = match kind.as_str() {
                    "histogram" => ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| series == format!("{family}{s}")),
                    _ => series == family,
                };
                assert!(belongs, "{series} follows the TYPE of {family}");
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
                if kind == "counter" {
                    assert!(family.ends_with("_total"), "{family}");
                }
            }
            assert!(text.ends_with('\n'));
        }
    }

    #[test]
    fn counters_carry_their_labels() {
        let text = quorum().render();
        assert_eq!(
            value(&text, "onions_puts_total{result=\"accepted\"}").as_deref(),
            Some("7")
        );
        assert_eq!(
            value(&text, "onions_puts_total{result=\"name_taken\"}").as_deref(),
            Some("2")
        );
        assert_eq!(
            value(&text, "onions_lookups_total{result=\"not_found\"}").as_deref(),
            Some("3")
        );
        assert_eq!(
            value(&text, "onions_errors_total{code=\"read_only\"}").as_deref(),
            Some("2")
        );
        for code in CODES {
            let series = format!("onions_errors_total{{code=\"{}\"}}", code.as_str());
            assert!(value(&text, &series).is_some(), "{series}");
            let series = format!("onions_puts_total{{result=\"{}\"}}", code.as_str());
            assert!(value(&text, &series).is_some(), "{series}");
        }
        let info = format!(
            "onions_info{{role=\"quorum\",version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(value(&text, &info).as_deref(), Some("1"));
    }

    #[test]
    fn a_quorum_shows_no_mirror_or_witness_families_and_zero_without_a_head() {
        let text = quorum().render();
        for absent in ["onions_upstream_", "onions_audit_", "onions_witness_"] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
        assert_eq!(value(&text, "onions_head_seq").as_deref(), Some("0"));
        assert_eq!(
            value(&text, "onions_head_time_seconds").as_deref(),
            Some("0")
        );
    }

    #[test]
    fn a_mirror_shows_its_lag_audit_and_witness() {
        let text = mirror().render();
        let expect = [
            ("onions_head_seq", "10"),
            ("onions_head_time_seconds", "1700000100"),
            ("onions_live_records", "9"),
            ("onions_seq", "12"),
            ("onions_connections", "4"),
            ("onions_subscribers", "2"),
            ("onions_subscribers_dropped_total", "1"),
            ("onions_upstream_connected", "1"),
            ("onions_upstream_lag_records", "2"),
            ("onions_upstream_lag_seconds", "7"),
            ("onions_audit_heads_checked_total", "6"),
            ("onions_audit_mismatches_total", "1"),
            ("onions_audit_evidence", "1"),
            ("onions_witness_cosignatures_total{result=\"made\"}", "5"),
            ("onions_witness_cosignatures_total{result=\"refused\"}", "1"),
        ];
        for (series, want) in expect {
            assert_eq!(value(&text, series).as_deref(), Some(want), "{series}");
        }
    }

    #[test]
    fn the_fsync_histogram_is_cumulative_with_inf_sum_and_count() {
        let text = mirror().render();
        let buckets: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("onions_fsync_duration_seconds_bucket"))
            .collect();
        assert_eq!(buckets.len(), LATENCY_BUCKETS.len() + 1);
        assert_eq!(
            buckets[0],
            "onions_fsync_duration_seconds_bucket{le=\"0.0005\"} 1"
        );
        assert_eq!(
            buckets[LATENCY_BUCKETS.len() - 1],
            "onions_fsync_duration_seconds_bucket{le=\"1\"} 3"
        );
        assert_eq!(
            buckets[LATENCY_BUCKETS.len()],
            "onions_fsync_duration_seconds_bucket{le=\"+Inf\"} 4"
        );
        assert_eq!(
            value(&text, "onions_fsync_duration_seconds_sum").as_deref(),
            Some("2.0015")
        );
        assert_eq!(
            value(&text, "onions_fsync_duration_seconds_count").as_deref(),
            Some("4")
        );
    }

    #[test]
    fn seconds_are_exact_decimals() {
        assert_eq!(seconds(0), "0");
        assert_eq!(seconds(1_000_000_000), "1");
        assert_eq!(seconds(1_500_000), "0.0015");
        assert_eq!(seconds(12_000_000_001), "12.000000001");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn counting_by_code_and_result() {
        let metrics = Metrics::default();
        metrics.lookup(Lookup::NoHead);
        metrics.put_accepted();
        metrics.put_refused(Code::StaleSerial);
        let line = metrics.error_line(&WireError::new(
            &crate::wire::Id::Null,
            Code::StaleSerial,
            "no",
        ));
        assert!(line.ends_with(b"\n"));
        metrics.subscriber_dropped();
        assert_eq!(load(&metrics.lookups), [0, 0, 1, 0]);
        let puts = load(&metrics.puts);
        assert_eq!(puts[0], 1);
        assert_eq!(puts[1 + code_index(Code::StaleSerial)], 1);
        assert_eq!(puts.iter().sum::<u64>(), 2);
        let errors = load(&metrics.errors);
        assert_eq!(errors[code_index(Code::StaleSerial)], 1);
        assert_eq!(errors.iter().sum::<u64>(), 1);
        assert_eq!(metrics.subscribers_dropped.load(Ordering::Relaxed), 1);
        for (i, code) in CODES.iter().enumerate() {
            assert_eq!(code_index(*code), i);
        }
    }

    #[test]
    fn the_protocol_address_is_refused_for_metrics() {
        let addr = |text: &str| text.parse::<SocketAddr>().unwrap();
        let listen = addr("127.0.0.1:10053");
        assert!(check_addr(addr("127.0.0.1:10063"), listen).is_ok());
        assert!(check_addr(addr("127.0.0.2:10053"), listen).is_ok());
        assert!(check_addr(addr("[::1]:10063"), listen).is_ok());
        for clash in [
            "127.0.0.1:10053",
            "0.0.0.0:10053",
            "[::]:10053",
            "127.0.0.1:0",
        ] {
            assert!(check_addr(addr(clash), listen).is_err(), "{clash}");
        }
        let err = check_addr(listen, listen).unwrap_err();
        assert!(
            err.contains("--metrics") && err.contains("--listen"),
            "{err}"
        );
        let wildcard = addr("0.0.0.0:10053");
        assert!(check_addr(addr("192.0.2.1:10053"), wildcard).is_err());
    }

    #[test]
    fn requests_are_routed_or_refused() {
        assert_eq!(route(b"GET /metrics HTTP/1.1"), Route::Metrics);
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0"), Route::Metrics);
        assert_eq!(route(b"GET / HTTP/1.1"), Route::NotFound);
        assert_eq!(route(b"GET /metricsx HTTP/1.1"), Route::NotFound);
        for bad in [
            &b"POST /metrics HTTP/1.1"[..],
            b"HEAD /metrics HTTP/1.1",
            b"GET /metrics",
            b"GET  /metrics HTTP/1.1",
            b"GET /metrics HTTP/2.0",
            b"GET metrics HTTP/1.1",
            b"GET /metrics HTTP/1.1 extra",
            b"\xff\xfe /metrics HTTP/1.1",
            b"",
        ] {
            assert!(
                matches!(route(bad), Route::Bad(_)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn responses_state_their_length_and_close() {
        let bytes = response("404 Not Found", "text/plain", "gone\n");
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("\r\nContent-Length: 5\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.ends_with("\r\n\r\ngone\n"));
    }
}
