//! Reproduces every worked example of protocol.md §10 (tests/data/
//! vectors-v2.json) byte for byte: leaf keys and hashes, live sets as of
//! (seq, time), trees and their roots, proofs of presence and absence and
//! the invalid ones, the signed head, equivocation evidence, and whole
//! answers as a client judges them. A property test holds the fast subtree
//! functions against the definitions on random sets.

use onions::attest::Attestation;
use onions::codec::b64_encode;
use onions::head::{Evidence, SignedHead};
use onions::keys::{self, SigningKey};
use onions::lookup::{check_reply, LookupError, Policy, Resolution};
use onions::merkle::{self, Hash, Leaf, LeafKey, PathEnd, Proof, ProofError, Terminal};
use onions::name::LookupName;
use onions::record::{Record, RecordId};
use onions::verify::Verifier;
use onions::wire::Reply;
use serde_json::Value;
use sodiumoxide::base64::{decode, Variant};
use sodiumoxide::crypto::hash::sha256;
use std::collections::BTreeMap;
use testkit::hex;
use testkit::servers::name;

fn vectors() -> Value {
    serde_json::from_str(include_str!("data/vectors-v2.json")).unwrap()
}

fn v1_vectors() -> Value {
    serde_json::from_str(include_str!("data/vectors.json")).unwrap()
}

fn b64_32(text: &Value) -> [u8; 32] {
    onions::codec::b64_decode_exact::<32>(text.as_str().unwrap()).unwrap()
}

/// The Quorum's key, as vectors.json gives its Tor key file.
fn quorum_key() -> SigningKey {
    keys::init().unwrap();
    let file = v1_vectors()["quorum"]["tor_secret_key_file_b64"]
        .as_str()
        .unwrap()
        .to_owned();
    SigningKey::from_tor_file_bytes(&decode(&file, Variant::Original).unwrap()).unwrap()
}

/// A leaf from a vector's `name`, `record_id_b64` and `seq`.
fn leaf_of(v: &Value) -> Leaf {
    Leaf {
        key: LeafKey::of(&name(v["name"].as_str().unwrap())),
        record: RecordId(b64_32(&v["record_id_b64"])),
        seq: v["seq"].as_u64().unwrap(),
    }
}

/// (key, leaf hash) pairs sorted by key, as the subtree functions take.
fn pairs(leaves: &[Leaf]) -> Vec<(LeafKey, Hash)> {
    let mut pairs: Vec<_> = leaves.iter().map(|l| (l.key, l.hash())).collect();
    pairs.sort_by_key(|p| p.0);
    pairs
}

/// The proof of `key` built with the subtree functions from depth 0.
fn path_proof(leaves: &[Leaf], key: &LeafKey) -> Proof {
    let sorted = pairs(leaves);
    let path = merkle::subtree_path(&sorted, 0, key);
    let terminal = match path.end {
        PathEnd::Empty => Some(Terminal::Empty),
        PathEnd::Entry(i) if sorted[i].0 == *key => None,
        PathEnd::Entry(i) => Some(Terminal::Leaf(
            *leaves.iter().find(|l| l.key == sorted[i].0).unwrap(),
        )),
    };
    Proof {
        siblings: path.siblings,
        terminal,
    }
}

#[test]
fn leaf_keys_and_hashes() {
    for v in vectors()["leaf_keys"].as_array().unwrap() {
        let n = name(v["name"].as_str().unwrap());
        let key = LeafKey::of(&n);
        assert_eq!(
            v["key_input"].as_str().unwrap(),
            format!("onions-leaf-key\n{n}")
        );
        assert_eq!(hex(&key.0), v["key_hex"].as_str().unwrap());
        assert_eq!(key.to_base64(), v["key_b64"].as_str().unwrap());
        let leaf = leaf_of(v);
        let mut input = vec![0u8];
        input.extend_from_slice(&key.0);
        input.extend_from_slice(&leaf.record.0);
        input.extend_from_slice(&leaf.seq.to_be_bytes());
        assert_eq!(hex(&input), v["leaf_input_hex"].as_str().unwrap());
        assert_eq!(hex(&leaf.hash()), v["leaf_hash_hex"].as_str().unwrap());
        assert_eq!(
            b64_encode(&leaf.hash()),
            v["leaf_hash_b64"].as_str().unwrap()
        );
    }
}

#[test]
fn live_sets_as_of_seq_and_time() {
    let v = vectors();
    let log: Vec<(u64, Record)> = v["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let seq = e["seq"].as_u64().unwrap();
            let record = Record::from_value(&e["record"]).unwrap();
            let attestation = Attestation::from_value(&e["attestation"]).unwrap();
            assert_eq!((attestation.seq, attestation.record), (seq, record.id()));
            assert!(attestation.signature_holds());
            (seq, record)
        })
        .collect();
    for as_of in v["live_sets"]["as_of"].as_array().unwrap() {
        let (seq, time) = (
            as_of["seq"].as_u64().unwrap(),
            as_of["time"].as_u64().unwrap(),
        );
        let mut newest: BTreeMap<String, (u64, &Record)> = BTreeMap::new();
        for (s, record) in log.iter().filter(|(s, _)| *s <= seq) {
            newest.insert(record.name.to_string(), (*s, record));
        }
        let live: Vec<(String, u64, Leaf)> = newest
            .into_iter()
            .filter(|(_, (_, r))| r.expires > time)
            .map(|(n, (s, r))| {
                let leaf = Leaf {
                    key: LeafKey::of(&r.name),
                    record: r.id(),
                    seq: s,
                };
                (n, s, leaf)
            })
            .collect();
        let mut want: Vec<(String, u64)> = as_of["live"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_owned(),
                    e["seq"].as_u64().unwrap(),
                )
            })
            .collect();
        want.sort();
        let got: Vec<(String, u64)> = live.iter().map(|(n, s, _)| (n.clone(), *s)).collect();
        assert_eq!(got, want, "as of ({seq}, {time})");
        assert_eq!(live.len() as u64, as_of["size"].as_u64().unwrap());
        let leaves: Vec<Leaf> = live.iter().map(|(_, _, l)| *l).collect();
        let root = merkle::reference_root(&leaves);
        assert_eq!(b64_encode(&root), as_of["root_b64"].as_str().unwrap());
        assert_eq!(merkle::subtree_hash(&pairs(&leaves), 0), root);
    }
}

#[test]
fn trees_by_size_and_the_hundred_leaf_tree() {
    let v = vectors();
    for tree in v["trees"]["by_size"].as_array().unwrap() {
        let leaves: Vec<Leaf> = tree["leaves"]
            .as_array()
            .unwrap()
            .iter()
            .map(leaf_of)
            .collect();
        assert_eq!(leaves.len() as u64, tree["size"].as_u64().unwrap());
        let root = merkle::reference_root(&leaves);
        assert_eq!(b64_encode(&root), tree["root_b64"].as_str().unwrap());
        assert_eq!(hex(&root), tree["root_hex"].as_str().unwrap());
        assert_eq!(merkle::subtree_hash(&pairs(&leaves), 0), root);
    }
    let t = &v["tree_100"];
    let derived: Vec<Leaf> = (0..100u64)
        .map(|i| {
            let digest = sha256::hash(format!("onions-vectors-v2 name {i}").as_bytes()).0;
            let n = format!("n{}.tor", &hex(&digest)[..12]);
            let record = sha256::hash(format!("onions-vectors-v2 record {i}").as_bytes()).0;
            Leaf {
                key: LeafKey::of(&name(&n)),
                record: RecordId(record),
                seq: i + 1,
            }
        })
        .collect();
    let listed: Vec<Leaf> = t["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(leaf_of)
        .collect();
    assert_eq!(derived, listed);
    assert_eq!(
        b64_encode(&merkle::reference_root(&derived)),
        t["root_b64"].as_str().unwrap()
    );
    let mut changed: Vec<Leaf> = derived.iter().step_by(2).copied().collect();
    changed[0].record = RecordId(sha256::hash(b"onions-vectors-v2 record 0 updated").0);
    changed[0].seq = 101;
    assert_eq!(
        changed.len() as u64,
        t["after_changes_size"].as_u64().unwrap()
    );
    let root = merkle::reference_root(&changed);
    assert_eq!(
        b64_encode(&root),
        t["after_changes_root_b64"].as_str().unwrap()
    );
    assert_eq!(merkle::subtree_hash(&pairs(&changed), 0), root);
    for (i, leaf) in derived.iter().enumerate() {
        let proof = merkle::reference_proof(&changed, &leaf.key);
        assert_eq!(path_proof(&changed, &leaf.key), proof, "leaf {i}");
        match changed.iter().find(|l| l.key == leaf.key) {
            Some(kept) => proof
                .verify_presence(&kept.key, &kept.record, kept.seq, &root)
                .unwrap(),
            None => proof.verify_absence(&leaf.key, &root).unwrap(),
        }
    }
}

/// The five-leaf tree the proofs are on.
fn five_leaves(v: &Value) -> Vec<Leaf> {
    v["trees"]["by_size"].as_array().unwrap().last().unwrap()["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(leaf_of)
        .collect()
}

#[test]
fn proofs_of_presence_and_absence() {
    let v = vectors();
    let p = &v["proofs"];
    let leaves = five_leaves(&v);
    let root = b64_32(&p["root_b64"]);
    assert_eq!(merkle::reference_root(&leaves), root);
    for case in ["presence", "absence_empty", "absence_leaf"] {
        let c = &p[case];
        let key = LeafKey::of(&name(c["name"].as_str().unwrap()));
        if let Some(k) = c["key_hex"].as_str() {
            assert_eq!(hex(&key.0), k);
        }
        let proof = Proof::from_value(&c["proof"]).unwrap();
        assert_eq!(proof.to_value(), c["proof"], "{case}");
        let mut text = String::new();
        proof.write_json(&mut text);
        assert_eq!(text, c["proof_canonical"].as_str().unwrap(), "{case}");
        assert_eq!(merkle::reference_proof(&leaves, &key), proof, "{case}");
        assert_eq!(path_proof(&leaves, &key), proof, "{case}");
        if case == "presence" {
            let record = RecordId(b64_32(&c["record_id_b64"]));
            let seq = c["seq"].as_u64().unwrap();
            proof.verify_presence(&key, &record, seq, &root).unwrap();
            assert_eq!(
                proof.verify_presence(&key, &RecordId([0; 32]), seq, &root),
                Err(ProofError::RootMismatch)
            );
            assert_eq!(
                proof.verify_absence(&key, &root),
                Err(ProofError::WrongKind)
            );
        } else {
            proof.verify_absence(&key, &root).unwrap();
        }
        if let Some(t) = c["terminal_name"].as_str() {
            let Some(Terminal::Leaf(leaf)) = &proof.terminal else {
                panic!("{case}: a leaf terminal");
            };
            assert_eq!(leaf.key, LeafKey::of(&name(t)));
        }
    }
    for bad in p["invalid"].as_array().unwrap() {
        let why = bad["why"].as_str().unwrap();
        let judged = judge_invalid(bad, &root);
        assert!(judged.is_err(), "not refused: {why}");
        let Some(want) = expected_refusal(why) else {
            continue;
        };
        match (want, judged) {
            ("shape", Err(ProofError::Shape(_))) => {}
            ("root", Err(ProofError::RootMismatch))
            | ("kind", Err(ProofError::WrongKind))
            | ("key", Err(ProofError::NotThisKey)) => {}
            (want, got) => panic!("{why}: wanted {want}, got {got:?}"),
        }
    }
}

/// Parses and checks one of the invalid proofs: for presence when the case
/// gives a record and seq, else for absence.
fn judge_invalid(bad: &Value, root: &Hash) -> Result<(), ProofError> {
    let key = LeafKey::of(&name(bad["name"].as_str().unwrap()));
    let proof = Proof::from_value(&bad["proof"])?;
    match bad.get("record_id_b64") {
        Some(id) => {
            let seq = bad["seq"].as_u64().unwrap();
            proof.verify_presence(&key, &RecordId(b64_32(id)), seq, root)
        }
        None => proof.verify_absence(&key, root),
    }
}

/// Which refusal each invalid proof of the vectors meets (a case added
/// later is only required to be refused).
fn expected_refusal(why: &str) -> Option<&'static str> {
    Some(match why {
        "presence proof checked with the wrong seq" => "root",
        "absence proof whose terminal leaf is the name asked for (it is present)" => "key",
        "absence proof carried one level deeper with an empty sibling" => "root",
        "a sibling in non-canonical Base64" => "shape",
        "presence proof carrying a terminal" => "kind",
        "absence proof with the empty terminal given as 1, not true" => "shape",
        _ => return None,
    })
}

#[test]
fn the_signed_head() {
    let v = vectors();
    let h = &v["head"];
    let head = SignedHead::from_value(&h["head"]).unwrap();
    assert_eq!(head.to_value(), h["head"]);
    assert_eq!(head.canonical(), h["canonical"].as_str().unwrap());
    assert_eq!(
        SignedHead::from_json(h["canonical"].as_str().unwrap()),
        Ok(head.clone())
    );
    assert_eq!(
        String::from_utf8(head.signed_bytes()).unwrap(),
        h["signed_bytes"].as_str().unwrap()
    );
    assert_eq!(b64_encode(&head.id()), h["id_b64"].as_str().unwrap());
    assert_eq!(hex(&head.id()), h["id_hex"].as_str().unwrap());
    assert!(head.signature_holds());
    let key = quorum_key();
    assert_eq!(
        key.public().to_base64(),
        v["quorum_public_key_b64"].as_str().unwrap()
    );
    head.check_trusted(&[key.public()]).unwrap();
    let again = SignedHead::sign(head.seq, head.time, head.size, head.root, &key);
    assert_eq!(
        again, head,
        "signing gives the vector's signature byte for byte"
    );
    assert_eq!(head.root, b64_32(&v["proofs"]["root_b64"]));
    let mut extra = h["head"].clone();
    extra["extra"] = 1.into();
    assert!(SignedHead::from_value(&extra).is_err());
    let mut wrong = h["head"].clone();
    wrong["v"] = 1.into();
    assert!(SignedHead::from_value(&wrong).is_err());
}

#[test]
fn equivocation_evidence() {
    let v = vectors();
    let e = &v["equivocation"];
    let head = SignedHead::from_value(&v["head"]["head"]).unwrap();
    for (case, ids) in [("evidence", true), ("rollback_evidence", false)] {
        let evidence = Evidence::from_value(&e[case]).unwrap_or_else(|err| panic!("{case}: {err}"));
        assert_eq!(evidence.to_value(), e[case], "{case}");
        let [a, b] = evidence.heads.clone();
        assert!(a.conflicts(&b) && b.conflicts(&a), "{case}");
        assert_eq!(
            Evidence::new(b, a),
            Some(evidence.clone()),
            "{case}: ordered by id"
        );
        assert!(
            evidence.heads.contains(&head),
            "{case}: one of the two is the vector's head"
        );
        if ids {
            let got: Vec<String> = evidence.heads.iter().map(|h| b64_encode(&h.id())).collect();
            let want: Vec<&str> = e["ids_b64"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            assert_eq!(got, want);
        }
    }
    assert!(Evidence::from_value(&e["not_evidence"]).is_err());
    let [a, b] = [0, 1].map(|i| SignedHead::from_value(&e["not_evidence"]["heads"][i]).unwrap());
    assert!(!a.conflicts(&b));
    assert_eq!(Evidence::new(a, b), None);
}

/// The answers' heads and proofs alone: each proof is checked against its
/// own head's root (the client's whole check is the next test).
#[test]
fn answers_carry_proofs_against_their_heads() {
    let v = vectors();
    let a = &v["answers"];
    let quorum = quorum_key().public();
    for case in ["found", "not_found", "superseded", "stale_head"] {
        let c = &a[case];
        let reply = &c["reply"];
        let head = SignedHead::from_value(&reply["head"]).unwrap();
        head.check_trusted(&[quorum]).unwrap();
        let proof = Proof::from_value(&reply["proof"]).unwrap();
        let asked = LookupName::parse(c["lookup"].as_str().unwrap()).unwrap();
        let key = LeafKey::of(&asked.registered());
        let judged = match reply["type"].as_str().unwrap() {
            "found" => {
                let record = Record::from_value(&reply["record"]).unwrap();
                let attestation = Attestation::from_value(&reply["attestation"]).unwrap();
                assert_eq!(record.name, asked.registered(), "{case}");
                assert_eq!(attestation.record, record.id(), "{case}");
                proof.verify_presence(&key, &record.id(), attestation.seq, &head.root)
            }
            "not_found" => proof.verify_absence(&key, &head.root),
            other => panic!("{case}: unexpected reply type {other}"),
        };
        match case {
            "superseded" => assert_eq!(judged, Err(ProofError::RootMismatch), "{case}"),
            _ => assert_eq!(judged, Ok(()), "{case}"),
        }
        let now = c["now"].as_u64().or(a["now"].as_u64()).unwrap();
        let stale = now - head.time > a["max_head_age"].as_u64().unwrap();
        assert_eq!(stale, case == "stale_head", "{case}");
    }
}

#[test]
fn whole_answers_as_a_client_judges_them() {
    let v = vectors();
    let a = &v["answers"];
    let policy = Policy {
        verifier: Verifier {
            min_work: a["min_work"].as_u64().unwrap(),
            trusted: vec![quorum_key().public()],
            max_skew: None,
        },
        max_head_age: a["max_head_age"].as_u64().unwrap(),
        witnesses: Default::default(),
    };
    for case in ["found", "not_found", "superseded", "stale_head"] {
        let c = &a[case];
        let now = c["now"].as_u64().or(a["now"].as_u64()).unwrap();
        let line = serde_json::to_vec(&c["reply"]).unwrap();
        let reply = Reply::parse(&line).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&reply.to_line()).unwrap(),
            c["reply"]
        );
        let asked = LookupName::parse(c["lookup"].as_str().unwrap()).unwrap();
        let judged = check_reply(reply, &asked, &policy, now);
        match (c["outcome"].as_str().unwrap(), judged) {
            ("found", Ok(Resolution::Found(answer))) => {
                assert_eq!(answer.record.name, asked.registered());
            }
            ("absent", Ok(Resolution::Absent(head))) => {
                assert_eq!(head, SignedHead::from_value(&c["reply"]["head"]).unwrap());
            }
            ("invalid", Err(e)) if case == "stale_head" => {
                assert!(matches!(e, LookupError::StaleHead { .. }), "{case}: {e}");
            }
            ("invalid", Err(e)) => assert!(e.server_lied(), "{case}: {e}"),
            (outcome, judged) => panic!("{case}: wanted {outcome}, got {judged:?}"),
        }
    }
}

/// A small xorshift generator: the property test needs no other crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Names of the property test: `p<n>.tor` for n below `POOL`, so that some
/// probes hit names in the set and others names outside it.
const POOL: u64 = 600;

fn pool_key(n: u64) -> LeafKey {
    LeafKey::of(&name(&format!("p{n}.tor")))
}

/// One random change to the set: an insert or update (a new record at the
/// next seq), or a delete.
fn change(rng: &mut Rng, set: &mut BTreeMap<u64, Leaf>, seq: &mut u64) {
    let n = rng.below(POOL);
    if rng.below(4) == 0 {
        set.remove(&n);
        return;
    }
    *seq += 1;
    let leaf = Leaf {
        key: pool_key(n),
        record: RecordId(sha256::hash(&rng.next().to_be_bytes()).0),
        seq: *seq,
    };
    set.insert(n, leaf);
}

/// Checks the proof of name `n` both ways, its encoding, that it verifies,
/// and that it proves nothing else.
fn check_probe(set: &BTreeMap<u64, Leaf>, leaves: &[Leaf], root: &Hash, n: u64) {
    let key = pool_key(n);
    let proof = merkle::reference_proof(leaves, &key);
    assert_eq!(path_proof(leaves, &key), proof, "p{n}.tor");
    assert_eq!(Proof::from_value(&proof.to_value()), Ok(proof.clone()));
    let mut text = String::new();
    proof.write_json(&mut text);
    assert_eq!(text, onions::canonical::to_string(&proof.to_value()));
    let other = RecordId([0x5a; 32]);
    match set.get(&n) {
        Some(leaf) => {
            proof
                .verify_presence(&key, &leaf.record, leaf.seq, root)
                .unwrap();
            assert!(proof
                .verify_presence(&key, &leaf.record, leaf.seq + 1, root)
                .is_err());
            assert!(proof.verify_presence(&key, &other, leaf.seq, root).is_err());
            assert!(proof.verify_absence(&key, root).is_err());
        }
        None => {
            proof.verify_absence(&key, root).unwrap();
            assert!(proof.verify_presence(&key, &other, 1, root).is_err());
        }
    }
}

#[test]
fn the_fast_functions_agree_with_the_definitions_on_random_sets() {
    let mut rng = Rng(0x5eed_f00d_1e55_0001);
    for round in 0..30 {
        let mut set: BTreeMap<u64, Leaf> = BTreeMap::new();
        let mut seq = 0;
        let target = rng.below(300) + 1;
        for batch in 0..6 {
            for _ in 0..rng.below(target + 1) {
                change(&mut rng, &mut set, &mut seq);
            }
            while set.len() as u64 > target {
                let first = *set.keys().next().unwrap();
                set.remove(&first);
            }
            let leaves: Vec<Leaf> = set.values().copied().collect();
            let root = merkle::reference_root(&leaves);
            assert_eq!(
                merkle::subtree_hash(&pairs(&leaves), 0),
                root,
                "round {round} batch {batch}"
            );
            for _ in 0..8 {
                check_probe(&set, &leaves, &root, rng.below(POOL));
            }
            if let Some(&n) = set.keys().nth(rng.below(set.len() as u64 + 1) as usize) {
                check_probe(&set, &leaves, &root, n);
            }
        }
    }
}
