//! Figure 1: from sending a put to the Quorum to the first lookup at
//! mirror B that a client requiring [`NEEDED`] cosignatures accepts as
//! `found`, with witnesses and without.

use crate::table::row;
use crate::{Report, ANSWER_POLL, NEEDED, PROPAGATION_GOAL_MS, PROPAGATION_SAMPLES, REPLY_LIMIT};
use onions::lookup::{check_reply, LookupError, Policy, Resolution, Witnessed};
use onions::name::LookupName;
use onions::wire::Reply;
use std::time::{Duration, Instant};
use testkit::line::{lookup_request, LineConn};
use testkit::stats;

/// One put timed until mirror B answers it.
pub struct Sample {
    latency: Duration,
    /// Lookups until the `found` answer, and those among them short of
    /// cosignatures or stale.
    polls: u64,
    short: u64,
    /// Valid trusted cosignatures on the `found` answer's head.
    cosigned: usize,
}

/// Sends `put` for `name` on the first connection (to the Quorum) and
/// looks `name` up on the second (at mirror B) every [`ANSWER_POLL`] until
/// an answer passes `check_reply` as `found`.
pub fn propagate(
    conns: &mut (LineConn, LineConn),
    put: &[u8],
    name: &str,
    policy: &Policy,
) -> Sample {
    let (quorum, b) = conns;
    let lookup = LookupName::from_user(name).expect("a valid name");
    let sent = Instant::now();
    quorum.send(put);
    let (mut polls, mut short) = (0, 0);
    let sample = loop {
        polls += 1;
        let reply = b.request(&lookup_request(polls, name));
        let latency = sent.elapsed();
        let found = matches!(reply, Reply::Found { .. });
        let witnessed = found.then(|| Witnessed::of_reply(&reply, &policy.witnesses));
        let cosigned = witnessed.flatten().map_or(0, |w| w.valid);
        match check_reply(reply, &lookup, policy, onions::clock::now()) {
            Ok(Resolution::Found(_)) => {
                break Sample {
                    latency,
                    polls,
                    short,
                    cosigned,
                }
            }
            Ok(Resolution::Absent(_)) => {}
            Err(LookupError::Refused(e)) if e.code.is_transient() => {}
            Err(LookupError::TooFewCosignatures(_) | LookupError::StaleHead { .. }) => short += 1,
            other => panic!("mirror B's answer for {name}: {other:?}"),
        }
        assert!(
            sent.elapsed() < REPLY_LIMIT,
            "{name} not found at mirror B in {REPLY_LIMIT:?}"
        );
        std::thread::sleep(ANSWER_POLL);
    };
    match quorum.read_reply().unwrap_or_else(|e| panic!("{e}")) {
        Reply::Accepted { .. } => sample,
        other => panic!("the put of {name} was answered {other}"),
    }
}

/// The nearest-rank `p`th percentile of the samples' latencies, in ms.
fn percentile_ms(samples: &[Sample], p: usize) -> f64 {
    let latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    stats::percentile_ms(&latencies, p)
}

impl Report {
    /// Figure 1: p50 against the goal, p90, then what the lookups met.
    pub fn print_propagation(&self) {
        let [with, without] = &self.samples;
        for p in [50, 90] {
            let (w, o) = (percentile_ms(with, p), percentile_ms(without, p));
            let what = format!("put -> found at mirror B, {NEEDED} cosignatures, p{p}");
            let (value, base) = (format!("{w:.2} ms"), format!("no witnesses {o:.2} ms"));
            let goal = (p == 50).then_some(("<= 10 ms", w <= PROPAGATION_GOAL_MS));
            let num = if p == 50 { "1" } else { "" };
            row([num, &what, &value, &base], w / o, goal);
        }
        let sum = |s: &[Sample], f: fn(&Sample) -> u64| s.iter().map(f).sum::<u64>();
        let cosigned: Vec<usize> = with.iter().map(|s| s.cosigned).collect();
        println!(
            "   {PROPAGATION_SAMPLES} puts per chain, alternating; max {:.2} vs {:.2} ms; {} vs {} lookups, \
             each through check_reply ({} short of cosignatures or stale); the found answers carried \
             {} to {} valid trusted cosignatures",
            percentile_ms(with, 100),
            percentile_ms(without, 100),
            sum(with, |s| s.polls),
            sum(without, |s| s.polls),
            sum(with, |s| s.short),
            cosigned.iter().min().unwrap_or(&0),
            cosigned.iter().max().unwrap_or(&0),
        );
    }
}
