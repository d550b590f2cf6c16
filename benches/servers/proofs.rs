//! Row 8: bytes of a proof on the wire. Random registered and unregistered
//! names are looked up at mirror A, every answer checked as a client does
//! (`check_reply`), and the presence and absence proofs measured against
//! the protocol's reference means (PROTOCOL.md §10.9).

use crate::server::REPLY_LIMIT;
use crate::table::{max, mean, median, note, row, Row};
use crate::{Bench, Report};
use onions::lookup::{check_reply, Policy, Resolution};
use onions::merkle;
use onions::name::LookupName;
use onions::store::{stored_text_lens, Entry};
use onions::wire::Reply;
use std::net::SocketAddr;
use std::time::Instant;
use testkit::line::{lookup_request, LineConn};
use testkit::records::Maker;
use testkit::XorShift;

/// Registered names looked up for the proof sizes.
const PROOF_FOUND_SAMPLES: usize = 10_000;
/// Unregistered names looked up for the absence proof sizes.
const PROOF_ABSENT_SAMPLES: usize = 2_000;
/// PROTOCOL.md §10.9: the reference's mean presence proof as canonical
/// JSON, in bytes, at 2^10, 2^16 and 2^20 entries.
const REFERENCE_PROOF: [(u32, f64); 3] = [(10, 557.0), (16, 841.0), (20, 1027.0)];
/// PROTOCOL.md §10.9: an absence proof is about this much longer.
const ABSENCE_EXTRA: f64 = 35.0;

/// Proof sizes on the wire, from a sample of lookups.
#[derive(Default)]
pub struct ProofSizes {
    /// Bytes of the canonical JSON of `proof` in `found` replies.
    found: Vec<f64>,
    /// The same in `not_found` replies.
    absent: Vec<f64>,
    /// Bytes of the whole `found` and `not_found` lines.
    found_lines: Vec<f64>,
    absent_lines: Vec<f64>,
    /// Siblings of the proofs, found and not found.
    found_depth: Vec<f64>,
    absent_depth: Vec<f64>,
    /// Absence proofs ending in an empty subtree (the rest end in a leaf).
    absent_empty: usize,
    /// Time spent in `Reply::parse` for the sampled replies, seconds.
    decode_secs: f64,
    /// Time spent in `check_reply` for them, seconds.
    check_secs: f64,
    /// Bytes of the name, the record and attestation as the log frame
    /// stores them (packed), and their canonical texts, summed over the
    /// `found` answers: what a record's log frame holds besides its
    /// framing, and what it would hold as text.
    stored: [f64; 5],
}

/// Looks up [`PROOF_FOUND_SAMPLES`] random registered names and
/// [`PROOF_ABSENT_SAMPLES`] unregistered ones on `addr`; checks every
/// answer as a client does (signatures, freshness, the proof against the
/// head's root), that the record is the one the ingest was answered with
/// (same seq), and that the line carries the proof as canonical JSON; and
/// measures the proofs.
fn proof_sizes(addr: SocketAddr, seqs: &[u64], policy: &Policy) -> ProofSizes {
    let mut conn = LineConn::connect(addr, REPLY_LIMIT);
    let mut rng = XorShift::new(0x5eed);
    let mut sizes = ProofSizes::default();
    let total = PROOF_FOUND_SAMPLES + PROOF_ABSENT_SAMPLES;
    for n in 0..total {
        let registered = n < PROOF_FOUND_SAMPLES;
        let (name, i) = if registered {
            let i = rng.below(seqs.len());
            (Maker::name(i), i)
        } else {
            (format!("nobody-{n}.tor"), 0)
        };
        let request = lookup_request(n as u64, &name);
        conn.send(&request.to_line());
        let line = conn
            .read_line()
            .unwrap_or_else(|e| panic!("lookup of {name}: {e}"))
            .to_vec();
        let t = Instant::now();
        let reply = Reply::parse(&line).unwrap_or_else(|e| {
            panic!(
                "lookup of {name}: undecodable reply {:?}: {e}",
                String::from_utf8_lossy(&line)
            )
        });
        sizes.decode_secs += t.elapsed().as_secs_f64();
        let proof = match &reply {
            Reply::Found { proof, .. } | Reply::NotFound { proof, .. } => proof.clone(),
            other => panic!("lookup of {name} answered {other}"),
        };
        let mut text = String::new();
        proof.write_json(&mut text);
        let needle = format!("\"proof\":{text}");
        assert!(
            line.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the reply to {name} does not carry its proof as canonical JSON: {}",
            String::from_utf8_lossy(&line)
        );
        let lookup = LookupName::from_user(&name).expect("a valid name");
        let t = Instant::now();
        let resolution = check_reply(reply, &lookup, policy, onions::clock::now())
            .unwrap_or_else(|e| panic!("the answer for {name} fails a client's checks: {e}"));
        sizes.check_secs += t.elapsed().as_secs_f64();
        let depth = proof.siblings.len() as f64;
        match resolution {
            Resolution::Found(answer) if registered => {
                assert_eq!(
                    answer.attestation.seq, seqs[i],
                    "{name} answered with another seq than its put"
                );
                sizes.found.push(text.len() as f64);
                sizes.found_lines.push(line.len() as f64 + 1.0);
                sizes.found_depth.push(depth);
                let attestation = onions::canonical::to_string(&answer.attestation.to_value());
                let entry = Entry::new(answer.attestation.seq, &answer.record, attestation);
                let [record_stored, attestation_stored] = stored_text_lens(&entry);
                for (sum, len) in sizes.stored.iter_mut().zip([
                    entry.name.as_str().len(),
                    record_stored,
                    attestation_stored,
                    entry.record.len(),
                    entry.attestation.len(),
                ]) {
                    *sum += len as f64;
                }
            }
            Resolution::Absent(_) if !registered => {
                if proof.terminal == Some(merkle::Terminal::Empty) {
                    sizes.absent_empty += 1;
                }
                sizes.absent.push(text.len() as f64);
                sizes.absent_lines.push(line.len() as f64 + 1.0);
                sizes.absent_depth.push(depth);
            }
            other => panic!(
                "{name} ({}) resolved to {other:?}",
                if registered {
                    "registered"
                } else {
                    "not registered"
                }
            ),
        }
    }
    sizes
}

impl ProofSizes {
    /// The median length of a `found` reply line, in bytes.
    pub fn median_found_line(&self) -> usize {
        median(&self.found_lines).round() as usize
    }

    /// Mean bytes of (name, record stored, attestation stored, record
    /// text, attestation text) in the sampled `found` answers.
    pub fn stored_means(&self) -> [f64; 5] {
        self.stored.map(|sum| sum / self.found.len().max(1) as f64)
    }
}

/// The reference's mean presence proof at the scale nearest `n`:
/// (log2 of that scale, bytes).
fn reference_proof(n: usize) -> (u32, f64) {
    let log = (n.max(1) as f64).log2();
    REFERENCE_PROOF
        .into_iter()
        .min_by(|a, b| {
            (f64::from(a.0) - log)
                .abs()
                .total_cmp(&(f64::from(b.0) - log).abs())
        })
        .expect("a reference")
}

impl Bench {
    /// Phase "proof sizes at mirror A"; `seqs[i]` is record `i`'s
    /// attested seq.
    pub fn proof_sizes(&mut self, seqs: &[u64], policy: &Policy) -> ProofSizes {
        let t = Instant::now();
        let proofs = proof_sizes(self.mirror_a().addr, seqs, policy);
        self.phase(
            "proof sizes at mirror A",
            t,
            &format!(
                "{} found and {} not_found answers, each passing check_reply",
                proofs.found.len(),
                proofs.absent.len()
            ),
        );
        proofs
    }
}

impl Report {
    /// Row 8: presence and absence proofs against the reference.
    pub fn print_proofs(&self) {
        let p = &self.proofs;
        let (scale, reference) = reference_proof(self.records);
        for (i, (what, sizes, lines, depth, reference)) in [
            (
                "presence",
                &p.found,
                &p.found_lines,
                &p.found_depth,
                reference,
            ),
            (
                "absence",
                &p.absent,
                &p.absent_lines,
                &p.absent_depth,
                reference + ABSENCE_EXTRA,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let avg = mean(sizes);
            row(Row {
                num: if i == 0 { "8" } else { "" },
                what: &format!("proof bytes, {what} ({} answers), mean", sizes.len()),
                value: format!("{avg:.1} B"),
                base: format!(
                    "reference {}{reference:.0} B at 2^{scale}",
                    if i == 0 { "" } else { "~" }
                ),
                ratio: Some(avg / reference),
                goal: "",
                met: None,
            });
            note(
                "",
                &format!("proof bytes, {what}, median / max"),
                format!("{:.0} B", median(sizes)),
                format!(
                    "max {:.0} B; siblings mean {:.2}, max {:.0}",
                    max(sizes),
                    mean(depth),
                    max(depth)
                ),
            );
            note(
                "",
                &format!("whole reply line, {what}, median / max"),
                format!("{:.0} B", median(lines)),
                format!("max {:.0} B", max(lines)),
            );
        }
        let answers = (p.found.len() + p.absent.len()) as f64;
        println!(
            "   absence proofs ending in an empty subtree: {} of {}; every answer passed check_reply \
             ({:.1} us each) and carried the proof as canonical JSON; Reply::parse {:.1} us per answer",
            p.absent_empty,
            p.absent.len(),
            p.check_secs / answers * 1e6,
            p.decode_secs / answers * 1e6
        );
    }
}
