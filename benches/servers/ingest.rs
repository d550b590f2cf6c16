//! Row 5: the Quorum's durable ingest. The Quorum starts, every record is
//! put over [`INGEST_CONNS`] connections with one put in flight on each,
//! and the rate is held against the machine's bound of one verification
//! and one signature per record (`bound`). At the end of the run, the
//! first [`RENEWALS`] names are renewed the same way (row 5b): each such
//! put is decided against the live record the Quorum reads from its log,
//! as most puts of a network in use are. Then [`WIDE_NAMES`] new names
//! are put over [`WIDE_CONNS`] connections (row 5c): with that many puts
//! in flight, the Quorum's batches grow, as group commit means them to.

use crate::bound::ADDRESSES;
use crate::footprint::Memory;
use crate::heads::Timings;
use crate::profile::{Profile, Snapshot};
use crate::propagation::PROPAGATION_SAMPLES;
use crate::records::{lines, put_chunks, Chunk, MIN_CHUNKS};
use crate::server::{policy, print_key, timing, Server, REPLY_LIMIT};
use crate::table::{row, Row};
use crate::{Bench, Report};
use onions::head::SignedHead;
use onions::lookup::Policy;
use onions::record::RecordId;
use onions::wire::{Code, Reply};
use std::net::SocketAddr;
use std::sync::Barrier;
use std::time::{Duration, Instant};
use testkit::line::LineConn;
use testkit::records::Maker;

/// Connections the Quorum's ingest runs over, one put in flight on each.
const INGEST_CONNS: usize = 8;
/// Names renewed in row 5b (all of them in a smaller run).
const RENEWALS: usize = 16384;
/// Connections of row 5c, one put in flight on each: many submitters at
/// once, as a Quorum in use has.
const WIDE_CONNS: usize = 64;
/// New names put in row 5c (as many as the run's records, if fewer).
const WIDE_NAMES: usize = 65536;
// Each connection puts whole chunks, so there must be one for each.
const _: () = assert!(WIDE_CONNS <= MIN_CHUNKS && INGEST_CONNS <= MIN_CHUNKS);
/// Tries of one put that keeps being answered `busy`.
const BUSY_RETRIES: u32 = 1000;

/// What the ingest connections saw.
#[derive(Default)]
pub struct Ingest {
    /// Puts answered `accepted`.
    pub accepted: u64,
    /// Puts answered otherwise (none, in a good run).
    pub refused: u64,
    /// `busy` answers retried.
    pub busy: u64,
    /// The first answer that was not `accepted` nor `busy`.
    pub first_refusal: Option<String>,
    /// Wall seconds from the first put to the last reply.
    pub secs: f64,
    /// (record number, attested seq) of every accepted put.
    pub seqs: Vec<(usize, u64)>,
}

impl Ingest {
    /// Puts accepted per second.
    fn rate(&self) -> f64 {
        self.accepted as f64 / self.secs
    }
}

/// A run of puts' `profile` note, with how many puts a head covered.
fn print_put_profile(profile: &Profile, what: &str, puts: u64, heads: u64) {
    let per_head = puts as f64 / heads.max(1) as f64;
    profile.print(&format!("{what} ({per_head:.1} puts a head)"), "put", puts);
}

/// Puts every line of `chunks` over `conns` connections, one request in
/// flight on each, chunk `c` on connection `c % conns`.
fn ingest(addr: SocketAddr, chunks: &[Chunk], conns: usize) -> Ingest {
    let barrier = Barrier::new(conns + 1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..conns)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut conn = LineConn::connect(addr, REPLY_LIMIT);
                    let mut seen = Ingest::default();
                    barrier.wait();
                    for chunk in chunks.iter().skip(t).step_by(conns) {
                        for (j, line) in lines(&chunk.lines).enumerate() {
                            if let Some(seq) = put_one(&mut conn, line, &mut seen) {
                                seen.seqs.push((chunk.first + j, seq));
                            }
                        }
                    }
                    seen
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut total = Ingest::default();
        for thread in threads {
            let seen = thread.join().expect("an ingest thread");
            total.accepted += seen.accepted;
            total.refused += seen.refused;
            total.busy += seen.busy;
            total.first_refusal = total.first_refusal.or(seen.first_refusal);
            total.seqs.extend(seen.seqs);
        }
        total.secs = start.elapsed().as_secs_f64();
        total
    })
}

/// Sends one put, retrying (bounded) while the Quorum answers `busy`;
/// the attested seq when it is accepted.
fn put_one(conn: &mut LineConn, line: &[u8], seen: &mut Ingest) -> Option<u64> {
    for _ in 0..BUSY_RETRIES {
        conn.send(line);
        match conn.read_reply().unwrap_or_else(|e| panic!("put: {e}")) {
            Reply::Accepted { attestation, .. } => {
                seen.accepted += 1;
                return Some(attestation.seq);
            }
            Reply::Error(e) if e.code == Code::Busy => {
                seen.busy += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            other => {
                seen.refused += 1;
                seen.first_refusal.get_or_insert_with(|| other.to_string());
                return None;
            }
        }
    }
    panic!("a put was answered busy {BUSY_RETRIES} times");
}

/// The Quorum after the ingest, and what the later phases need of it.
pub struct QuorumIngest {
    /// The Quorum's key, as `--print-key` gave it.
    pub key: String,
    /// What a client checks answers against.
    pub policy: Policy,
    /// What the ingest connections saw.
    pub ingest: Ingest,
    /// The Quorum's CPU seconds during the ingest.
    pub cpu: f64,
    /// Where that CPU went.
    pub profile: Profile,
    /// The Quorum's memory after it.
    pub memory: Memory,
    /// The Quorum's head timings over the ingest.
    pub heads: Timings,
    /// The record ids, record `i` at `ids[i]`.
    pub ids: Vec<RecordId>,
    /// The Quorum's head after the ingest, covering every record.
    pub head: SignedHead,
}

impl Bench {
    /// Phase "Quorum ingest": starts the Quorum (kept in `self.quorum`)
    /// and puts every record of `chunks`, then drops them.
    pub fn quorum_ingest(&mut self, chunks: Vec<Chunk>) -> QuorumIngest {
        let n = self.settings.records;
        let t = Instant::now();
        let quorum_dir = self.dir.join("quorum");
        let key = print_key(&self.settings, &quorum_dir);
        let policy = policy(&key);
        let quorum = Server::start(
            &self.settings,
            "Quorum",
            "127.0.0.1",
            &quorum_dir,
            &["--role", "quorum", "--min-work", "0"],
        );
        let timing_before = timing(&quorum.status());
        let cpu_before = quorum.proc.cpu_secs();
        let before = Snapshot::of(&quorum.proc);
        let t_ingest = Instant::now();
        let ingest = ingest(quorum.addr, &chunks, INGEST_CONNS);
        let quorum_cpu = quorum.proc.cpu_secs() - cpu_before;
        let profile = Profile::since(&before, &quorum.proc);
        let ingest_wall = t_ingest.elapsed();
        let ids: Vec<RecordId> = chunks.iter().flat_map(|c| c.ids.iter().copied()).collect();
        drop(chunks);
        let quorum_status = quorum.status();
        let quorum_memory = quorum.memory();
        let quorum_threads = quorum.proc.thread_cpu_text();
        self.quorum = Some(quorum);
        assert_eq!(
            ingest.refused,
            0,
            "the Quorum refused puts, first: {}",
            ingest.first_refusal.as_deref().unwrap_or("")
        );
        assert_eq!(quorum_status.seq, n as u64, "the Quorum's seq after ingest");
        let quorum_head = quorum_status
            .head
            .clone()
            .unwrap_or_else(|| panic!("the Quorum has no head after ingest: {quorum_status}"));
        assert_eq!(
            (quorum_head.seq, quorum_head.size),
            (n as u64, n as u64),
            "the Quorum's head after ingest covers every record"
        );
        let quorum_ingest_heads = (timing_before, timing(&quorum_status));
        self.phase(
            "Quorum ingest",
            t,
            &format!(
                "{} accepted in {:.1} s ({:.0}/s), {} busy retries, Quorum CPU {:.1} s ({quorum_threads}), {} heads",
                ingest.accepted,
                ingest_wall.as_secs_f64(),
                ingest.rate(),
                ingest.busy,
                quorum_cpu,
                quorum_ingest_heads.1.count - quorum_ingest_heads.0.count
            ),
        );
        QuorumIngest {
            key,
            policy,
            ingest,
            cpu: quorum_cpu,
            profile,
            memory: quorum_memory,
            heads: quorum_ingest_heads,
            ids,
            head: quorum_head,
        }
    }
}

/// What a run of puts at the end of the run saw (rows 5b and 5c).
pub struct Puts {
    /// What the connections saw.
    pub ingest: Ingest,
    /// The Quorum's CPU seconds during them.
    pub cpu: f64,
    /// Where that CPU went.
    pub profile: Profile,
    /// Heads the Quorum signed during them (one a batch).
    pub heads: u64,
}

/// Which puts a run at the end of the run makes, and how.
struct Run<'a> {
    /// The phase's name.
    phase: &'a str,
    /// What a put does, for the phase's line.
    what: &'a str,
    /// The first record's number.
    first: usize,
    /// Records put.
    count: usize,
    /// Their serial.
    serial: u64,
    /// Connections, one put in flight on each.
    conns: usize,
}

impl Bench {
    /// Phase "Quorum renewals", with the mirrors stopped: the first
    /// [`RENEWALS`] names put again at serial 2 by their owners.
    pub fn quorum_renewals(&mut self, maker: &Maker) -> Puts {
        let run = Run {
            phase: "Quorum renewals",
            what: "renewals",
            first: 0,
            count: RENEWALS.min(self.settings.records),
            serial: 2,
            conns: INGEST_CONNS,
        };
        self.quorum_puts(maker, &run)
    }

    /// Phase "Quorum ingest, many in flight", after the renewals:
    /// [`WIDE_NAMES`] names no record held, after the propagation's, put
    /// over [`WIDE_CONNS`] connections.
    pub fn quorum_wide_ingest(&mut self, maker: &Maker) -> Puts {
        let run = Run {
            phase: "Quorum ingest, many in flight",
            what: "new names",
            first: self.settings.records + PROPAGATION_SAMPLES,
            count: WIDE_NAMES.min(self.settings.records),
            serial: 1,
            conns: WIDE_CONNS,
        };
        self.quorum_puts(maker, &run)
    }

    /// Signs the puts of `run`, then puts them to the Quorum and measures.
    fn quorum_puts(&mut self, maker: &Maker, run: &Run<'_>) -> Puts {
        let t = Instant::now();
        let chunks = put_chunks(maker, run.first, run.count, run.serial, self.settings.cores);
        let quorum = self.quorum();
        let heads_before = timing(&quorum.status()).count;
        let cpu_before = quorum.proc.cpu_secs();
        let before = Snapshot::of(&quorum.proc);
        let ingest = ingest(quorum.addr, &chunks, run.conns);
        let cpu = quorum.proc.cpu_secs() - cpu_before;
        let profile = Profile::since(&before, &quorum.proc);
        let heads = timing(&quorum.status()).count - heads_before;
        assert_eq!(
            (ingest.accepted, ingest.refused),
            (run.count as u64, 0),
            "{} accepted and refused, first refusal: {}",
            run.what,
            ingest.first_refusal.as_deref().unwrap_or("")
        );
        self.phase(
            run.phase,
            t,
            &format!(
                "{} {} accepted over {} connections in {:.1} s ({:.0}/s), Quorum CPU {cpu:.1} s",
                run.count,
                run.what,
                run.conns,
                ingest.secs,
                ingest.rate()
            ),
        );
        Puts {
            ingest,
            cpu,
            profile,
            heads,
        }
    }
}

impl Report {
    /// Row 5b: the rate of renewals, against the same bound and beside
    /// row 5's rate of new names.
    pub fn print_renewals(&self) {
        let r = &self.renewals;
        let rate = r.ingest.rate();
        let bound = self.rates.quorum_bound();
        row(Row {
            num: "5b",
            what: &format!("Quorum durable renewals, {INGEST_CONNS} conns"),
            value: format!("{rate:.0}/s"),
            base: format!("1/(1/verify + 1/sign) = {bound:.0}/s"),
            ratio: Some(rate / bound),
            goal: "",
            met: None,
        });
        println!(
            "   {} live names renewed at serial 2 at the end of the run, the mirrors stopped; {:.2}x row 5's rate of new names; Quorum CPU {:.1} us/put",
            r.ingest.accepted,
            rate / self.ingest.rate(),
            r.cpu / r.ingest.accepted as f64 * 1e6,
        );
        print_put_profile(&r.profile, "renewals", r.ingest.accepted, r.heads);
    }

    /// Row 5c: the rate of new names with [`WIDE_CONNS`] puts in flight,
    /// against the same bound and beside row 5's rate.
    pub fn print_wide_ingest(&self) {
        let w = &self.wide_ingest;
        let rate = w.ingest.rate();
        let bound = self.rates.quorum_bound();
        row(Row {
            num: "5c",
            what: &format!("Quorum durable ingest, {WIDE_CONNS} conns"),
            value: format!("{rate:.0}/s"),
            base: format!("1/(1/verify + 1/sign) = {bound:.0}/s"),
            ratio: Some(rate / bound),
            goal: "",
            met: None,
        });
        let parsed = self.rates.quorum_bound_parsed(ADDRESSES);
        println!(
            "   {} new names at the end of the run, the mirrors stopped; {:.2}x row 5's rate; Quorum CPU {:.1} us/put ({:.2} cores busy); counting also the point checks: ratio {:.3}",
            w.ingest.accepted,
            rate / self.ingest.rate(),
            w.cpu / w.ingest.accepted as f64 * 1e6,
            w.cpu / w.ingest.secs,
            rate / parsed,
        );
        let what = format!("ingest, {WIDE_CONNS} conns");
        print_put_profile(&w.profile, &what, w.ingest.accepted, w.heads);
    }

    /// Row 5: the ingest rate against the Quorum's bound.
    pub fn print_ingest(&self) {
        let ingest_rate = self.ingest.rate();
        let bound = self.rates.quorum_bound();
        row(Row {
            num: "5",
            what: &format!("Quorum durable ingest, {INGEST_CONNS} conns"),
            value: format!("{ingest_rate:.0}/s"),
            base: format!("1/(1/verify + 1/sign) = {bound:.0}/s"),
            ratio: Some(ingest_rate / bound),
            goal: ">= 0.75",
            met: Some(ingest_rate / bound >= 0.75),
        });
        println!(
            "   verify {:.0}/s, sign {:.0}/s, point check {:.0}/s on {} cores; Quorum CPU {:.1} us/put ({:.2} cores busy); bound CPU {:.1} us/put",
            self.rates.verify(),
            self.rates.sign(),
            self.rates.point(),
            self.cores,
            self.quorum_cpu / self.ingest.accepted as f64 * 1e6,
            self.quorum_cpu / self.ingest.secs,
            self.cores as f64 / bound * 1e6,
        );
        let parsed = self.rates.quorum_bound_parsed(ADDRESSES);
        println!(
            "   counting also the point checks of parsing each record's {ADDRESSES} onion addresses: \
             bound {parsed:.0}/s, ratio {:.3}",
            ingest_rate / parsed
        );
        let heads = self.quorum_ingest_heads.1.count - self.quorum_ingest_heads.0.count;
        print_put_profile(&self.ingest_profile, "ingest", self.ingest.accepted, heads);
    }
}
