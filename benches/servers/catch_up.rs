//! Row 6: a fresh mirror's catch-up, timed until it answers against a head
//! covering every record, against the machine's bound of two
//! verifications per record (`bound`). Mirror A catches up from the
//! Quorum, later mirror B from mirror A.

use crate::bound::ADDRESSES;
use crate::footprint::Memory;
use crate::heads::Timings;
use crate::profile::{Profile, Snapshot};
use crate::server::{timing, Server};
use crate::table::{mib, row, Row};
use crate::{Bench, Report};
use onions::wire::HeadTiming;
use std::time::{Duration, Instant};

/// One mirror's catch-up.
pub struct CatchUp {
    /// From starting the mirror to its answering against a head covering
    /// every record, seconds.
    pub secs: f64,
    /// The mirror's CPU seconds by then.
    pub cpu: f64,
    /// Its upstream's CPU seconds meanwhile.
    pub feed_cpu: f64,
    /// The mirror's memory once caught up.
    pub memory: Memory,
    /// Its audits' timings over the catch-up.
    pub heads: Timings,
    /// Where the mirror's CPU went, from its start.
    pub profile: Profile,
}

impl Bench {
    /// How long a mirror may take to catch up with every record.
    fn catch_limit(&self) -> Duration {
        Duration::from_secs(120) + Duration::from_millis(5) * self.settings.records as u32
    }

    /// Starts a mirror of `upstream` trusting `key` and waits until it has
    /// caught up; `t` is when the phase began.
    fn start_mirror(
        &self,
        t: Instant,
        label: &str,
        ip: &str,
        state: &str,
        upstream: &Server,
        key: &str,
    ) -> (Server, CatchUp) {
        let feed_cpu = upstream.proc.cpu_secs();
        let upstream_addr = upstream.addr.to_string();
        let args = [
            "--role",
            "mirror",
            "--upstream",
            &upstream_addr,
            "--quorum-key",
            key,
        ];
        let mut mirror = Server::start(&self.settings, label, ip, &self.dir.join(state), &args);
        let status = mirror.wait_caught_up(self.settings.records as u64, self.catch_limit());
        let secs = t.elapsed().as_secs_f64();
        let cpu = mirror.proc.cpu_secs();
        let feed_cpu = upstream.proc.cpu_secs() - feed_cpu;
        let memory = mirror.memory();
        let heads = (HeadTiming::default(), timing(&status));
        let catch_up = CatchUp {
            secs,
            cpu,
            feed_cpu,
            memory,
            heads,
            profile: Profile::since(&Snapshot::default(), &mirror.proc),
        };
        (mirror, catch_up)
    }

    /// Phase "mirror A catch-up from the Quorum" (mirror A is kept in
    /// `self.mirror_a`).
    pub fn catch_up_a(&mut self, key: &str) -> CatchUp {
        let phase = ("mirror A catch-up from the Quorum", "mirror", "Quorum");
        let at = ("mirror A", "127.0.0.2", "mirror-a");
        let (mirror_a, c) = self.catch_up(phase, at, Bench::quorum, key);
        self.mirror_a = Some(mirror_a);
        c
    }

    /// Phase "mirror B catch-up from mirror A" (mirror B is kept in
    /// `self.mirror_b`).
    pub fn catch_up_b(&mut self, key: &str) -> CatchUp {
        let phase = ("mirror B catch-up from mirror A", "mirror B", "mirror A");
        let at = ("mirror B", "127.0.0.3", "mirror-b");
        let (mirror_b, c) = self.catch_up(phase, at, Bench::mirror_a, key);
        self.mirror_b = Some(mirror_b);
        c
    }

    /// The phase `phase.0`: starts a mirror (label, IP and state directory
    /// `at`) of the server `upstream` picks, trusting `key`, and waits until
    /// it has caught up. The phase's line gives the CPU of the mirror and of
    /// its upstream, named `phase.1` and `phase.2`, the mirror's memory and
    /// the heads it audited.
    fn catch_up(
        &mut self,
        (phase, mirror_name, upstream_name): (&str, &str, &str),
        (label, ip, state): (&str, &str, &str),
        upstream: fn(&Bench) -> &Server,
        key: &str,
    ) -> (Server, CatchUp) {
        let t = Instant::now();
        let (mirror, c) = self.start_mirror(t, label, ip, state, upstream(self), key);
        self.phase(
            phase,
            t,
            &format!(
                "{mirror_name} CPU {:.1} s ({}), {upstream_name} CPU {:.1} s, \
                 VmRSS {:.1} MiB, VmHWM {:.1} MiB, {} heads audited",
                c.cpu,
                mirror.proc.thread_cpu_text(),
                c.feed_cpu,
                mib(c.memory.rss),
                mib(c.memory.hwm),
                c.heads.1.count
            ),
        );
        (mirror, c)
    }
}

impl Report {
    /// Row 6: mirror A's catch-up against a mirror's bound, then mirror B's.
    pub fn print_catch_up(&self, n: f64) {
        let a = &self.catch_up_a;
        let b = &self.catch_up_b;
        let mirror_bound = self.rates.mirror_bound();
        let rate_a = n / a.secs;
        let what = "mirror A catch-up from the Quorum";
        rate_row(("6", what), rate_a, mirror_bound, Some(0.75));
        println!(
            "   {:.1} s until it answers against a head covering every record; mirror CPU {:.1} us/record \
             ({:.2} cores busy), feeding Quorum {:.1} us/record; bound CPU {:.1} us/record",
            a.secs,
            a.cpu / n * 1e6,
            a.cpu / a.secs,
            a.feed_cpu / n * 1e6,
            self.cores as f64 / mirror_bound * 1e6
        );
        let parsed = self.rates.mirror_bound_parsed(ADDRESSES);
        println!(
            "   counting also the point checks of parsing each record's {ADDRESSES} onion addresses: \
             bound {parsed:.0}/s ({:.1} us CPU/record), ratio {:.3}",
            self.cores as f64 / parsed * 1e6,
            rate_a / parsed
        );
        a.profile.print("catch-up (mirror A)", "record", n as u64);
        let rate_b = n / b.secs;
        let what = "mirror B catch-up from mirror A";
        rate_row(("", what), rate_b, mirror_bound, None);
        println!(
            "   {:.1} s; mirror B CPU {:.1} us/record ({:.2} cores busy), feeding mirror A {:.1} us/record",
            b.secs,
            b.cpu / n * 1e6,
            b.cpu / b.secs,
            b.feed_cpu / n * 1e6,
        );
    }
}

/// The row (number and figure) of a catch-up at `rate` records a
/// second against a mirror's bound `bound`; with `least`, the goal is a
/// ratio of at least that.
fn rate_row((num, what): (&str, &str), rate: f64, bound: f64, least: Option<f64>) {
    let ratio = rate / bound;
    let goal = least.map_or(String::new(), |least| format!(">= {least}"));
    row(Row {
        num,
        what,
        value: format!("{rate:.0}/s"),
        base: format!("verify / 2 = {bound:.0}/s"),
        ratio: Some(ratio),
        goal: &goal,
        met: least.map(|least| ratio >= least),
    });
}
