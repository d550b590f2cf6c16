//! Rows 3 and 4: what the servers hold. Resident memory (VmRSS, VmHWM from
//! /proc) of the mirrors once caught up, after the lookup load and after a
//! restart, and of the Quorum after the ingest; the bytes of each server's
//! `records.log` and state directory.

use crate::server::Server;
use crate::table::{mib, note, row, Row};
use crate::{Bench, Report};
use onions::store::RECORD_FRAMING;

/// The goal for a mirror's resident memory at 2^20 records.
const GOAL_RSS: u64 = 64 << 20;

/// VmRSS and VmHWM of a process, bytes.
#[derive(Clone, Copy)]
pub struct Memory {
    /// Resident now.
    pub rss: u64,
    /// Resident at most so far.
    pub hwm: u64,
}

impl Server {
    /// Bytes of `records.log`.
    fn log_bytes(&self) -> u64 {
        let path = self.state.join("records.log");
        std::fs::metadata(&path)
            .map(|m| m.len())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Bytes of every file in the state directory.
    fn dir_bytes(&self) -> u64 {
        std::fs::read_dir(&self.state)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    }

    /// VmRSS and VmHWM, in bytes.
    pub fn memory(&self) -> Memory {
        Memory {
            rss: self.proc.status_kib("VmRSS") * 1024,
            hwm: self.proc.status_kib("VmHWM") * 1024,
        }
    }
}

impl Bench {
    /// (`records.log`, state directory) bytes of the Quorum, mirror A and
    /// mirror B.
    pub fn disk(&self) -> [(u64, u64); 3] {
        [&self.quorum, &self.mirror_a, &self.mirror_b].map(|s| {
            let s = s.as_ref().expect("started");
            (s.log_bytes(), s.dir_bytes())
        })
    }
}

impl Report {
    /// Row 3: the mirrors' memory against the goal, the Quorum's as a note.
    pub fn print_memory(&self) {
        let goal = "<= 64 MiB";
        for (i, (what, m)) in [
            ("mirror A after catch-up", self.catch_up_a.memory),
            ("mirror A after the lookup load", self.memory_after_lookups),
            ("mirror B after catch-up", self.catch_up_b.memory),
            ("mirror A after its restart", self.restart_a.memory),
        ]
        .into_iter()
        .enumerate()
        {
            for (field, bytes) in [("VmRSS", m.rss), ("VmHWM", m.hwm)] {
                row(Row {
                    num: if i == 0 && field == "VmRSS" { "3" } else { "" },
                    what: &format!("{what}, {field}"),
                    value: format!("{:.1} MiB", mib(bytes)),
                    base: String::new(),
                    ratio: None,
                    goal,
                    met: Some(bytes <= GOAL_RSS),
                });
            }
        }
        note(
            "",
            "Quorum after ingest, VmRSS / VmHWM",
            format!("{:.1} MiB", mib(self.quorum_memory.rss)),
            format!("VmHWM {:.1} MiB", mib(self.quorum_memory.hwm)),
        );
    }

    /// Row 4: each server's `records.log`, per record and per 2^20.
    pub fn print_disk(&self, n: f64, per_goal: f64) {
        for (i, (who, (log, dir))) in ["Quorum", "mirror A", "mirror B"]
            .iter()
            .zip(self.disk)
            .enumerate()
        {
            note(
                if i == 0 { "4" } else { "" },
                &format!("records.log, {who}"),
                format!("{:.1} MiB", mib(log)),
                format!(
                    "{:.0} B/record; {:.1} MiB per 2^20; dir {:.1} MiB",
                    log as f64 / n,
                    mib(log) * per_goal,
                    mib(dir)
                ),
            );
        }
        let [name, record, attestation, record_text, attestation_text] = self.proofs.stored_means();
        println!(
            "   profile disk: a record's frame = {RECORD_FRAMING} B of framing (kind and length 5, seq 8, expiry 8, \
             leaf hash 32, lengths 9, checksum 16) + name {name:.0} + record {record:.0} packed \
             ({record_text:.0} as text) + attestation {attestation:.0} packed ({attestation_text:.0} as text) \
             = {:.0} B (means of the sampled answers); the Quorum's log also holds a packed head frame \
             a batch until compaction",
            RECORD_FRAMING as f64 + name + record + attestation
        );
    }
}
