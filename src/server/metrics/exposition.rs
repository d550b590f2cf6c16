//! The text of a scrape, exposition format 0.0.4: every family's HELP and
//! TYPE lines before its samples, label values escaped, the fsync
//! histogram with cumulative buckets, and seconds written as exact
//! decimals. Only formatting: the values come from a [`Snapshot`].

use super::{Lookup, Snapshot};
use crate::server::shared::Shared;
use crate::store::{LatencySnapshot, LATENCY_BUCKETS};
use crate::wire::CODES;
use std::fmt::{Display, Write as _};

/// The content type of the text exposition format.
pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Snapshot {
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
            "onions_reverse_lookups_total",
            "Reverse lookups answered, by result (found: one name or more).",
            "counter",
        );
        for (result, n) in Lookup::ALL.iter().zip(self.reverses) {
            let labels = [("result", result.as_str())];
            out.sample("onions_reverse_lookups_total", &labels, n);
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
pub(super) fn seconds(ns: u64) -> String {
    let (whole, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A label value with `\`, `"` and newlines escaped.
pub(super) fn escape_label(text: &str) -> String {
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
