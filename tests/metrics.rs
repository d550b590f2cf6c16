//! `--metrics`: Prometheus metrics over HTTP, scraped from real servers.
//!
//! A Quorum and a mirror run on 127.0.0.31 with their metrics on
//! 127.0.0.32 (another address, so a metrics port can never be the
//! protocol's). Each scrape is a plain `TcpStream` speaking HTTP/1.1. The
//! tests check that the numbers move with what happens (puts accepted and
//! refused by code, lookups found and not found, the head, the fsync
//! histogram, a mirror's lag and audit), that bad requests are answered
//! 400 and wrong paths 404 while the server goes on serving both ports,
//! and that the flag refuses the protocol's address. Every wait is
//! bounded; every process is stopped by its PID.

use testkit::servers::{owner, print_key, record, state_dir, wait_until, Server};
use testkit::{assert_one_line_failure, free_port_on, ChildGuard, TempDir};

const ONIONS_SERVER: &str = env!("CARGO_BIN_EXE_onions-server");
use onions::wire::{Code, Reply};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

const SERVER_IP: &str = "127.0.0.31";
const METRICS_IP: &str = "127.0.0.32";

/// How long replication and scrapes may take.
const LIMIT: Duration = Duration::from_secs(30);

/// A metrics address on [`METRICS_IP`] that was free a moment ago.
fn metrics_addr() -> SocketAddr {
    format!("{METRICS_IP}:{}", free_port_on(METRICS_IP))
        .parse()
        .unwrap()
}

/// One HTTP exchange: sends `request` as is and reads to the close.
/// Returns the status code, the headers and the body.
fn http(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("cannot connect to metrics at {addr}: {e}"));
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.set_write_timeout(Some(LIMIT)).unwrap();
    stream.write_all(request).expect("send the request");
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .unwrap_or_else(|e| panic!("no whole response from {addr} within {LIMIT:?}: {e}"));
    let text = String::from_utf8(bytes).expect("a text response");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text:?}"));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
    assert_eq!(length, body.len(), "Content-Length of {head:?}");
    (status, head.to_owned(), body.to_owned())
}

/// Scrapes `addr` and returns every sample by series (name and labels as
/// written), checking the format on the way.
fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let (status, head, body) = http(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: onions\r\nAccept: text/plain\r\n\r\n",
    );
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let mut samples = BTreeMap::new();
    for line in body.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line:?}"));
        assert!(series.starts_with("onions_"), "{line}");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line:?}"));
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "{series} twice"
        );
    }
    samples
}

/// The `onions_info` series of a server in `role`.
fn info(role: &str) -> String {
    format!(
        "onions_info{{role=\"{role}\",version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The value of `series` in `samples`; fails the test when it is absent.
fn get(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} among {:#?}", samples.keys()))
}

/// Checks that every series of `expected` has exactly its value in
/// `samples`: the counters a step of a test must have moved, and no more.
fn assert_values(samples: &BTreeMap<String, f64>, expected: &[(&str, f64)]) {
    for &(series, value) in expected {
        assert_eq!(get(samples, series), value, "{series}");
    }
}

#[test]
fn a_quorum_counts_puts_lookups_errors_heads_and_fsyncs() {
    let tmp = TempDir::new("metrics-quorum");
    let metrics = metrics_addr();
    let metrics_flag = metrics.to_string();
    let mut quorum = Server::quorum(
        SERVER_IP,
        &state_dir(&tmp, "q"),
        &["--metrics", &metrics_flag],
    );

    let before = scrape(metrics);
    assert_eq!(get(&before, "onions_puts_total{result=\"accepted\"}"), 0.0);
    assert_eq!(get(&before, "onions_lookups_total{result=\"found\"}"), 0.0);
    assert_eq!(get(&before, &info("quorum")), 1.0);
    // The first head is signed and fsynced before the server listens.
    let fsyncs = get(&before, "onions_fsync_duration_seconds_count");
    assert!(fsyncs >= 1.0, "{before:#?}");
    assert_eq!(
        get(&before, "onions_fsync_duration_seconds_bucket{le=\"+Inf\"}"),
        fsyncs
    );
    assert!(before.contains_key("onions_fsync_duration_seconds_bucket{le=\"0.0005\"}"));
    assert!(before.contains_key("onions_fsync_duration_seconds_sum"));
    assert!(
        !before.keys().any(|k| k.starts_with("onions_upstream_")),
        "a Quorum has no upstream"
    );

    // A put accepted: the counter, the head and the fsyncs move.
    let alice = owner(1);
    let mut client = quorum.client();
    let taken = record(&alice, "metrics.tor", 1, 0, &[]);
    assert!(matches!(client.put(&taken), Reply::Accepted { .. }));
    let after_put = scrape(metrics);
    assert_eq!(
        get(&after_put, "onions_puts_total{result=\"accepted\"}"),
        1.0
    );
    assert!(get(&after_put, "onions_head_seq") >= 1.0, "{after_put:#?}");
    assert!(get(&after_put, "onions_head_time_seconds") > 1.0e9);
    assert_eq!(get(&after_put, "onions_seq"), 1.0);
    assert_eq!(get(&after_put, "onions_live_records"), 1.0);
    assert!(get(&after_put, "onions_fsync_duration_seconds_count") > fsyncs);
    assert!(get(&after_put, "onions_connections") >= 1.0);

    // A put of the taken name by another key: refused, shown by its code.
    let mallory = owner(2);
    match client.put(&record(&mallory, "metrics.tor", 5, 0, &[])) {
        Reply::Error(err) => assert_eq!(err.code, Code::NameTaken),
        other => panic!("expected name_taken, got {other}"),
    }
    assert_values(
        &scrape(metrics),
        &[
            ("onions_puts_total{result=\"name_taken\"}", 1.0),
            ("onions_errors_total{code=\"name_taken\"}", 1.0),
            ("onions_puts_total{result=\"accepted\"}", 1.0),
        ],
    );

    // Lookups, found and not found.
    assert!(matches!(client.lookup("metrics.tor"), Reply::Found { .. }));
    assert!(matches!(client.lookup("metrics.tor"), Reply::Found { .. }));
    assert!(matches!(
        client.lookup("nobody-here.tor"),
        Reply::NotFound { .. }
    ));
    assert_values(
        &scrape(metrics),
        &[
            ("onions_lookups_total{result=\"found\"}", 2.0),
            ("onions_lookups_total{result=\"not_found\"}", 1.0),
            ("onions_lookups_total{result=\"no_head\"}", 0.0),
        ],
    );

    // Reverse lookups, counted apart from lookups.
    let alice_onion = onions::onion::OnionAddress::from_key(alice.public());
    let nobody = onions::onion::OnionAddress::from_key(owner(7).public());
    assert!(matches!(client.reverse(&alice_onion), Reply::Names { names, .. } if names.len() == 1));
    assert!(matches!(client.reverse(&nobody), Reply::Names { names, .. } if names.is_empty()));
    let reversed = scrape(metrics);
    let reverse = |result: &str| {
        let series = format!("onions_reverse_lookups_total{{result=\"{result}\"}}");
        get(&reversed, &series)
    };
    assert_eq!((reverse("found"), reverse("not_found")), (1.0, 1.0));
    assert_eq!(
        get(&reversed, "onions_lookups_total{result=\"found\"}"),
        2.0
    );

    // A line that is not JSON: an error by code, not a put.
    client.send_raw(b"not json\n");
    match client.read() {
        Some(Reply::Error(err)) => assert_eq!(err.code, Code::BadJson),
        other => panic!("expected bad_json, got {other:?}"),
    }
    assert_values(
        &scrape(metrics),
        &[
            ("onions_errors_total{code=\"bad_json\"}", 1.0),
            ("onions_puts_total{result=\"bad_json\"}", 0.0),
        ],
    );

    // SIGTERM stops the metrics thread with the rest, promptly.
    let status = quorum.terminate();
    assert!(status.success(), "{status}\n{}", quorum.log());
    assert!(
        TcpStream::connect_timeout(&metrics, Duration::from_secs(2)).is_err(),
        "metrics still served after the stop"
    );
}

#[test]
fn bad_requests_get_400_wrong_paths_404_and_the_server_goes_on() {
    let tmp = TempDir::new("metrics-http");
    let metrics = metrics_addr();
    let metrics_flag = metrics.to_string();
    let quorum = Server::quorum(
        SERVER_IP,
        &state_dir(&tmp, "q"),
        &["--metrics", &metrics_flag],
    );

    let mut oversized = b"GET /".to_vec();
    oversized.extend(std::iter::repeat_n(b'a', 10_000));
    oversized.extend_from_slice(b" HTTP/1.1\r\n\r\n");
    let bad: [(&str, &[u8]); 6] = [
        (
            "not GET",
            b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        ),
        ("no version", b"GET /metrics\r\n\r\n"),
        ("garbage", b"\x00\x01\x02 hello\r\n\r\n"),
        ("not HTTP", b"{\"type\":\"status\",\"id\":1}\n\n"),
        ("over the limit", &oversized),
        ("a line that never ends", b"GET /metrics HTTP/1.1"),
    ];
    for (what, request) in bad {
        let (status, head, body) = if what == "a line that never ends" {
            // Sent, then the client says it is done.
            let mut stream = TcpStream::connect_timeout(&metrics, Duration::from_secs(5)).unwrap();
            stream.set_read_timeout(Some(LIMIT)).unwrap();
            stream.write_all(request).unwrap();
            stream.shutdown(std::net::Shutdown::Write).unwrap();
            let mut text = String::new();
            stream.read_to_string(&mut text).unwrap();
            let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            (status, head.to_owned(), body.to_owned())
        } else {
            http(metrics, request)
        };
        assert_eq!(status, 400, "{what}: {head}\n{body}");
        assert!(body.starts_with("bad request"), "{what}: {body}");
        // The server still scrapes after each.
        assert_eq!(
            get(&scrape(metrics), "onions_puts_total{result=\"accepted\"}"),
            0.0
        );
    }
    for path in ["/", "/metric", "/metrics/x", "/favicon.ico"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: onions\r\n\r\n");
        let (status, head, _) = http(metrics, request.as_bytes());
        assert_eq!(status, 404, "{path}: {head}");
    }
    // A query string is still the metrics.
    let (status, _, body) = http(metrics, b"GET /metrics?name[]=x HTTP/1.0\r\n\r\n");
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE onions_puts_total counter"));
    // A client that connects and says nothing holds nothing up for long.
    let silent = TcpStream::connect_timeout(&metrics, Duration::from_secs(5)).unwrap();
    scrape(metrics);
    drop(silent);

    // The protocol port never saw any of it and answers as before.
    let status = quorum.status();
    assert_eq!(status.seq, 0);
    assert!(
        quorum.log().contains("metrics: "),
        "bad requests are logged"
    );
    assert!(
        !quorum.log().contains("panicked"),
        "no panic:\n{}",
        quorum.log()
    );
}

#[test]
fn a_mirror_shows_its_head_lag_audit_and_refused_puts() {
    let tmp = TempDir::new("metrics-mirror");
    let quorum = Server::quorum(SERVER_IP, &state_dir(&tmp, "q"), &[]);
    let key = print_key(&quorum.state);
    let metrics = metrics_addr();
    let metrics_flag = metrics.to_string();
    let mirror = Server::mirror(
        SERVER_IP,
        &state_dir(&tmp, "m"),
        quorum.addr,
        &key,
        &["--metrics", &metrics_flag],
    );

    let records: Vec<_> = (0..3u8)
        .map(|i| record(&owner(10 + i), &format!("mirrored-{i}.tor"), 1, 0, &[]))
        .collect();
    let mut client = quorum.client();
    for r in &records {
        assert!(matches!(client.put(r), Reply::Accepted { .. }));
    }
    let head = mirror.wait_head(3, LIMIT);

    // The mirror answers with the head its audit matched; it has caught up.
    wait_until("the mirror's lag to reach 0", LIMIT, || {
        let m = scrape(metrics);
        get(&m, "onions_upstream_lag_records") == 0.0 && get(&m, "onions_head_seq") >= 3.0
    });
    let m = scrape(metrics);
    assert_eq!(get(&m, &info("mirror")), 1.0);
    assert!(get(&m, "onions_head_seq") >= head.seq as f64);
    assert!(get(&m, "onions_head_time_seconds") >= head.time as f64);
    assert_eq!(get(&m, "onions_seq"), 3.0);
    assert_eq!(get(&m, "onions_live_records"), 3.0);
    assert_eq!(get(&m, "onions_upstream_lag_seconds"), 0.0);
    assert_eq!(get(&m, "onions_upstream_connected"), 1.0);
    assert!(get(&m, "onions_audit_heads_checked_total") >= 1.0);
    assert_eq!(get(&m, "onions_audit_mismatches_total"), 0.0);
    assert_eq!(get(&m, "onions_audit_evidence"), 0.0);
    assert!(
        get(&m, "onions_fsync_duration_seconds_count") >= 1.0,
        "replicated records are fsynced: {m:#?}"
    );
    assert!(!m.keys().any(|k| k.starts_with("onions_witness_")));

    // A mirror refuses puts: counted as read_only, both as a put and an error.
    let mut at_mirror = mirror.client();
    match at_mirror.put(&records[0]) {
        Reply::Error(err) => assert_eq!(err.code, Code::ReadOnly),
        other => panic!("expected read_only, got {other}"),
    }
    assert!(matches!(
        at_mirror.lookup("mirrored-1.tor"),
        Reply::Found { .. }
    ));
    assert_values(
        &scrape(metrics),
        &[
            ("onions_puts_total{result=\"read_only\"}", 1.0),
            ("onions_errors_total{code=\"read_only\"}", 1.0),
            ("onions_lookups_total{result=\"found\"}", 1.0),
        ],
    );
}

/// Runs `onions-server` with `args`, bounded, and returns its exit status,
/// stdout and stderr.
fn run_server(args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = Command::new(ONIONS_SERVER)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {ONIONS_SERVER}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut guard = ChildGuard::new(child, "onions-server");
    let status = guard
        .wait_within(LIMIT)
        .unwrap_or_else(|| panic!("onions-server {args:?} still ran after {LIMIT:?}"));
    let (mut out, mut err) = (String::new(), String::new());
    stdout.read_to_string(&mut out).unwrap();
    stderr.read_to_string(&mut err).unwrap();
    (status, out, err)
}

#[test]
fn the_flag_refuses_the_protocol_address_and_malformed_values() {
    let tmp = TempDir::new("metrics-flag");
    let state = tmp.join("q");
    let state = state.to_str().unwrap();
    let port = free_port_on(SERVER_IP);
    let listen = format!("{SERVER_IP}:{port}");
    for (metrics, needles) in [
        (listen.clone(), vec!["--metrics", "--listen"]),
        (format!("0.0.0.0:{port}"), vec!["--metrics", "--listen"]),
        ("127.0.0.1".to_owned(), vec!["--metrics", "IP:PORT"]),
        ("localhost:9100".to_owned(), vec!["--metrics", "IP:PORT"]),
        (format!("{METRICS_IP}:0"), vec!["--metrics", "port"]),
    ] {
        let result = run_server(&[
            "--role",
            "quorum",
            "--listen",
            &listen,
            "--state-dir",
            state,
            "--metrics",
            &metrics,
        ]);
        assert_one_line_failure(&format!("--metrics {metrics}"), &result, &needles);
    }
    // Nothing was started or created on the way.
    assert!(!tmp.join("q").exists(), "a refused flag touched the disk");
}
