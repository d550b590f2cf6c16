//! The put lines the run sends, signed before anything starts: the
//! records the Quorum ingests and those put one at a time for the
//! propagation, made by testkit's [`Maker`] on every core.

use crate::propagation::PROPAGATION_SAMPLES;
use crate::Bench;
use onions::keys::SigningKey;
use onions::record::RecordId;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use testkit::records::{Maker, NAMES_PER_KEY};

/// The seed of owner keys is this tag after the owner number.
pub const SEED_TAG: &[u8; 24] = b"onions-bench-servers-key";
/// Most records signed as one unit of parallel work (a multiple of
/// [`NAMES_PER_KEY`], so a unit derives whole keys).
const CHUNK: usize = 4096;
/// The chunks a run of puts is cut into, where [`CHUNK`] allows: a chunk
/// holds 1/MIN_CHUNKS of the run, rounded up, so each connection of an
/// ingest has records of its own (a connection puts whole chunks).
pub const MIN_CHUNKS: usize = 64;

/// Put lines of consecutive records, and their record ids.
pub struct Chunk {
    /// The number of the first record.
    pub first: usize,
    /// One put line per record, newline included.
    pub lines: Vec<u8>,
    /// The record ids, in the same order.
    pub ids: Vec<RecordId>,
}

/// Put lines of records `first..first + count` at `serial`, signed on
/// `cores` threads, as chunks of at most [`CHUNK`] records (and about
/// [`MIN_CHUNKS`] chunks in a smaller run) in ascending order.
pub fn put_chunks(
    maker: &Maker,
    first: usize,
    count: usize,
    serial: u64,
    cores: usize,
) -> Vec<Chunk> {
    let size = count.div_ceil(MIN_CHUNKS).clamp(1, CHUNK);
    let chunks = count.div_ceil(size);
    let next = AtomicUsize::new(0);
    let mut done: Vec<Chunk> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    let mut key: Option<(usize, SigningKey)> = None;
                    loop {
                        let c = next.fetch_add(1, Ordering::Relaxed);
                        if c >= chunks {
                            return mine;
                        }
                        let start = first + c * size;
                        let end = (start + size).min(first + count);
                        let mut chunk = Chunk {
                            first: start,
                            lines: Vec::with_capacity((end - start) * 640),
                            ids: Vec::with_capacity(end - start),
                        };
                        for i in start..end {
                            let owner = i / NAMES_PER_KEY;
                            if key.as_ref().is_none_or(|(o, _)| *o != owner) {
                                key = Some((owner, maker.owner(i)));
                            }
                            let (_, k) = key.as_ref().expect("set above");
                            let record = maker.renewal(i, k, serial);
                            chunk.ids.push(record.id());
                            chunk.lines.extend_from_slice(&Maker::put_line(i, &record));
                        }
                        mine.push(chunk);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a signing thread"))
            .collect()
    });
    done.sort_by_key(|c| c.first);
    done
}

/// The lines of a chunk, newline included.
pub fn lines(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    chunk.split_inclusive(|&b| b == b'\n')
}

impl Bench {
    /// Phase "sign records": the chunks of every record the Quorum
    /// ingests, and the put lines of the propagation's records after them.
    pub fn sign_records(&mut self, maker: &Maker) -> (Vec<Chunk>, Vec<Vec<u8>>) {
        let n = self.settings.records;
        let cores = self.settings.cores;
        let t = Instant::now();
        let chunks = put_chunks(maker, 0, n, 1, cores);
        let extra = put_chunks(maker, n, PROPAGATION_SAMPLES, 1, cores);
        let puts: Vec<Vec<u8>> = extra
            .iter()
            .flat_map(|c| lines(&c.lines))
            .map(<[u8]>::to_vec)
            .collect();
        let bytes: usize = chunks.iter().map(|c| c.lines.len()).sum();
        self.phase(
            "sign records",
            t,
            &format!(
                "{n} put lines, {:.0} MiB, on {cores} threads",
                bytes as f64 / (1 << 20) as f64
            ),
        );
        (chunks, puts)
    }
}
