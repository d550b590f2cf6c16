//! Tests of the metrics without a server: the text of snapshots of a
//! Quorum and of a mirror that is also a witness, counting, the address
//! check, request routing and responses.

use super::exposition::{escape_label, seconds};
use super::http::response;
use super::snapshot::load;
use super::*;
use crate::store::{LatencySnapshot, LATENCY_BUCKETS};
use crate::wire::ServerRole;
use std::net::SocketAddr;

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
        reverses: [2, 1, 0, 0],
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
    assert_eq!(
        value(&text, "onions_reverse_lookups_total{result=\"found\"}").as_deref(),
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
    metrics.reverse(Lookup::Found);
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
    assert_eq!(load(&metrics.reverses), [1, 0, 0, 0]);
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
        matches!(err, MetricsAddrError::SameAsListen { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("--metrics") && text.contains("--listen"),
        "{text}"
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
