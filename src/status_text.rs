//! `onions-server status` for a person: a server's status as aligned
//! lines, and the alarms in it, which make the command's exit status
//! non-zero so that scripts and monitoring notice.

use crate::codec::b64_encode;
use crate::wire::{AuditState, Status};
use std::fmt::Write;

/// Every alarm the status carries, one sentence each: an audit that did
/// not match or saw conflicting heads, an upstream that went back, a
/// witness that refused or stopped.
pub fn alarms(status: &Status) -> Vec<String> {
    let mut alarms = Vec::new();
    if let Some(audit) = &status.audit {
        if audit.state == AuditState::Alarm {
            let why = match (&audit.evidence, &audit.last_mismatch) {
                (Some(_), _) => {
                    "the Quorum signed two conflicting heads (evidence kept)".to_owned()
                }
                (None, Some(m)) => format!(
                    "head seq {} states a root this replica does not give",
                    m.head.seq
                ),
                (None, None) => "the audit raised an alarm".to_owned(),
            };
            alarms.push(format!("audit: {why}"));
        }
    }
    if let Some(alarm) = status.upstream.as_ref().and_then(|u| u.alarm.as_ref()) {
        alarms.push(format!("upstream: {alarm}"));
    }
    let witness = status
        .cosignatures
        .as_ref()
        .and_then(|c| c.witness.as_ref());
    if let Some(alarm) = witness.and_then(|w| w.alarm.as_ref()) {
        alarms.push(format!("witness: {alarm}"));
    }
    alarms
}

/// The status as aligned `field  value` lines, at the clock's `now`.
pub fn render(status: &Status, now: u64) -> String {
    let mut out = String::new();
    let mut line = |field: &str, value: String| {
        let _ = writeln!(out, "{field:<13} {value}");
    };
    line(
        "role",
        format!(
            "{} (onions {}, protocol {})",
            status.role.as_str(),
            status.version,
            status.protocol
        ),
    );
    if let Some(r) = &status.runtime {
        line("uptime", duration(r.uptime));
        line("connections", r.connections.to_string());
    }
    line(
        "records",
        format!("{} live; seq {}", status.records, status.seq),
    );
    if let Some(head) = &status.head {
        line(
            "head",
            format!(
                "seq {} time {} ({} old), size {}, root {}",
                head.seq,
                head.time,
                duration(now.saturating_sub(head.time)),
                head.size,
                b64_encode(&head.root)
            ),
        );
    }
    if let Some(audit) = &status.audit {
        let matched = audit.matched.as_ref().map_or("none yet".to_owned(), |h| {
            format!("seq {} time {}", h.seq, h.time)
        });
        line(
            "audit",
            format!(
                "{}: answering with {matched}; {} heads checked, {} mismatched",
                audit.state.as_str(),
                audit.checked,
                audit.mismatches
            ),
        );
    }
    if let Some(u) = &status.upstream {
        line(
            "upstream",
            format!(
                "{} {}, lag {} records, {}",
                u.addr,
                if u.connected {
                    "connected"
                } else {
                    "not connected"
                },
                u.lag_records,
                duration(u.lag_secs)
            ),
        );
    }
    line("subscribers", status.subscribers.to_string());
    if let Some(c) = &status.cosignatures {
        line(
            "cosignatures",
            format!("{} on the current head, {} needed", c.current, c.needed),
        );
        if let Some(w) = &c.witness {
            let last = w.last.as_ref().map_or("nothing yet".to_owned(), |h| {
                format!("seq {} time {}", h.seq, h.time)
            });
            line(
                "witness",
                format!(
                    "{}: last cosigned {last} at {}; {} made, {} refused, {} evidence files",
                    w.key,
                    w.at,
                    w.made,
                    w.refused,
                    w.evidence.len()
                ),
            );
        }
    }
    let alarms = alarms(status);
    if alarms.is_empty() {
        line("alarms", "none".into());
    }
    for alarm in alarms {
        line("ALARM", alarm);
    }
    out
}

/// Seconds as `1d 2h 3m 4s`, leaving out leading zero units.
fn duration(secs: u64) -> String {
    let units = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let mut out = String::new();
    let mut left = secs;
    for (size, name) in units {
        let n = left / size;
        left %= size;
        if n > 0 || (!out.is_empty()) || size == 1 {
            let _ = write!(out, "{}{n}{name}", if out.is_empty() { "" } else { " " });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Runtime, ServerRole, UpstreamStatus};

    fn status() -> Status {
        Status {
            role: ServerRole::Mirror,
            version: "1.2.3".into(),
            protocol: 2,
            seq: 7,
            head: None,
            records: 5,
            subscribers: 1,
            min_work: 0,
            quorum_keys: Vec::new(),
            upstream: Some(UpstreamStatus {
                addr: "127.0.0.1:10053".into(),
                connected: true,
                alarm: None,
                lag_records: 3,
                lag_secs: 65,
            }),
            audit: None,
            head_timing: None,
            cosignatures: None,
            runtime: Some(Runtime {
                uptime: 3725,
                connections: 4,
            }),
        }
    }

    #[test]
    fn a_quiet_mirror_reads_as_lines_without_alarms() {
        let text = render(&status(), 100);
        for part in [
            "role          mirror (onions 1.2.3, protocol 2)",
            "uptime        1h 2m 5s",
            "connections   4",
            "upstream      127.0.0.1:10053 connected, lag 3 records, 1m 5s",
            "alarms        none",
        ] {
            assert!(text.contains(part), "{part:?} in\n{text}");
        }
        assert!(alarms(&status()).is_empty());
    }

    #[test]
    fn an_upstream_that_went_back_is_an_alarm() {
        let mut s = status();
        s.upstream.as_mut().unwrap().alarm = Some("upstream is at seq 0".into());
        assert_eq!(alarms(&s), ["upstream: upstream is at seq 0"]);
        assert!(render(&s, 0).contains("ALARM         upstream: upstream is at seq 0"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(86_400 + 1), "1d 0h 0m 1s");
    }
}
