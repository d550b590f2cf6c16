//! The printed results: time to first byte of each kind of fetch, the
//! ratios against the `.onion` baselines (goal: at most [`GOAL_RATIO`]),
//! the daemon's time per stream, and what the daemon's log says.

use crate::kinds::{Kind, KINDS};
use crate::settings::Settings;
use crate::{Report, WARMUP};
use testkit::stats::percentile;

/// The goal for the `.tor` / `.onion` TTFB ratio.
const GOAL_RATIO: f64 = 1.05;

impl Report {
    /// Prints the results.
    pub fn print(&self, settings: &Settings) {
        let s = |kind: Kind| &self.series[kind.index()];
        let t = |kind: Kind| s(kind).ttfb_ms();
        println!();
        println!(
            "network ready in {:.1} s; {} claims in {:.1} s; measured for {:.1} s",
            self.network_secs, self.claims, self.claim_secs, self.measure_secs
        );
        println!();
        println!(
            "time to first byte of http://HOST/ through Tor's SOCKS port, ms \
             (from the TCP connect to the first response byte; socks: to the SOCKS reply)"
        );
        println!(
            "  {:<38} {:>4} {:>4} {:>8} {:>8} {:>8} {:>8} {:>9}",
            "fetch", "ok", "fail", "median", "p90", "min", "max", "socks p50"
        );
        for kind in KINDS {
            let ttfb = t(kind);
            println!(
                "  {:<38} {:>4} {:>4} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2}",
                kind.label(),
                s(kind).fetches.len(),
                s(kind).failures.len(),
                percentile(&ttfb, 50),
                percentile(&ttfb, 90),
                percentile(&ttfb, 0),
                percentile(&ttfb, 100),
                percentile(&s(kind).socks_ms(), 50)
            );
        }
        println!();
        println!("ratios of TTFB, same run, interleaved");
        println!("  {:<38} {:>8} {:>8}   goal", "", "median", "p90");
        let verdict = |r: f64| if r <= GOAL_RATIO { "met" } else { "MISSED" };
        let ratio = |a: Kind, b: Kind, p| percentile(&t(a), p) / percentile(&t(b), p);
        for (label, a, b, goal) in [
            (
                "example.tor (cached) / .onion",
                Kind::Cached,
                Kind::Onion,
                true,
            ),
            (
                "example.tor (cached) / .onion by tor",
                Kind::Cached,
                Kind::Plain,
                false,
            ),
            (
                "nI.tor (uncached) / .onion",
                Kind::Uncached,
                Kind::Onion,
                false,
            ),
            (
                "nI.tor (uncached) / by hand",
                Kind::Uncached,
                Kind::ByHand,
                false,
            ),
            (
                ".onion: daemon / tor attaching",
                Kind::Onion,
                Kind::Plain,
                false,
            ),
        ] {
            let (m, p) = (ratio(a, b, 50), ratio(a, b, 90));
            let goal = if goal {
                format!(
                    "<= {GOAL_RATIO:.2}x: median {}, p90 {}",
                    verdict(m),
                    verdict(p)
                )
            } else {
                String::new()
            };
            println!("  {label:<38} {m:>7.3}x {p:>7.3}x   {goal}");
        }
        println!();
        println!(
            "the daemon's time per stream, ms: TTFB less the baseline's TTFB of the same round"
        );
        println!(
            "  {:<46} {:>4} {:>8} {:>8} {:>17}",
            "", "n", "median", "p90", "diff. of medians"
        );
        for (label, deltas, a, b) in [
            (
                "cached name (vs .onion)",
                &self.cached_delta,
                Kind::Cached,
                Kind::Onion,
            ),
            (
                "uncached name (vs .onion)",
                &self.uncached_delta,
                Kind::Uncached,
                Kind::Onion,
            ),
            (
                "uncached name (vs lookup by hand + .onion)",
                &self.by_hand_delta,
                Kind::Uncached,
                Kind::ByHand,
            ),
            (
                "any stream, attached (vs tor attaching)",
                &self.attach_delta,
                Kind::Onion,
                Kind::Plain,
            ),
        ] {
            println!(
                "  {:<46} {:>4} {:>8.2} {:>8.2} {:>17.2}",
                label,
                deltas.len(),
                percentile(deltas, 50),
                percentile(deltas, 90),
                percentile(&t(a), 50) - percentile(&t(b), 50)
            );
        }
        let by_hand = s(Kind::ByHand);
        println!(
            "  (by hand: the mirror's reply came after {:.2} ms (median), {:.2} ms (p90), \
             not verified)",
            percentile(&by_hand.lookup_ms(), 50),
            percentile(&by_hand.lookup_ms(), 90)
        );
        println!();
        println!(
            "the daemon's log: {} of {} uncached names resolved on the mirror; example.tor answered \
             from the cache {} times (expected {}: every fetch but the first warm-up)",
            self.from_mirror,
            settings.fetches,
            self.from_cache,
            settings.fetches + WARMUP - 1
        );
        for kind in KINDS {
            for f in s(kind).failures.iter().take(5) {
                println!("failed fetch: {f}");
            }
        }
    }
}
