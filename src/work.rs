//! Proof of work (PROTOCOL.md §4): Argon2id over the record, and the search
//! for a nonce on every core.
//!
//! `input = SHA-256("onions-pow-v1\n" || canonical(record without sig and
//! nonce))`; `digest = Argon2id(input || nonce_be8, salt "onions-pow-v1",
//! t=1, m=1 MiB, p=1)`. The work holds when `digest` has at least `work`
//! leading zero bits. Checking costs one Argon2id call; finding costs about
//! `2^work` of them, which is the point.

use sodiumoxide::crypto::hash::sha256;
use sodiumoxide::crypto::pwhash::argon2id13;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Domain separator hashed in front of the record body.
const INPUT_CONTEXT: &[u8] = b"onions-pow-v1\n";
/// The Argon2id salt: `onions-pow-v1` padded with NUL bytes to 16 bytes.
pub const SALT: [u8; 16] = *b"onions-pow-v1\0\0\0";
/// Argon2id passes (`t`).
pub const OPSLIMIT: usize = 1;
/// Argon2id memory in bytes (1 MiB).
pub const MEMLIMIT: usize = 1024 * 1024;
/// Difficulty a claim carries and the Quorum demands unless told otherwise:
/// about 4096 Argon2id calls, a few seconds on a small machine's cores.
pub const DEFAULT_WORK: u64 = 12;

/// The 32-byte value every nonce is tried against.
pub fn input(work_body: &str) -> [u8; 32] {
    let mut state = sha256::State::new();
    state.update(INPUT_CONTEXT);
    state.update(work_body.as_bytes());
    state.finalize().0
}

/// The Argon2id digest of `input || nonce` (nonce as 8 bytes big-endian).
pub fn digest(input: &[u8; 32], nonce: u64) -> [u8; 32] {
    let mut password = [0u8; 40];
    password[..32].copy_from_slice(input);
    password[32..].copy_from_slice(&nonce.to_be_bytes());
    let mut out = [0u8; 32];
    // With fixed, valid parameters and a 1 MiB allocation, libsodium fails
    // only when memory is exhausted, which the process cannot recover from.
    argon2id13::derive_key(
        &mut out,
        &password,
        &argon2id13::Salt(SALT),
        argon2id13::OpsLimit(OPSLIMIT),
        argon2id13::MemLimit(MEMLIMIT),
    )
    .unwrap_or_else(|()| panic!("Argon2id could not allocate {MEMLIMIT} bytes"));
    out
}

/// Leading zero bits of a digest read as a big-endian number.
pub fn leading_zero_bits(digest: &[u8; 32]) -> u32 {
    let mut bits = 0;
    for &byte in digest {
        bits += byte.leading_zeros();
        if byte != 0 {
            break;
        }
    }
    bits
}

/// True when `nonce` proves `work` bits for `input`. Work 0 always holds
/// and costs nothing.
pub fn holds(input: &[u8; 32], nonce: u64, work: u64) -> bool {
    work == 0 || u64::from(leading_zero_bits(&digest(input, nonce))) >= work
}

/// How a search is going, for a progress display.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Nonces tried so far, over all threads.
    pub tries: u64,
    /// Tries a search needs on average (`2^work`).
    pub expected: f64,
    /// Time since the search began.
    pub elapsed: Duration,
}

impl Progress {
    /// Tries per second so far.
    pub fn rate(&self) -> f64 {
        self.tries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Expected seconds until a nonce is found. The search has no memory,
    /// so this is the expected total over the current rate, less what is
    /// already done, and never below a tenth of the expected total.
    pub fn remaining_secs(&self) -> f64 {
        let rate = self.rate().max(1e-9);
        let left = (self.expected - self.tries as f64).max(self.expected / 10.0);
        left / rate
    }
}

/// Finds a nonce that proves `work` bits for `input`, on `threads` threads.
///
/// Calls `report` about every `interval` from the calling thread. Returns
/// the smallest nonce found by the thread that finished first (not
/// necessarily the smallest overall), or `None` if every nonce below 2^53
/// failed, which for `work <= 64` does not happen in practice.
pub fn solve(
    input: &[u8; 32],
    work: u64,
    threads: usize,
    interval: Duration,
    report: &mut dyn FnMut(Progress),
) -> Option<u64> {
    if work == 0 {
        return Some(0);
    }
    let threads = threads.max(1) as u64;
    let found = AtomicU64::new(u64::MAX);
    let done = AtomicBool::new(false);
    let tries = AtomicU64::new(0);
    let start = Instant::now();
    let expected = 2f64.powi(work.min(64) as i32);
    std::thread::scope(|scope| {
        for first in 0..threads {
            let (found, done, tries) = (&found, &done, &tries);
            scope.spawn(move || {
                let mut nonce = first;
                while !done.load(Ordering::Relaxed) && nonce < crate::canonical::INT_LIMIT {
                    tries.fetch_add(1, Ordering::Relaxed);
                    if holds(input, nonce, work) {
                        found.fetch_min(nonce, Ordering::SeqCst);
                        done.store(true, Ordering::SeqCst);
                    }
                    nonce += threads;
                }
                done.store(true, Ordering::SeqCst);
            });
        }
        while !done.load(Ordering::SeqCst) {
            std::thread::sleep(interval.min(Duration::from_millis(50)));
            report(Progress {
                tries: tries.load(Ordering::Relaxed),
                expected,
                elapsed: start.elapsed(),
            });
        }
    });
    let nonce = found.load(Ordering::SeqCst);
    (nonce != u64::MAX).then_some(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_leading_zero_bits() {
        let mut d = [0u8; 32];
        assert_eq!(leading_zero_bits(&d), 256);
        d[1] = 0x10;
        assert_eq!(leading_zero_bits(&d), 11);
        d[0] = 0x80;
        assert_eq!(leading_zero_bits(&d), 0);
    }

    #[test]
    fn solve_finds_a_nonce_that_holds() {
        sodiumoxide::init().unwrap();
        let input = input("{}");
        let nonce = solve(&input, 4, 2, Duration::from_millis(10), &mut |_| {}).unwrap();
        assert!(holds(&input, nonce, 4));
        assert!(leading_zero_bits(&digest(&input, nonce)) >= 4);
    }
}
