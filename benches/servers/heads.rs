//! Row 9: what a head costs. The Quorum's time from a decided batch to its
//! head signed and durable, and a mirror's time to audit a head, both from
//! the servers' status `head_timing`; against baselines measured here: an
//! fdatasync, a signature, one Merkle path, and the whole root computed
//! from scratch (which must equal the Quorum's root after the ingest).

use crate::ingest::QuorumIngest;
use crate::table::{median, note, row, Row};
use crate::{Bench, Report};
use onions::merkle::{self, Hash, LeafKey};
use onions::name::RegisteredName;
use onions::record::RecordId;
use onions::wire::HeadTiming;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Instant;
use testkit::records::Maker;

/// Appends and fdatasyncs timed for the fsync baseline.
const FSYNC_ROUNDS: usize = 50;
/// Paths hashed for the path baseline.
const PATH_ROUNDS: u32 = 20_000;

/// What a head's work is compared with, measured in this process.
pub struct HeadBaselines {
    /// Median time of appending 4 KiB to a file in the run's directory and
    /// fdatasyncing it, seconds.
    fsync: f64,
    /// One leaf hash and `depth` node hashes, seconds: the least work of
    /// a head that changes one entry.
    path: f64,
    /// The node hashes of [`HeadBaselines::path`].
    depth: u32,
    /// From (leaf key, record id, seq) of every record to the root: leaf
    /// hashes, a sort and the subtree hashes, on one core, seconds.
    from_scratch: f64,
}

impl HeadBaselines {
    /// The fdatasync baseline, seconds.
    pub fn fsync(&self) -> f64 {
        self.fsync
    }
}

/// The head timings of one server over one stretch: (before, after).
pub type Timings = (HeadTiming, HeadTiming);

/// Mean microseconds of the heads timed between `t.0` and `t.1`.
fn mean_us(t: &Timings) -> f64 {
    let count = t.1.count.saturating_sub(t.0.count);
    t.1.total_us.saturating_sub(t.0.total_us) as f64 / count.max(1) as f64
}

/// The row (number and figure) of the mean head time `t` against a
/// baseline described by `base` that takes `base_secs`.
fn mean_row((num, what): (&str, &str), t: &Timings, base: String, base_secs: f64) {
    let mean = mean_us(t);
    row(Row {
        num,
        what,
        value: format!("{:.3} ms", mean / 1e3),
        base,
        ratio: Some(mean / 1e6 / base_secs),
        goal: "",
        met: None,
    });
}

/// The note of the longest head time `t` saw, with `detail`.
fn max_note(what: &str, t: &Timings, detail: String) {
    let max = format!("{:.3} ms", t.1.max_us as f64 / 1e3);
    note("", what, max, detail);
}

/// Median time of a 4 KiB append plus fdatasync in `dir`.
fn fsync_secs(dir: &Path) -> f64 {
    let path = dir.join("fsync-probe");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let block = vec![0x5a_u8; 4096];
    let mut times = Vec::with_capacity(FSYNC_ROUNDS);
    for _ in 0..FSYNC_ROUNDS {
        let t = Instant::now();
        file.write_all(&block)
            .and_then(|()| file.sync_data())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        times.push(t.elapsed().as_secs_f64());
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    median(&times)
}

/// Time of one leaf hash and `depth` node hashes, on one core.
fn path_secs(depth: u32) -> f64 {
    let mut h: Hash = [7; 32];
    let sibling: Hash = [9; 32];
    let t = Instant::now();
    for r in 0..PATH_ROUNDS {
        h = merkle::leaf_hash(&LeafKey(h), &RecordId(h), u64::from(r));
        for _ in 0..depth {
            h = merkle::node_hash(&h, &sibling);
        }
    }
    std::hint::black_box(h);
    t.elapsed().as_secs_f64() / f64::from(PATH_ROUNDS)
}

/// The root of the live set the ingest made (every record `i` with
/// `ids[i]` at `seqs[i]`, none expired) computed here from scratch, and
/// how long the hashing took (leaf keys not counted).
fn root_from_scratch(ids: &[RecordId], seqs: &[u64]) -> (Hash, f64) {
    let keys: Vec<LeafKey> = (0..ids.len())
        .map(|i| LeafKey::of(&RegisteredName::parse(&Maker::name(i)).expect("a valid name")))
        .collect();
    let t = Instant::now();
    let mut entries: Vec<(LeafKey, Hash)> = keys
        .iter()
        .zip(ids.iter().zip(seqs))
        .map(|(key, (id, seq))| (*key, merkle::leaf_hash(key, id, *seq)))
        .collect();
    entries.sort_unstable_by_key(|(k, _)| *k);
    let root = merkle::subtree_hash(&entries, 0);
    (root, t.elapsed().as_secs_f64())
}

impl Bench {
    /// Phase "head baselines": the attested seq of every record (record
    /// `i` at `seqs[i]`), the root from scratch checked against the
    /// Quorum's head, and the baselines.
    pub fn head_baselines(&mut self, quorum: &QuorumIngest) -> (Vec<u64>, HeadBaselines) {
        let n = self.settings.records;
        let t = Instant::now();
        let mut seqs = vec![0u64; n];
        for &(i, seq) in &quorum.ingest.seqs {
            seqs[i] = seq;
        }
        let (root, from_scratch) = root_from_scratch(&quorum.ids, &seqs);
        let quorum_head = &quorum.head;
        assert!(
            root == quorum_head.root,
            "the Quorum's head after ingest has another root than the accepted records give \
             (computed here from every attested seq): head {quorum_head:?}"
        );
        let depth = n.max(2).ilog2() + 1;
        let baselines = HeadBaselines {
            fsync: fsync_secs(self.dir.path()),
            path: path_secs(depth),
            depth,
            from_scratch,
        };
        self.phase(
            "head baselines",
            t,
            &format!(
                "root from scratch {:.3} s (equals the Quorum's head), fdatasync {:.3} ms, \
                 path of {depth} hashes {:.2} us",
                baselines.from_scratch,
                baselines.fsync * 1e3,
                baselines.path * 1e6
            ),
        );
        (seqs, baselines)
    }
}

impl Report {
    /// Row 9: the Quorum's heads, then each mirror's audits.
    pub fn print_heads(&self) {
        let b = &self.baselines;
        let sign = self.cores as f64 / self.rates.sign();
        let quorum_base = b.fsync + sign + b.path;
        let q = &self.quorum_ingest_heads;
        let what = format!(
            "Quorum batch -> head signed, durable: mean ({} heads)",
            q.1.count - q.0.count
        );
        let base = format!(
            "fdatasync {:.3} + sign {:.3} + path {:.3} ms",
            b.fsync * 1e3,
            sign * 1e3,
            b.path * 1e3
        );
        mean_row(("9", &what), q, base, quorum_base);
        max_note(
            "Quorum batch -> head signed, durable: max",
            q,
            format!(
                "over the ingest of {} records ({:.0} records a head)",
                self.records,
                self.records as f64 / (q.1.count - q.0.count).max(1) as f64
            ),
        );
        let pq = &self.propagation_heads[0];
        note(
            "",
            "Quorum batch -> head, one-record batches: mean",
            format!("{:.3} ms", mean_us(pq) / 1e3),
            format!(
                "{} heads during the propagation puts",
                pq.1.count - pq.0.count
            ),
        );
        for (who, catch_up, prop) in [
            ("A", &self.catch_up_a.heads, &self.propagation_heads[1]),
            ("B", &self.catch_up_b.heads, &self.propagation_heads[2]),
        ] {
            let what = format!(
                "mirror {who} audit at catch-up: mean ({} heads)",
                catch_up.1.count
            );
            let base = format!("root from scratch here {:.3} ms", b.from_scratch * 1e3);
            mean_row(("", &what), catch_up, base, b.from_scratch);
            let what = format!("mirror {who} audit at catch-up: max");
            max_note(&what, catch_up, String::new());
            let what = format!(
                "mirror {who} audit, one-record heads: mean ({})",
                prop.1.count - prop.0.count
            );
            let base = format!("path of {} hashes {:.4} ms", b.depth, b.path * 1e3);
            mean_row(("", &what), prop, base, b.path);
            let what = format!("mirror {who} audit: max over the run");
            max_note(&what, prop, String::new());
        }
        println!(
            "   (status head_timing; the root from scratch is leaf hashes, a sort and subtree hashes of every \
             record on one core in this process, and equalled the Quorum's root)"
        );
    }
}
