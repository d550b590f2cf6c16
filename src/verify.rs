//! Verification (PROTOCOL.md §9): the one place that decides whether a
//! record, or a record with its attestation, may be used.
//!
//! Every path that accepts a record (the Quorum's `put`, a mirror's
//! replication, the client's answers, `onions-hs verify`) calls
//! [`Verifier::check_record`] or [`Verifier::check_answer`], or a variant
//! of the same checks that hands back the record's canonical JSON for a
//! server to store ([`Verifier::check_and_spell`],
//! [`Verifier::check_replica`]), so it is built once. Checks run
//! cheapest first, so garbage costs little: shape, lifetime and size, then
//! expiry and the minimum work, then the signature, then the Argon2id proof.

use crate::attest::{AttestError, Attestation};
use crate::canonical;
use crate::keys::PublicKey;
use crate::record::{
    Record, RecordError, RecordId, Spelled, MAX_CONTACT_LEN, MAX_LIFETIME, MAX_RECORD_BYTES,
    MAX_SUBDOMAINS, MAX_WORK,
};
use crate::work;
use std::fmt;

/// How far ahead of the Quorum's clock a record's `issued` may be, in seconds.
pub const QUORUM_MAX_SKEW: u64 = 600;

/// Why a record with its attestation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The record broke a rule.
    Record(RecordError),
    /// The attestation broke a rule.
    Attestation(AttestError),
}

impl VerifyError {
    /// The protocol's error code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Record(e) => e.code(),
            VerifyError::Attestation(e) => e.code(),
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Record(e) => e.fmt(f),
            VerifyError::Attestation(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for VerifyError {}

impl From<RecordError> for VerifyError {
    fn from(e: RecordError) -> Self {
        VerifyError::Record(e)
    }
}

impl From<AttestError> for VerifyError {
    fn from(e: AttestError) -> Self {
        VerifyError::Attestation(e)
    }
}

/// A verifier's policy: the minimum work, the trusted Quorum keys, and
/// (at the Quorum only) how far in the future `issued` may be.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    /// Least proof-of-work difficulty accepted, in bits.
    pub min_work: u64,
    /// Quorum keys whose attestations are trusted.
    pub trusted: Vec<PublicKey>,
    /// At the Quorum, the largest allowed `issued - now`; `None` elsewhere,
    /// since a replica must accept what the Quorum accepted.
    pub max_skew: Option<u64>,
}

impl Verifier {
    /// Checks every rule of a record at time `now` (Unix seconds).
    pub fn check_record(&self, record: &Record, now: u64) -> Result<(), RecordError> {
        self.check_sized(record, || record.canonical().len(), now)
    }

    /// [`Verifier::check_record`] for a server that stores the record:
    /// hands back its canonical JSON and id, built once, when the size rule
    /// asks for them (after the cheaper rules).
    pub fn check_and_spell(&self, record: &Record, now: u64) -> Result<Spelled, RecordError> {
        let mut spelled = None;
        self.check_sized(record, || spelled.insert(record.spell()).text().len(), now)?;
        // The size rule is asked on every path that passes; spelling here
        // is only a guard, never a second spelling.
        Ok(spelled.unwrap_or_else(|| record.spell()))
    }

    /// The checks of [`Verifier::check_record`]; `size` gives the length
    /// of the record's canonical JSON, asked for only once the cheaper
    /// rules hold, so a record that breaks one is never spelled.
    fn check_sized(
        &self,
        record: &Record,
        size: impl FnOnce() -> usize,
        now: u64,
    ) -> Result<(), RecordError> {
        static_rules(record, size)?;
        if now >= record.expires {
            return Err(RecordError::Expired {
                expires: record.expires,
                now,
            });
        }
        if let Some(skew) = self.max_skew {
            if record.issued > now.saturating_add(skew) {
                return Err(RecordError::IssuedInFuture {
                    issued: record.issued,
                    now,
                });
            }
        }
        if record.work < self.min_work {
            return Err(RecordError::WorkBelowMinimum {
                work: record.work,
                min: self.min_work,
            });
        }
        if !record
            .onion
            .key()
            .verify(&record.signed_bytes(), &record.sig)
        {
            return Err(RecordError::BadSignature);
        }
        if let Some(transfer) = &record.transfer {
            transfer.check_signature().map_err(RecordError::Transfer)?;
        }
        // Work 0 always holds; skip building its input.
        if record.work > 0
            && !work::holds(&work::input(&record.work_body()), record.nonce, record.work)
        {
            return Err(RecordError::WorkNotDone(record.work));
        }
        Ok(())
    }

    /// Checks a record and the attestation that came with it: every record
    /// rule, that the attestation names this record, and that a trusted
    /// Quorum key signed it.
    pub fn check_answer(
        &self,
        record: &Record,
        attestation: &Attestation,
        now: u64,
    ) -> Result<(), VerifyError> {
        let spelled = record.spell();
        self.check_binding(spelled.id(), attestation)?;
        self.check_sized(record, || spelled.text().len(), now)?;
        Ok(())
    }

    /// Checks a record pushed to a mirror and its attestation: every rule
    /// but expiry, since a mirror stores a record that has expired
    /// (PROTOCOL.md §9, §10.8: it may supersede one the mirror holds).
    /// Returns the record spelled, as the mirror stores it.
    pub fn check_replica(
        &self,
        record: &Record,
        attestation: &Attestation,
    ) -> Result<Spelled, VerifyError> {
        let spelled = record.spell();
        self.check_binding(spelled.id(), attestation)?;
        self.check_sized(record, || spelled.text().len(), record.issued)?;
        Ok(spelled)
    }

    /// Checks only the attestation's binding to `record` and its signature.
    pub fn check_attestation(
        &self,
        record: &Record,
        attestation: &Attestation,
    ) -> Result<(), AttestError> {
        self.check_binding(record.id(), attestation)
    }

    /// Checks only the attestation's binding to the record whose id is
    /// `record` and its signature.
    fn check_binding(
        &self,
        record: RecordId,
        attestation: &Attestation,
    ) -> Result<(), AttestError> {
        let Some(key) = attestation.quorum.find_in(&self.trusted) else {
            return Err(AttestError::UntrustedKey(attestation.quorum.to_base64()));
        };
        if attestation.record != record {
            return Err(AttestError::WrongRecord);
        }
        if !key.verify(&attestation.signed_bytes(), &attestation.sig) {
            return Err(AttestError::BadSignature);
        }
        Ok(())
    }
}

/// The static rules of a release and of a transfer statement (PROTOCOL.md
/// §12.2–12.3): a release names no subdomains; a statement fits the record.
fn check_life_rules(record: &Record) -> Result<(), RecordError> {
    if record.release && !record.subdomains.is_empty() {
        return Err(RecordError::ReleaseSubdomains);
    }
    if let Some(transfer) = &record.transfer {
        transfer
            .check_in(&record.name, &record.onion, record.serial)
            .map_err(RecordError::Transfer)?;
    }
    Ok(())
}

/// Rules that need neither a clock nor cryptography. Also used before
/// signing and working, so a record that could never verify fails before
/// minutes of proof of work are spent on it.
pub fn check_static_rules(record: &Record) -> Result<(), RecordError> {
    static_rules(record, || record.canonical().len())
}

/// [`check_static_rules`], with `size` giving the length of the record's
/// canonical JSON, asked for last.
fn static_rules(record: &Record, size: impl FnOnce() -> usize) -> Result<(), RecordError> {
    if record.serial == 0 {
        return Err(RecordError::Serial);
    }
    if record.subdomains.len() > MAX_SUBDOMAINS {
        return Err(RecordError::TooManySubdomains(record.subdomains.len()));
    }
    if record.contact.len() > MAX_CONTACT_LEN || !canonical::is_printable_ascii(&record.contact) {
        return Err(RecordError::Contact);
    }
    for (name, value) in [
        ("serial", record.serial),
        ("issued", record.issued),
        ("expires", record.expires),
        ("nonce", record.nonce),
    ] {
        if value >= canonical::INT_LIMIT {
            return Err(RecordError::Shape(format!("{name} must be below 2^53")));
        }
    }
    if record.expires <= record.issued || record.expires - record.issued > MAX_LIFETIME {
        return Err(RecordError::Lifetime {
            issued: record.issued,
            expires: record.expires,
        });
    }
    if record.work > MAX_WORK {
        return Err(RecordError::WorkRange(record.work));
    }
    check_life_rules(record)?;
    let size = size();
    if size > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge(size));
    }
    Ok(())
}
