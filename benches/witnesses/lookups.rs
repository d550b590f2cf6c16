//! Figure 2: lookups per second of random registered names at mirror B
//! (cosigned answers) and at mirror B' (no witnesses), against
//! `redis-benchmark -t get` on testkit's redis baseline, the three
//! alternating.

use crate::chain::Server;
use crate::table::{join, row};
use crate::{
    Report, DECODE_SAMPLE, LOOKUPS_PER_RUN, LOOKUP_CONNS, LOOKUP_GOAL, LOOKUP_ROUNDS, NAMES,
    NEEDED, REPLY_LIMIT,
};
use onions::lookup::{check_reply, Policy, Resolution};
use onions::name::LookupName;
use onions::wire::Reply;
use std::sync::Barrier;
use std::time::Instant;
use testkit::line::{lookup_request, LineConn};
use testkit::records::Maker;
use testkit::stats::median;

/// One lookup run at a mirror: lookups/s, reply bytes per lookup (newline
/// included), the mirror's CPU microseconds per lookup.
pub struct LookupRun {
    rate: f64,
    bytes: f64,
    cpu_us: f64,
}

/// [`LOOKUPS_PER_RUN`] lookups of random registered names over
/// [`LOOKUP_CONNS`] connections. The first reply of each connection is
/// checked as a client does; one in [`DECODE_SAMPLE`] is decoded and must
/// be `found` for the name asked, with at least [`NEEDED`] cosignatures
/// when `policy` requires them; the rest are read as lines.
pub fn lookup_run(mirror: &mut Server, seed: u64, policy: &Policy) -> LookupRun {
    mirror.proc.check_running();
    let addr = mirror.addr;
    let cosigned = !policy.witnesses.is_off();
    let per_conn = LOOKUPS_PER_RUN / LOOKUP_CONNS;
    let barrier = Barrier::new(LOOKUP_CONNS + 1);
    let cpu = mirror.proc.cpu_secs();
    let (secs, bytes) = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..LOOKUP_CONNS as u64)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut conn = LineConn::connect(addr, REPLY_LIMIT);
                    // An LCG, good enough to pick names.
                    let mut rng = seed << 32 | t;
                    let mut bytes = 0u64;
                    barrier.wait();
                    for n in 0..per_conn {
                        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        let name = Maker::name((rng >> 33) as usize % NAMES);
                        conn.send(&lookup_request(n as u64, &name).to_line());
                        let line = conn.read_line().unwrap_or_else(|e| panic!("{e}"));
                        bytes += line.len() as u64 + 1;
                        if n % DECODE_SAMPLE != 0 {
                            continue;
                        }
                        let reply = Reply::parse(line).expect("a reply");
                        if n == 0 {
                            let lookup = LookupName::from_user(&name).expect("a valid name");
                            match check_reply(reply, &lookup, policy, onions::clock::now()) {
                                Ok(Resolution::Found(_)) => continue,
                                other => panic!("lookup of {name} at {addr}: {other:?}"),
                            }
                        }
                        let ok = match &reply {
                            Reply::Found {
                                record,
                                cosignatures: c,
                                ..
                            } => record.name.as_str() == name && (!cosigned || c.len() >= NEEDED),
                            _ => false,
                        };
                        assert!(ok, "lookup of {name} at {addr} answered {reply}");
                    }
                    bytes
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let bytes: u64 = threads
            .into_iter()
            .map(|t| t.join().expect("a lookup thread"))
            .sum();
        (start.elapsed().as_secs_f64(), bytes)
    });
    let ops = (per_conn * LOOKUP_CONNS) as f64;
    let cpu_us = (mirror.proc.cpu_secs() - cpu) / ops * 1e6;
    LookupRun {
        rate: ops / secs,
        bytes: bytes as f64 / ops,
        cpu_us,
    }
}

impl Report {
    /// Figure 2: B and B' against redis, then B against B' with its goal.
    pub fn print_lookups(&self) {
        let redis = median(&self.redis);
        let base = format!("redis GET {redis:.0}/s");
        let rates = |i: usize| self.lookups[i].iter().map(|r| r.rate).collect::<Vec<f64>>();
        let [at_b, at_plain] = [0, 1].map(|i| median(&rates(i)));
        let (b, plain) = (format!("{at_b:.0}/s"), format!("{at_plain:.0}/s"));
        let cells = ["2", "lookups/s at mirror B (cosigned)", &b, &base];
        row(cells, at_b / redis, None);
        let cells = ["", "lookups/s at mirror B' (no witnesses)", &plain, &base];
        row(cells, at_plain / redis, None);
        let ratio = at_b / at_plain;
        let base = format!("no witnesses {plain}");
        let cells = ["", "lookups/s, with witnesses / without", &b, &base];
        row(cells, ratio, Some((">= 0.95", ratio >= LOOKUP_GOAL)));
        let mean = |i: usize, f: fn(&LookupRun) -> f64| {
            self.lookups[i].iter().map(f).sum::<f64>() / self.lookups[i].len().max(1) as f64
        };
        let rate = |r: &f64| format!("{r:.0}");
        println!(
            "   medians of {LOOKUP_ROUNDS} runs, alternating: B {}; B' {}; redis {}; reply {:.0} vs {:.0} B; \
             mirror CPU {:.2} vs {:.2} us/lookup; 1 reply in {DECODE_SAMPLE} decoded, each \
             connection's first checked in full",
            join(&rates(0), rate),
            join(&rates(1), rate),
            join(&self.redis, rate),
            mean(0, |r| r.bytes),
            mean(1, |r| r.bytes),
            mean(0, |r| r.cpu_us),
            mean(1, |r| r.cpu_us),
        );
    }
}
