//! [`Entry`]: one accepted record as the store keeps it, with the texts
//! the server sends as they are and the leaf hash the tree needs, so that
//! nothing on the way to a reply or a push parses JSON. The value every
//! other part of the store reads and writes.

use crate::merkle::{self, Hash, LeafKey};
use crate::name::RegisteredName;
use crate::record::Record;

/// One accepted record as stored: what the server needs to answer and push
/// without parsing JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The attestation's seq: the record's position in the Quorum's log.
    pub seq: u64,
    /// The record's `expires` (Unix seconds).
    pub expires: u64,
    /// The registered name the record claims: the index key.
    pub name: RegisteredName,
    /// The record's leaf hash at `seq` (PROTOCOL.md §10.2).
    pub leaf: Hash,
    /// Canonical JSON of the record, sent as is.
    pub record: String,
    /// Canonical JSON of the attestation, sent as is.
    pub attestation: String,
}

impl Entry {
    /// The entry of a verified `record` attested at `seq`.
    pub fn new(seq: u64, record: &Record, attestation: String) -> Entry {
        let text = record.canonical();
        let id =
            crate::record::RecordId(sodiumoxide::crypto::hash::sha256::hash(text.as_bytes()).0);
        Entry {
            seq,
            expires: record.expires,
            name: record.name.clone(),
            leaf: merkle::leaf_hash(&LeafKey::of(&record.name), &id, seq),
            record: text,
            attestation,
        }
    }
}
