//! [`Entry`]: one accepted record as the store keeps it, with the texts
//! the server sends as they are and the leaf hash the tree needs, so that
//! nothing on the way to a reply or a push parses JSON. The value every
//! other part of the store reads and writes.

use crate::merkle::{self, Hash, LeafKey};
use crate::name::RegisteredName;
use crate::record::{Record, Spelled};

/// One accepted record as stored: what the server needs to answer and push
/// without parsing JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The attestation's seq: the record's position in the Quorum's log.
    pub seq: u64,
    /// The record's `expires` (Unix seconds): until then the record holds
    /// its name at the Quorum.
    pub expires: u64,
    /// True for a release (PROTOCOL.md §12.3): it holds the name but is
    /// never in the live set.
    pub release: bool,
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
    /// When the entry leaves the live set of §10.1: its `expires`, or 0 for
    /// a release, which is never in it.
    pub fn live_until(&self) -> u64 {
        live_until(self.expires, self.release)
    }

    /// The entry of a verified `record` attested at `seq`.
    pub fn new(seq: u64, record: &Record, attestation: String) -> Entry {
        Entry::spelled(seq, record, record.spell(), attestation)
    }

    /// [`Entry::new`] for a caller that has spelled the record already
    /// (verification did: the Quorum's workers, a mirror's checks), so it
    /// is not spelled again.
    pub fn spelled(seq: u64, record: &Record, spelled: Spelled, attestation: String) -> Entry {
        let id = spelled.id();
        Entry {
            seq,
            expires: record.expires,
            release: record.release,
            name: record.name.clone(),
            leaf: merkle::leaf_hash(&LeafKey::of(&record.name), &id, seq),
            record: spelled.into_text(),
            attestation,
        }
    }
}

/// When an entry expiring at `expires` leaves the live set: a release
/// (PROTOCOL.md §12.3) never enters it.
pub(super) fn live_until(expires: u64, release: bool) -> u64 {
    if release {
        0
    } else {
        expires
    }
}
