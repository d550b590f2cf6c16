//! The `profile` notes under the rows: where a server's CPU went during a
//! phase, by thread, with its context switches and its read and write
//! system calls, each per operation of the phase (a lookup, a put, a
//! record caught up), read from /proc, so the next engineer sees what
//! bounds each path without a profiler.

use testkit::process::Proc;

/// A server's counters at one moment.
#[derive(Default)]
pub struct Snapshot {
    threads: Vec<(String, f64)>,
    switches: u64,
    io: (u64, u64),
}

impl Snapshot {
    /// The counters of `proc` now.
    pub fn of(proc: &Proc) -> Snapshot {
        Snapshot {
            threads: proc.thread_cpu_secs(),
            switches: proc.context_switches(),
            io: proc.io_calls(),
        }
    }
}

/// What a server spent between two snapshots.
#[derive(Default)]
pub struct Profile {
    /// CPU seconds per thread name (threads under 10 ms left out).
    threads: Vec<(String, f64)>,
    /// Context switches of all its threads.
    switches: u64,
    /// Read system calls (file reads, wake-up drains).
    reads: u64,
    /// Write system calls (file writes, wake-ups).
    writes: u64,
}

impl Profile {
    /// What `proc` spent since `before`.
    pub fn since(before: &Snapshot, proc: &Proc) -> Profile {
        let now = Snapshot::of(proc);
        let threads = now
            .threads
            .into_iter()
            .map(|(name, secs)| {
                let was = before
                    .threads
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(0.0, |t| t.1);
                (name, secs - was)
            })
            .filter(|(_, secs)| *secs >= 0.01)
            .collect();
        Profile {
            threads,
            switches: now.switches - before.switches,
            reads: now.io.0 - before.io.0,
            writes: now.io.1 - before.io.1,
        }
    }

    /// Prints the note `profile PATH: ...` with every figure per `unit`,
    /// of which there were `ops`.
    pub fn print(&self, path: &str, unit: &str, ops: u64) {
        let per = |x: f64| x / ops.max(1) as f64;
        let threads: Vec<String> = self
            .threads
            .iter()
            .map(|(name, secs)| format!("{name} {:.2} us", per(*secs) * 1e6))
            .collect();
        println!(
            "   profile {path}: CPU per {unit} by thread: {}; per {unit}: {:.2} context switches, \
             {:.2} read and {:.2} write system calls (file I/O and wake-ups; socket I/O not counted)",
            threads.join(", "),
            per(self.switches as f64),
            per(self.reads as f64),
            per(self.writes as f64)
        );
    }
}
