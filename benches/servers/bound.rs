//! The machine's bound, measured in this process: rates of raw libsodium
//! ed25519 verification, our expanded-key signing and the point check of
//! parsing an onion address, each on all cores. The Quorum's ingest and a
//! mirror's catch-up are held against what these rates allow.

use crate::Bench;
use onions::attest::Attestation;
use onions::keys::{PublicKey, SigningKey};
use sodiumoxide::crypto::sign::ed25519;
use std::sync::Barrier;
use std::time::{Duration, Instant};
use testkit::records::Maker;

/// Rounds of the verify/sign rate measurement (order reversed every other).
const CRYPTO_ROUNDS: u32 = 4;
/// Time of one round of one crypto case.
const CRYPTO_ROUND: Duration = Duration::from_millis(500);
/// Onion addresses in each record (the owner's and one subdomain's):
/// parsing a record checks each one's point.
pub const ADDRESSES: f64 = 2.0;

/// Per-second rates of one verification and one signature on all cores.
#[derive(Clone, Copy, Default)]
pub struct CryptoRates {
    verify_ops: u64,
    verify_secs: f64,
    sign_ops: u64,
    sign_secs: f64,
    /// `PublicKey::from_bytes` (libsodium's point check, which parsing an
    /// onion address does for each address of a record).
    point_ops: u64,
    point_secs: f64,
}

impl CryptoRates {
    /// Verifications per second.
    pub fn verify(&self) -> f64 {
        self.verify_ops as f64 / self.verify_secs.max(1e-9)
    }

    /// Signatures per second.
    pub fn sign(&self) -> f64 {
        self.sign_ops as f64 / self.sign_secs.max(1e-9)
    }

    /// Point checks per second.
    pub fn point(&self) -> f64 {
        self.point_ops as f64 / self.point_secs.max(1e-9)
    }

    /// The Quorum's bound counting, besides, the point checks of parsing
    /// a record's `addresses` onion addresses.
    pub fn quorum_bound_parsed(&self, addresses: f64) -> f64 {
        1.0 / (1.0 / self.verify() + 1.0 / self.sign() + addresses / self.point())
    }

    /// A mirror's bound counting, besides, the point checks of parsing a
    /// record's `addresses` onion addresses.
    pub fn mirror_bound_parsed(&self, addresses: f64) -> f64 {
        1.0 / (2.0 / self.verify() + addresses / self.point())
    }

    /// The Quorum's bound: one verification and one signature per record.
    pub fn quorum_bound(&self) -> f64 {
        1.0 / (1.0 / self.verify() + 1.0 / self.sign())
    }

    /// A mirror's bound: two verifications per record.
    pub fn mirror_bound(&self) -> f64 {
        self.verify() / 2.0
    }

    fn add(&mut self, other: CryptoRates) {
        self.verify_ops += other.verify_ops;
        self.verify_secs += other.verify_secs;
        self.sign_ops += other.sign_ops;
        self.sign_secs += other.sign_secs;
        self.point_ops += other.point_ops;
        self.point_secs += other.point_secs;
    }
}

/// Operations of `op` on `cores` threads for `budget`: (ops, wall seconds).
fn on_all_cores(cores: usize, budget: Duration, op: &(dyn Fn() + Sync)) -> (u64, f64) {
    let barrier = Barrier::new(cores + 1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..cores)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    let mut ops = 0u64;
                    while start.elapsed() < budget {
                        op();
                        ops += 1;
                    }
                    ops
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let ops = threads
            .into_iter()
            .map(|t| t.join().expect("a crypto thread"))
            .sum();
        (ops, start.elapsed().as_secs_f64())
    })
}

/// Raw libsodium ed25519 verify of a record and our expanded-key sign of
/// an attestation, each on all cores, in alternating rounds.
fn crypto_rates(maker: &Maker, cores: usize) -> CryptoRates {
    let owner = maker.owner(0);
    let record = maker.record(0, &owner);
    let message = record.signed_bytes();
    let public = ed25519::PublicKey(*record.onion.key().as_bytes());
    let sig = ed25519::Signature::from(record.sig.0);
    let quorum = SigningKey::from_seed(&[2; 32]);
    let attestation = Attestation::sign(record.id(), 1, maker.now(), &quorum).signed_bytes();
    let verify = || assert!(ed25519::verify_detached(&sig, &message, &public));
    let sign = || {
        std::hint::black_box(quorum.sign(std::hint::black_box(&attestation)));
    };
    let owner_key = *record.onion.key().as_bytes();
    let point = || {
        assert!(PublicKey::from_bytes(std::hint::black_box(owner_key)).is_some());
    };
    let mut rates = CryptoRates::default();
    for round in 0..CRYPTO_ROUNDS {
        let mut order = [0, 1, 2];
        order.rotate_left(round as usize % 3);
        for case in order {
            match case {
                0 => {
                    let (ops, secs) = on_all_cores(cores, CRYPTO_ROUND, &verify);
                    rates.verify_ops += ops;
                    rates.verify_secs += secs;
                }
                1 => {
                    let (ops, secs) = on_all_cores(cores, CRYPTO_ROUND, &sign);
                    rates.sign_ops += ops;
                    rates.sign_secs += secs;
                }
                _ => {
                    let (ops, secs) = on_all_cores(cores, CRYPTO_ROUND, &point);
                    rates.point_ops += ops;
                    rates.point_secs += secs;
                }
            }
        }
    }
    rates
}

fn rates_detail(rates: &CryptoRates) -> String {
    format!(
        "ed25519 verify {:.0}/s, expanded-key sign {:.0}/s, point check {:.0}/s on all cores so far",
        rates.verify(),
        rates.sign(),
        rates.point()
    )
}

impl Bench {
    /// Phase `name`: one more measurement of the rates, added to `rates`
    /// (the run measures twice, before and after the ingest).
    pub fn crypto_rates(&mut self, maker: &Maker, rates: &mut CryptoRates, name: &str) {
        let t = Instant::now();
        rates.add(crypto_rates(maker, self.settings.cores));
        self.phase(name, t, &rates_detail(rates));
    }
}
