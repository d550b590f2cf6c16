//! The records the benchmarks load servers with: `bench-I.tor`, shaped
//! like PROTOCOL.md's example (one subdomain, a 40-character contact, a
//! week's lifetime), at work 0 so that making them costs only signatures.
//!
//! Names are first come, first served per name, so one owner key may hold
//! many: each key holds [`NAMES_PER_KEY`] consecutive names, and few keys
//! means few key derivations. Each benchmark seeds its owner keys with a
//! tag of its own, so the records of one never collide with another's.

use onions::keys::SigningKey;
use onions::name::{RegisteredName, SubdomainKey};
use onions::onion::OnionAddress;
use onions::record::{Claim, Record};
use onions::wire::{Id, Request};
use std::collections::BTreeMap;
use std::ops::Range;

/// Names one owner key claims.
pub const NAMES_PER_KEY: usize = 1024;

/// Signs records `bench-I.tor` for a benchmark.
#[derive(Clone)]
pub struct Maker {
    www: OnionAddress,
    now: u64,
    seed_tag: [u8; 24],
}

impl Maker {
    /// A maker whose owner keys are seeded with the owner's number, then
    /// `seed_tag`; records are issued as of now.
    pub fn new(seed_tag: &[u8; 24]) -> Maker {
        Maker {
            www: OnionAddress::from_key(SigningKey::from_seed(&[3; 32]).public()),
            now: onions::clock::now(),
            seed_tag: *seed_tag,
        }
    }

    /// The time the records are made as of, Unix seconds.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The registered name of record `i`.
    pub fn name(i: usize) -> String {
        format!("bench-{i}.tor")
    }

    /// The key owning record `i`.
    pub fn owner(&self, i: usize) -> SigningKey {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&((i / NAMES_PER_KEY) as u64).to_le_bytes());
        seed[8..].copy_from_slice(&self.seed_tag);
        SigningKey::from_seed(&seed)
    }

    /// Record `i`, signed by `key` (its [`Maker::owner`]).
    pub fn record(&self, i: usize, key: &SigningKey) -> Record {
        self.renewal(i, key, 1)
    }

    /// Record `i` at `serial`: with a serial above 1, a renewal of
    /// [`Maker::record`] by the same owner.
    pub fn renewal(&self, i: usize, key: &SigningKey, serial: u64) -> Record {
        let name = RegisteredName::parse(&Maker::name(i)).expect("a valid name");
        let sub = SubdomainKey::parse("www", &name).expect("www is a valid subdomain");
        let claim = Claim {
            name,
            subdomains: BTreeMap::from([(sub, self.www)]),
            contact: "0123456789ABCDEF0123456789ABCDEF01234567".into(),
            serial,
            issued: self.now - 60,
            expires: self.now + 7 * 24 * 60 * 60,
            work: 0,
        };
        // Work 0 holds for any nonce, so the nonce stays 0.
        let mut record = Record::from_claim(claim, key);
        record.sign_with(key);
        record
    }

    /// The put line (newline included) of record `i`, its request id `i`.
    pub fn put_line(i: usize, record: &Record) -> Vec<u8> {
        Request::Put {
            id: Id::Number(i as u64),
            record: record.to_value(),
        }
        .to_line()
    }

    /// Put lines of the records in `range`, in order, on this thread,
    /// deriving each owner key once.
    pub fn put_lines(&self, range: Range<usize>) -> Vec<Vec<u8>> {
        let mut key: Option<(usize, SigningKey)> = None;
        range
            .map(|i| {
                let owner = i / NAMES_PER_KEY;
                if key.as_ref().is_none_or(|(o, _)| *o != owner) {
                    key = Some((owner, self.owner(i)));
                }
                let (_, key) = key.as_ref().expect("set above");
                Maker::put_line(i, &self.record(i, key))
            })
            .collect()
    }
}
