//! The cosignatures a server holds (PROTOCOL.md §11): for each of the
//! newest heads, the newest cosignature of each trusted witness, with the
//! list's canonical text ready for answers and pushes.
//!
//! Every server keeps one: the Quorum and mirrors take cosignatures from
//! `cosign` requests and `cosignatures` pushes, a witness adds its own.
//! Only valid cosignatures by trusted witnesses of heads signed by a
//! trusted Quorum key are held, so what a server passes on never carries
//! junk; a verifier still checks everything itself.

use crate::cosign::{Cosignature, Quorate};
use crate::head::SignedHead;
use crate::keys::PublicKey;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Why a cosignature was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The head is not signed by a trusted Quorum key.
    Head(String),
    /// The witness key is not one this server collects (`--trust-witness`).
    Untrusted(String),
    /// The signature does not verify for the head.
    BadSignature,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Head(why) => write!(f, "{why}"),
            Refusal::Untrusted(key) => write!(
                f,
                "witness {key} is not one this server collects (--trust-witness)"
            ),
            Refusal::BadSignature => write!(f, "the cosignature does not verify for this head"),
        }
    }
}

/// What taking a cosignature changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// True when it was new (a witness not yet held, or a newer time):
    /// then the head's list is pushed on.
    pub changed: bool,
    /// Trusted witnesses now held for the head.
    pub count: usize,
}

/// One head and its cosignatures.
#[derive(Debug)]
struct Held {
    head: SignedHead,
    /// One per witness, the newest.
    list: Vec<Cosignature>,
    /// `list`'s canonical JSON.
    text: Arc<str>,
}

/// The held cosignatures of the newest heads.
#[derive(Debug)]
pub struct Book {
    /// Quorum keys whose heads are held.
    quorum: Vec<PublicKey>,
    /// Witness keys collected, and how many make a head servable.
    policy: Quorate,
    /// Heads held at most; the oldest by (seq, time) leaves first.
    capacity: usize,
    /// By the head's canonical JSON, so an answer finds its head's list
    /// from the text it already has.
    heads: HashMap<Arc<str>, Held>,
    /// The empty list, shared by every answer without cosignatures.
    none: Arc<str>,
}

impl Book {
    /// A book of heads signed by `quorum`, collecting cosignatures of
    /// `policy`'s witnesses, holding at most `capacity` heads.
    pub fn new(quorum: Vec<PublicKey>, policy: Quorate, capacity: usize) -> Book {
        Book {
            quorum,
            policy,
            capacity: capacity.max(1),
            heads: HashMap::new(),
            none: Arc::from(""),
        }
    }

    /// How many cosignatures make a head servable (`--witnesses`).
    pub fn needed(&self) -> usize {
        self.policy.needed
    }

    /// Takes one cosignature of `head` after checking it.
    pub fn take(&mut self, head: &SignedHead, cosig: &Cosignature) -> Result<Taken, Refusal> {
        head.check_trusted(&self.quorum)
            .map_err(|e| Refusal::Head(e.to_string()))?;
        if cosig.witness.find_in(&self.policy.trusted).is_none() {
            return Err(Refusal::Untrusted(cosig.witness.to_base64()));
        }
        if !cosig.holds_for(&head.id()) {
            return Err(Refusal::BadSignature);
        }
        let text: Arc<str> = head.canonical().into();
        if !self.heads.contains_key(&text) {
            self.make_room();
        }
        let held = self.heads.entry(text).or_insert_with(|| Held {
            head: head.clone(),
            list: Vec::new(),
            text: "[]".into(),
        });
        let changed = match held.list.iter_mut().find(|c| c.witness == cosig.witness) {
            Some(old) if old.time >= cosig.time => false,
            Some(old) => {
                *old = cosig.clone();
                true
            }
            None => {
                held.list.push(cosig.clone());
                true
            }
        };
        if changed {
            held.text = crate::wire::cosignatures_text(&held.list).into();
        }
        Ok(Taken {
            changed,
            count: held.list.len(),
        })
    }

    /// Takes every cosignature of a pushed list that checks, ignoring the
    /// others; true when any was new.
    pub fn take_all(&mut self, head: &SignedHead, list: &[Cosignature]) -> bool {
        let mut changed = false;
        for cosig in list {
            match self.take(head, cosig) {
                Ok(taken) => changed |= taken.changed,
                Err(e) => log::debug!("cosignature of head seq {} not taken: {e}", head.seq),
            }
        }
        changed
    }

    /// Trusted witnesses held for `head`.
    pub fn count(&self, head: &SignedHead) -> usize {
        self.heads
            .get(head.canonical().as_str())
            .map_or(0, |h| h.list.len())
    }

    /// True when `head` has the cosignatures this server was told to
    /// collect before answering with it.
    pub fn servable(&self, head: &SignedHead) -> bool {
        self.count(head) >= self.policy.needed
    }

    /// True when a head newer than `head` (higher seq, or the same seq at a
    /// later time) has the cosignatures this server collects: waiting for
    /// `head`'s own cannot lead to a newer answer.
    pub fn newer_servable(&self, head: &SignedHead) -> bool {
        self.heads.values().any(|h| {
            (h.head.seq, h.head.time) > (head.seq, head.time) && h.list.len() >= self.policy.needed
        })
    }

    /// The canonical list for the head whose canonical JSON is
    /// `head_text`: what answers carry (empty when none is held).
    pub fn text_for(&self, head_text: &str) -> Arc<str> {
        if self.heads.is_empty() {
            return Arc::clone(&self.none);
        }
        self.heads
            .get(head_text)
            .map_or_else(|| Arc::clone(&self.none), |h| h.text.clone())
    }

    /// The `cosignatures` push line for `head`, if any is held.
    pub fn push_line(&self, head: &SignedHead) -> Option<Vec<u8>> {
        let text = head.canonical();
        let held = self.heads.get(text.as_str())?;
        Some(crate::wire::cosignatures_line(&text, &held.text))
    }

    /// Drops the oldest head when the book is full.
    fn make_room(&mut self) {
        if self.heads.len() < self.capacity {
            return;
        }
        let oldest = self
            .heads
            .iter()
            .min_by_key(|(_, h)| (h.head.seq, h.head.time))
            .map(|(k, _)| k.clone());
        if let Some(key) = oldest {
            self.heads.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    fn quorum() -> SigningKey {
        SigningKey::from_seed(&[1; 32])
    }

    fn head(seq: u64) -> SignedHead {
        SignedHead::sign(seq, 100 + seq, 1, [seq as u8; 32], &quorum())
    }

    fn book(witnesses: &[SigningKey], capacity: usize) -> Book {
        Book::new(
            vec![quorum().public()],
            Quorate {
                trusted: witnesses.iter().map(SigningKey::public).collect(),
                needed: 2,
            },
            capacity,
        )
    }

    #[test]
    fn holds_the_newest_cosignature_per_witness() {
        let w: Vec<SigningKey> = (0..2)
            .map(|i| SigningKey::from_seed(&[i + 5; 32]))
            .collect();
        let mut book = book(&w, 4);
        let h = head(1);
        let first = book.take(&h, &Cosignature::sign(&h, 10, &w[0])).unwrap();
        assert_eq!((first.changed, first.count), (true, 1));
        assert!(!book.servable(&h));
        let older = book.take(&h, &Cosignature::sign(&h, 9, &w[0])).unwrap();
        assert_eq!((older.changed, older.count), (false, 1));
        book.take(&h, &Cosignature::sign(&h, 11, &w[1])).unwrap();
        assert!(book.servable(&h));
        let text = book.text_for(&h.canonical());
        let list = Cosignature::list_from_value(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(&*book.text_for(&head(2).canonical()), "");
    }

    #[test]
    fn refuses_strangers_forgeries_and_foreign_heads() {
        let w = [SigningKey::from_seed(&[5; 32])];
        let mut book = book(&w, 4);
        let h = head(1);
        let stranger = SigningKey::from_seed(&[6; 32]);
        assert!(matches!(
            book.take(&h, &Cosignature::sign(&h, 1, &stranger)),
            Err(Refusal::Untrusted(_))
        ));
        let mut forged = Cosignature::sign(&h, 1, &w[0]);
        forged.time = 2;
        assert_eq!(book.take(&h, &forged), Err(Refusal::BadSignature));
        let foreign = SignedHead::sign(1, 101, 1, [1; 32], &stranger);
        assert!(matches!(
            book.take(&foreign, &Cosignature::sign(&foreign, 1, &w[0])),
            Err(Refusal::Head(_))
        ));
    }

    #[test]
    fn a_newer_head_with_enough_cosignatures_supersedes_older_ones() {
        let w: Vec<SigningKey> = (0..2)
            .map(|i| SigningKey::from_seed(&[i + 5; 32]))
            .collect();
        let mut book = book(&w, 8);
        let (old, new) = (head(1), head(2));
        assert!(!book.newer_servable(&old));
        book.take(&new, &Cosignature::sign(&new, 1, &w[0])).unwrap();
        assert!(!book.newer_servable(&old), "one of two");
        book.take(&new, &Cosignature::sign(&new, 1, &w[1])).unwrap();
        assert!(book.newer_servable(&old));
        assert!(!book.newer_servable(&new), "not newer than itself");
    }

    #[test]
    fn the_oldest_head_leaves_when_full() {
        let w = [SigningKey::from_seed(&[5; 32])];
        let mut book = book(&w, 2);
        for seq in 1..=3 {
            let h = head(seq);
            book.take(&h, &Cosignature::sign(&h, 1, &w[0])).unwrap();
        }
        assert_eq!(book.count(&head(1)), 0);
        assert_eq!(book.count(&head(2)), 1);
        assert_eq!(book.count(&head(3)), 1);
    }
}
