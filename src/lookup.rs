//! Asking a server for a name and deciding whether to believe the answer.
//!
//! Used by `onions-hs lookup` and the client daemon alike, so the rules of
//! PROTOCOL.md §9 and §10.7 live in one place: [`lookup`] and
//! [`check_reply`] never return an unverified [`Resolution`]. Every answer
//! carries a head signed by a trusted Quorum key, fresh enough, and a proof
//! against its root: "found" with a presence proof of the very record and
//! seq, "not registered" only with an absence proof. With witnesses
//! required (§11.5), the head must also carry enough valid cosignatures by
//! trusted witnesses, and freshness is judged by their time.
//!
//! A reverse lookup ([`reverse()`], PROTOCOL.md §12.5) asks which names
//! point at an onion and confirms every name listed with such a lookup;
//! see [`reverse`](mod@reverse).

use crate::attest::Attestation;
use crate::cosign::{CosignError, Cosignature, Quorate};
use crate::head::SignedHead;
use crate::keys::KeyBytes;
use crate::merkle::{LeafKey, Proof};
use crate::name::LookupName;
use crate::onion::OnionAddress;
use crate::record::Record;
use crate::transport::{self, Endpoint, RequestError, Route};
use crate::verify::Verifier;
use crate::wire::{Id, Reply, Request, WireError};
use std::fmt;
use std::time::Duration;

pub mod reverse;
pub use reverse::{check_names, confirm, reverse, Confirmed, Listed, Pointing, Refusal, Refused};

/// How far ahead of the client's clock a head's time may be, in seconds
/// (PROTOCOL.md §10.7).
pub const HEAD_MAX_SKEW: u64 = 600;

/// The default `max_head_age`, in seconds (PROTOCOL.md §10.7).
pub const DEFAULT_MAX_HEAD_AGE: u64 = 600;

/// What an answer must pass: the checks on records and attestations, and
/// the oldest head accepted.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Record, attestation and trusted Quorum keys (heads are checked
    /// against the same keys).
    pub verifier: Verifier,
    /// Oldest head accepted, in seconds before now (with witnesses: the
    /// oldest k-th newest cosignature).
    pub max_head_age: u64,
    /// Trusted witnesses and how many must have cosigned each head
    /// (PROTOCOL.md §11.5); none by default.
    pub witnesses: Quorate,
}

/// A verified record for a lookup name.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The live record of the registered name.
    pub record: Record,
    /// The Quorum's attestation of it.
    pub attestation: Attestation,
    /// Where the looked-up name points: the subdomain's address, or the
    /// owner's for the bare name.
    pub target: OnionAddress,
    /// The head the answer was proven against.
    pub head: SignedHead,
    /// The time the answer is fresh as of: the head's time, or with
    /// witnesses required the k-th newest trusted cosignature's. A cache
    /// keeps the answer while this is younger than `max_head_age`.
    pub fresh_as_of: u64,
}

/// What a verified answer says about a name.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// The name points to the answer's target.
    Found(Answer),
    /// The name is not registered: an absence proof against this head.
    Absent(SignedHead),
    /// The name's record expired after the head was signed: the name does
    /// not resolve, and the server is not at fault.
    Expired(Answer),
}

impl Resolution {
    /// The head the answer was proven against.
    pub fn head(&self) -> &SignedHead {
        match self {
            Resolution::Found(a) | Resolution::Expired(a) => &a.head,
            Resolution::Absent(head) => head,
        }
    }
}

/// Why a lookup gave no usable answer.
#[derive(Debug)]
pub enum LookupError {
    /// The server could not be asked, or its reply was unreadable.
    Request(RequestError),
    /// The server refused (busy, no head yet, internal error).
    Refused(WireError),
    /// The answer's head is older than the policy allows: the server is
    /// behind, not lying.
    StaleHead {
        /// The head's time, or with witnesses the k-th newest cosignature's.
        time: u64,
        /// The client's clock.
        now: u64,
        /// True when `time` is a cosignature's.
        cosigned: bool,
    },
    /// The answer's head is from the future by more than the allowed skew:
    /// a clock is wrong somewhere.
    FutureHead {
        /// The head's time, or with witnesses the k-th newest cosignature's.
        time: u64,
        /// The client's clock.
        now: u64,
        /// True when `time` is a cosignature's.
        cosigned: bool,
    },
    /// The head lacks the cosignatures the policy requires: the server is
    /// behind or cut off from the witnesses, not lying.
    TooFewCosignatures(CosignError),
    /// The answer failed verification: the server is lying or broken.
    Forged(String),
    /// The answer is a valid record for another name: the server is lying.
    WrongName(String),
    /// The record is genuine but has no such subdomain.
    NoSubdomain(String),
    /// The server answered a lookup with another kind of reply.
    Unexpected(&'static str),
}

impl LookupError {
    /// True when the server gave an answer no honest server would give, so
    /// a client should stop asking it for a while.
    pub fn server_lied(&self) -> bool {
        matches!(
            self,
            LookupError::Forged(_)
                | LookupError::WrongName(_)
                | LookupError::Unexpected(_)
                | LookupError::Request(RequestError::Malformed(_))
        )
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::Request(e) => e.fmt(f),
            LookupError::Refused(e) => write!(f, "refused ({}): {}", e.code, e.message),
            LookupError::StaleHead {
                time,
                now,
                cosigned: false,
            } => write!(
                f,
                "the server is behind: its head is {} s old (--max-head-age)",
                now.saturating_sub(*time)
            ),
            LookupError::StaleHead {
                time,
                now,
                cosigned: true,
            } => write!(
                f,
                "the server is behind or its witnesses are away: the head's cosignatures by the --witnesses trusted witnesses required are {} s old (--max-head-age)",
                now.saturating_sub(*time)
            ),
            LookupError::FutureHead {
                time,
                now,
                cosigned,
            } => write!(
                f,
                "the answer's {} {} s ahead of this clock; check the time here",
                if *cosigned {
                    "head's cosignatures are"
                } else {
                    "head is"
                },
                time.saturating_sub(*now)
            ),
            LookupError::TooFewCosignatures(e) => {
                write!(f, "the server is behind or cut off from the witnesses: {e}")
            }
            LookupError::Forged(why) => write!(f, "answer failed verification: {why}"),
            LookupError::WrongName(name) => {
                write!(f, "answer is a record for {name}, not the name asked")
            }
            LookupError::NoSubdomain(sub) => write!(f, "the record has no subdomain {sub:?}"),
            LookupError::Unexpected(kind) => write!(f, "answered a lookup with {kind}"),
        }
    }
}

impl std::error::Error for LookupError {}

/// Looks `name` up on `server` and verifies the answer at time `now`,
/// waiting at most `timeout` for each step.
pub fn lookup(
    server: &Endpoint,
    route: Route,
    name: &LookupName,
    policy: &Policy,
    now: u64,
    timeout: Duration,
) -> Result<Resolution, LookupError> {
    let message = Request::Lookup {
        id: Id::Number(1),
        name: name.clone(),
    };
    let reply =
        transport::request(server, route, &message, timeout).map_err(LookupError::Request)?;
    check_reply(reply, name, policy, now)
}

/// Verifies a reply to a lookup of `name` (PROTOCOL.md §9, §10.7).
pub fn check_reply(
    reply: Reply,
    name: &LookupName,
    policy: &Policy,
    now: u64,
) -> Result<Resolution, LookupError> {
    match reply {
        Reply::Found {
            record,
            attestation,
            head,
            proof,
            cosignatures,
            ..
        } => {
            let fresh_as_of = check_head(&head, &cosignatures, policy, now)?;
            let answer = check_found(
                record,
                attestation,
                (head, fresh_as_of),
                &proof,
                name,
                policy,
            )?;
            Ok(if answer.record.expires > now {
                Resolution::Found(answer)
            } else {
                Resolution::Expired(answer)
            })
        }
        Reply::NotFound {
            head,
            proof,
            cosignatures,
            ..
        } => {
            check_head(&head, &cosignatures, policy, now)?;
            let key = LeafKey::of(&name.registered());
            proof
                .verify_absence(&key, &head.root)
                .map_err(|e| LookupError::Forged(format!("absence proof: {e}")))?;
            Ok(Resolution::Absent(head))
        }
        Reply::Error(e) => Err(LookupError::Refused(e)),
        other => Err(LookupError::Unexpected(other.kind())),
    }
}

/// The head is signed by a trusted key, cosigned as the policy requires,
/// and fresh (§10.7, 1–2; §11.5): by its own time, or with witnesses by
/// the time of the k-th newest trusted cosignature. Returns the time the
/// answer is fresh as of.
fn check_head(
    head: &SignedHead,
    cosignatures: &[Cosignature],
    policy: &Policy,
    now: u64,
) -> Result<u64, LookupError> {
    head.check_trusted(&policy.verifier.trusted)
        .map_err(|e| LookupError::Forged(format!("head: {e}")))?;
    let cosigned = policy
        .witnesses
        .check(&head.id(), cosignatures)
        .map_err(LookupError::TooFewCosignatures)?;
    let time = cosigned.unwrap_or(head.time);
    let cosigned = cosigned.is_some();
    if time > now.saturating_add(HEAD_MAX_SKEW) {
        return Err(LookupError::FutureHead {
            time,
            now,
            cosigned,
        });
    }
    if time < now.saturating_sub(policy.max_head_age) {
        return Err(LookupError::StaleHead {
            time,
            now,
            cosigned,
        });
    }
    Ok(time)
}

/// The record, attestation and presence proof against the head (§9,
/// §10.7, 3), then the name and subdomain. The head comes with the time
/// [`check_head`] found it fresh as of.
fn check_found(
    record: Record,
    attestation: Attestation,
    (head, fresh_as_of): (SignedHead, u64),
    proof: &Proof,
    name: &LookupName,
    policy: &Policy,
) -> Result<Answer, LookupError> {
    policy
        .verifier
        .check_answer(&record, &attestation, head.time)
        .map_err(|e| LookupError::Forged(e.to_string()))?;
    if record.name != name.registered() {
        return Err(LookupError::WrongName(record.name.to_string()));
    }
    if attestation.seq > head.seq {
        return Err(LookupError::Forged(format!(
            "attested at seq {}, after the head's seq {}",
            attestation.seq, head.seq
        )));
    }
    proof
        .verify_presence(
            &LeafKey::of(&record.name),
            &record.id(),
            attestation.seq,
            &head.root,
        )
        .map_err(|e| LookupError::Forged(format!("presence proof: {e}")))?;
    let target = match name.subdomain() {
        None => record.onion,
        Some(sub) => *record
            .subdomains
            .get(&sub)
            .ok_or_else(|| LookupError::NoSubdomain(sub.to_string()))?,
    };
    Ok(Answer {
        record,
        attestation,
        target,
        head,
        fresh_as_of,
    })
}

/// How an answer's head stands with the witnesses a policy trusts, for
/// showing next to the answer (`onions-hs lookup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Witnessed {
    /// Valid cosignatures by distinct trusted witnesses on the head.
    pub valid: usize,
    /// How many the policy requires.
    pub needed: usize,
    /// The time of the needed-th newest of them: what the answer is fresh
    /// as of.
    pub fresh_as_of: u64,
}

impl Witnessed {
    /// What the cosignatures of a `found` or `not_found` reply amount to
    /// under `witnesses`; `None` when none are required, when they fall
    /// short, or for any other reply. It says nothing of the rest of the
    /// answer: [`check_reply`] decides whether to believe it.
    pub fn of_reply(reply: &Reply, witnesses: &Quorate) -> Option<Witnessed> {
        let (Reply::Found {
            head, cosignatures, ..
        }
        | Reply::NotFound {
            head, cosignatures, ..
        }) = reply
        else {
            return None;
        };
        let id = head.id();
        let fresh_as_of = witnesses.check(&id, cosignatures).ok()??;
        let mut cosigners: Vec<KeyBytes> = Vec::new();
        for cosig in cosignatures {
            let counts = cosig.witness.find_in(&witnesses.trusted).is_some()
                && !cosigners.contains(&cosig.witness)
                && cosig.holds_for(&id);
            if counts {
                cosigners.push(cosig.witness);
            }
        }
        Some(Witnessed {
            valid: cosigners.len(),
            needed: witnesses.needed,
            fresh_as_of,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;
    use crate::merkle::{reference_proof, reference_root, Leaf};
    use crate::name::RegisteredName;
    use crate::record::Claim;
    use std::collections::BTreeMap;

    const NOW: u64 = 1_800_000_000;

    fn quorum() -> SigningKey {
        SigningKey::from_seed(&[1; 32])
    }

    fn witness(n: u8) -> SigningKey {
        SigningKey::from_seed(&[n + 10; 32])
    }

    /// Trusts the Quorum and witnesses 0, 1 and 2, requiring `needed`.
    fn policy(needed: usize) -> Policy {
        Policy {
            verifier: Verifier {
                trusted: vec![quorum().public()],
                ..Verifier::default()
            },
            max_head_age: DEFAULT_MAX_HEAD_AGE,
            witnesses: Quorate {
                trusted: (0..3).map(|n| witness(n).public()).collect(),
                needed,
            },
        }
    }

    fn name() -> LookupName {
        LookupName::from_user("example.tor").unwrap()
    }

    /// A `not_found` for example.tor against an empty tree, its head signed
    /// at `time`, with `cosignatures`.
    fn absent(time: u64, cosignatures: Vec<Cosignature>) -> Reply {
        let proof = reference_proof(&[], &LeafKey::of(&name().registered()));
        Reply::NotFound {
            id: Id::Number(1),
            head: empty_head(time),
            proof,
            cosignatures,
        }
    }

    fn empty_head(time: u64) -> SignedHead {
        SignedHead::sign(0, time, 0, reference_root(&[]), &quorum())
    }

    /// A `found` for example.tor, the only name, its head signed at `time`,
    /// cosigned by witness `n` at `t` for every `(n, t)` of `cosigners`.
    fn found(time: u64, cosigners: &[(u8, u64)]) -> Reply {
        let owner = SigningKey::from_seed(&[5; 32]);
        let claim = Claim {
            name: RegisteredName::parse("example.tor").unwrap(),
            subdomains: BTreeMap::new(),
            contact: String::new(),
            serial: 1,
            issued: time - 100,
            expires: NOW + 86_400,
            work: 0,
        };
        let mut record = Record::from_claim(claim, &owner);
        record.sign_with(&owner);
        let attestation = Attestation::sign(record.id(), 1, time - 100, &quorum());
        let leaf = Leaf {
            key: LeafKey::of(&record.name),
            record: record.id(),
            seq: 1,
        };
        let head = SignedHead::sign(1, time, 1, reference_root(&[leaf]), &quorum());
        let cosignatures = cosigned(&head, cosigners);
        Reply::Found {
            id: Id::Number(1),
            proof: reference_proof(&[leaf], &leaf.key),
            record,
            attestation,
            head,
            cosignatures,
        }
    }

    fn cosigned(head: &SignedHead, cosigners: &[(u8, u64)]) -> Vec<Cosignature> {
        cosigners
            .iter()
            .map(|(n, t)| Cosignature::sign(head, *t, &witness(*n)))
            .collect()
    }

    fn check(reply: Reply, needed: usize) -> Result<Resolution, LookupError> {
        check_reply(reply, &name(), &policy(needed), NOW)
    }

    #[test]
    fn enough_cosignatures_are_accepted() {
        let head = empty_head(NOW - 5);
        let reply = absent(NOW - 5, cosigned(&head, &[(0, NOW - 2), (2, NOW - 1)]));
        assert_eq!(
            Witnessed::of_reply(&reply, &policy(2).witnesses),
            Some(Witnessed {
                valid: 2,
                needed: 2,
                fresh_as_of: NOW - 2
            })
        );
        assert!(matches!(check(reply, 2), Ok(Resolution::Absent(_))));
        let reply = found(NOW - 5, &[(0, NOW - 3), (1, NOW - 1), (2, NOW - 2)]);
        let Ok(Resolution::Found(answer)) = check(reply, 2) else {
            panic!("two of three trusted cosignatures are enough");
        };
        assert_eq!(answer.fresh_as_of, NOW - 2, "the 2nd newest cosignature");
    }

    #[test]
    fn too_few_cosignatures_are_refused_and_not_a_lie() {
        let head = empty_head(NOW);
        let reply = absent(NOW, cosigned(&head, &[(1, NOW)]));
        assert_eq!(Witnessed::of_reply(&reply, &policy(2).witnesses), None);
        let err = check(reply, 2).unwrap_err();
        assert!(
            matches!(
                &err,
                LookupError::TooFewCosignatures(CosignError::TooFew {
                    valid: 1,
                    needed: 2
                })
            ),
            "{err:?}"
        );
        assert!(
            !err.server_lied(),
            "a mirror short of cosignatures is behind"
        );
        let text = err.to_string();
        for part in ["1 valid", "2 are required", "--witnesses"] {
            assert!(text.contains(part), "{text}");
        }
        let bare = check(found(NOW, &[]), 1).unwrap_err();
        assert!(
            matches!(bare, LookupError::TooFewCosignatures(_)),
            "{bare:?}"
        );
    }

    #[test]
    fn untrusted_or_forged_cosignatures_do_not_count() {
        let head = empty_head(NOW);
        let mut cosignatures = cosigned(&head, &[(0, NOW), (7, NOW)]);
        let mut forged = Cosignature::sign(&head, NOW, &witness(1));
        forged.time -= 1;
        cosignatures.push(forged);
        let other = empty_head(NOW - 1);
        cosignatures.push(Cosignature::sign(&other, NOW, &witness(2)));
        cosignatures.push(Cosignature::sign(&head, NOW - 9, &witness(0)));
        let err = check(absent(NOW, cosignatures), 2).unwrap_err();
        assert!(
            matches!(
                err,
                LookupError::TooFewCosignatures(CosignError::TooFew { valid: 1, .. })
            ),
            "only witness 0 counts, once: {err:?}"
        );
    }

    #[test]
    fn freshness_is_judged_by_the_kth_newest_cosignature() {
        let old = NOW - 10 * DEFAULT_MAX_HEAD_AGE;
        let reply = found(old, &[(0, NOW - 1), (1, NOW - 30), (2, old)]);
        let Ok(Resolution::Found(answer)) = check(reply, 2) else {
            panic!("an old head with fresh cosignatures is fresh");
        };
        assert_eq!(answer.fresh_as_of, NOW - 30);

        let reply = found(NOW, &[(0, NOW - 1), (1, old), (2, old)]);
        let err = check(reply, 2).unwrap_err();
        assert!(
            matches!(err, LookupError::StaleHead { time, cosigned: true, .. } if time == old),
            "a fresh head with old cosignatures is stale: {err:?}"
        );
        assert!(!err.server_lied());
        assert!(err.to_string().contains("cosignatures"), "{err}");

        let ahead = NOW + 2 * HEAD_MAX_SKEW;
        let err = check(found(NOW, &[(0, ahead), (1, ahead)]), 2).unwrap_err();
        assert!(
            matches!(err, LookupError::FutureHead { cosigned: true, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn without_witnesses_the_head_time_decides_and_cosignatures_are_ignored() {
        let old = NOW - 10 * DEFAULT_MAX_HEAD_AGE;
        let err = check(found(old, &[(0, NOW), (1, NOW)]), 0).unwrap_err();
        assert!(
            matches!(
                err,
                LookupError::StaleHead {
                    cosigned: false,
                    ..
                }
            ),
            "{err:?}"
        );
        let reply = found(NOW - 5, &[]);
        assert_eq!(Witnessed::of_reply(&reply, &policy(0).witnesses), None);
        let Ok(Resolution::Found(answer)) = check(reply, 0) else {
            panic!("a fresh head needs no cosignature when none is required");
        };
        assert_eq!(answer.fresh_as_of, NOW - 5);
    }
}
