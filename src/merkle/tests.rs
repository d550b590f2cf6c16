//! Tests of the tree's arithmetic: key bits, the fast and the reference
//! roots and proofs agreeing, small sets, subtrees below the root, the
//! checks of absence terminals, and strict parsing.

use super::*;
use crate::canonical::INT_LIMIT;
use serde_json::json;

fn leaf(i: u8) -> Leaf {
    Leaf {
        key: LeafKey(sha256::hash(&[i]).0),
        record: RecordId([i; 32]),
        seq: u64::from(i) + 1,
    }
}

#[test]
fn bits_and_prefixes() {
    let mut key = LeafKey([0; 32]);
    key.0[0] = 0b1010_0000;
    key.0[8] = 0xff;
    assert!(key.bit(0) && !key.bit(1) && key.bit(2) && !key.bit(3));
    assert_eq!(key.prefix64(), 0xa000_0000_0000_0000);
    let mut other = key;
    other.0[0] = 0b1011_0000;
    assert!(key.shares_prefix(&other, 3) && !key.shares_prefix(&other, 4));
    assert!(key.shares_prefix(&key, 256));
}

#[test]
fn both_ways_of_computing_agree_and_proofs_verify() {
    let leaves: Vec<Leaf> = (0..50).map(leaf).collect();
    let mut pairs: Vec<(LeafKey, Hash)> = leaves.iter().map(|l| (l.key, l.hash())).collect();
    pairs.sort_by_key(|p| p.0);
    let root = reference_root(&leaves);
    assert_eq!(subtree_hash(&pairs, 0), root);
    for l in &leaves {
        let proof = reference_proof(&leaves, &l.key);
        proof
            .verify_presence(&l.key, &l.record, l.seq, &root)
            .unwrap();
        assert!(proof
            .verify_presence(&l.key, &l.record, l.seq + 1, &root)
            .is_err());
        assert_eq!(Proof::from_value(&proof.to_value()).unwrap(), proof);
        let mut text = String::new();
        proof.write_json(&mut text);
        assert_eq!(text, crate::canonical::to_string(&proof.to_value()));
    }
    let absent = leaf(200).key;
    let proof = reference_proof(&leaves, &absent);
    proof.verify_absence(&absent, &root).unwrap();
    let path = subtree_path(&pairs, 0, &absent);
    assert_eq!(path.siblings, proof.siblings);
}

#[test]
fn small_sets() {
    let one = leaf(1);
    assert_eq!(reference_root(&[]), EMPTY);
    assert_eq!(subtree_hash(&[], 0), EMPTY);
    assert_eq!(reference_root(&[one]), one.hash());
    assert_eq!(subtree_hash(&[(one.key, one.hash())], 0), one.hash());
    let empty = reference_proof(&[], &one.key);
    assert_eq!(
        empty,
        Proof {
            siblings: vec![],
            terminal: Some(Terminal::Empty)
        }
    );
    empty.verify_absence(&one.key, &EMPTY).unwrap();
    let alone = reference_proof(&[one], &one.key);
    assert_eq!(
        alone,
        Proof {
            siblings: vec![],
            terminal: None
        }
    );
    alone
        .verify_presence(&one.key, &one.record, one.seq, &one.hash())
        .unwrap();
    let other = reference_proof(&[one], &leaf(2).key);
    assert_eq!(other.terminal, Some(Terminal::Leaf(one)));
    other.verify_absence(&leaf(2).key, &one.hash()).unwrap();
}

#[test]
fn subtrees_below_the_root() {
    // Keys sharing their first 10 bits, as a bucket below depth 10.
    let mut leaves: Vec<Leaf> = (0..40u8)
        .map(|i| {
            let mut l = leaf(i);
            l.key.0[0] = 0xa5;
            l.key.0[1] = (l.key.0[1] & 0x3f) | 0x80;
            l
        })
        .collect();
    leaves.sort_by_key(|l| l.key);
    let pairs: Vec<KeyedLeaf> = leaves.iter().map(|l| (l.key, l.hash())).collect();
    // Every sibling above the bucket is Z: climbing from the bucket's
    // hash past ten empty siblings gives the root.
    let root = reference_root(&leaves);
    assert_eq!(subtree_hash(&pairs, 0), root);
    let bucket = subtree_hash(&pairs, 10);
    let climbed = Proof {
        siblings: vec![EMPTY; 10],
        terminal: None,
    }
    .climb(&leaves[0].key, bucket, &root);
    assert_eq!(climbed, Ok(()));
    for (i, l) in leaves.iter().enumerate() {
        let path = subtree_path(&pairs, 10, &l.key);
        assert_eq!(path.end, PathEnd::Entry(i));
        let whole = reference_proof(&leaves, &l.key);
        assert_eq!(whole.siblings[..10], [EMPTY; 10]);
        assert_eq!(whole.siblings[10..], path.siblings[..]);
        let mut inner = Proof {
            siblings: path.siblings,
            terminal: None,
        };
        inner.siblings.splice(0..0, [EMPTY; 10]);
        inner
            .verify_presence(&l.key, &l.record, l.seq, &root)
            .unwrap();
    }
    let mut absent = leaf(99).key;
    absent.0[0] = 0xa5;
    absent.0[1] = (absent.0[1] & 0x3f) | 0x80;
    let path = subtree_path(&pairs, 10, &absent);
    let whole = reference_proof(&leaves, &absent);
    assert_eq!(whole.siblings[10..], path.siblings[..]);
    match (path.end, whole.terminal) {
        (PathEnd::Empty, Some(Terminal::Empty)) => {}
        (PathEnd::Entry(i), Some(Terminal::Leaf(t))) => assert_eq!(leaves[i], t),
        other => panic!("path and reference disagree: {other:?}"),
    }
}

#[test]
fn absence_terminals_are_checked() {
    let leaves: Vec<Leaf> = (0..8).map(leaf).collect();
    let root = reference_root(&leaves);
    let present = leaves[3];
    let proof = reference_proof(&leaves, &present.key);
    // Dressing a presence proof as absence with its own leaf fails.
    let own = Proof {
        siblings: proof.siblings.clone(),
        terminal: Some(Terminal::Leaf(present)),
    };
    assert_eq!(
        own.verify_absence(&present.key, &root),
        Err(ProofError::NotThisKey)
    );
    assert_eq!(
        proof.verify_absence(&present.key, &root),
        Err(ProofError::WrongKind)
    );
    // Another key's terminal whose leaf lies off the path fails too.
    let mut off = present;
    off.key.0[0] ^= 0x80;
    let moved = Proof {
        siblings: proof.siblings.clone(),
        terminal: Some(Terminal::Leaf(off)),
    };
    assert_eq!(
        moved.verify_absence(&present.key, &root),
        Err(ProofError::NotThisKey)
    );
    let deep = Proof {
        siblings: vec![EMPTY; 257],
        terminal: Some(Terminal::Empty),
    };
    assert!(matches!(
        deep.verify_absence(&present.key, &root),
        Err(ProofError::Shape(_))
    ));
}

#[test]
fn parsing_is_strict() {
    let z = b64_encode(&EMPTY);
    let k = b64_encode(&[7; 32]);
    let ok = [
        json!({"depth": 0, "siblings": []}),
        json!({"depth": 1, "siblings": [z], "terminal": {"empty": true}}),
        json!({"depth": 0, "siblings": [], "terminal": {"key": k, "record": k, "seq": 1}}),
        json!({"depth": 0, "siblings": [],
               "terminal": {"key": k, "record": k, "seq": INT_LIMIT - 1}}),
    ];
    for value in ok {
        let proof = Proof::from_value(&value).unwrap();
        assert_eq!(proof.to_value(), value);
    }
    let bad = [
        json!([]),
        json!({"siblings": []}),
        json!({"depth": 0}),
        json!({"depth": 0, "siblings": [], "extra": 1}),
        json!({"depth": 1, "siblings": []}),
        json!({"depth": 0, "siblings": [z]}),
        json!({"depth": -1, "siblings": []}),
        json!({"depth": 0.0, "siblings": []}),
        json!({"depth": 257, "siblings": vec![z.clone(); 257]}),
        json!({"depth": 1, "siblings": [b64_encode(&[0; 31])]}),
        json!({"depth": 1, "siblings": ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB="]}),
        json!({"depth": 1, "siblings": [1]}),
        json!({"depth": 0, "siblings": [], "terminal": null}),
        json!({"depth": 0, "siblings": [], "terminal": {}}),
        json!({"depth": 0, "siblings": [], "terminal": {"empty": false}}),
        json!({"depth": 0, "siblings": [], "terminal": {"empty": 1}}),
        json!({"depth": 0, "siblings": [], "terminal": {"empty": true, "seq": 1}}),
        json!({"depth": 0, "siblings": [], "terminal": {"key": k, "record": k}}),
        json!({"depth": 0, "siblings": [], "terminal": {"key": k, "record": k, "seq": 0}}),
        json!({"depth": 0, "siblings": [],
               "terminal": {"key": k, "record": k, "seq": INT_LIMIT}}),
        json!({"depth": 0, "siblings": [],
               "terminal": {"key": k, "record": k, "seq": 1, "x": 1}}),
        json!({"depth": 0, "siblings": [], "terminal": {"key": z, "record": 1, "seq": 1}}),
    ];
    for value in bad {
        assert!(
            matches!(Proof::from_value(&value), Err(ProofError::Shape(_))),
            "accepted {value}"
        );
    }
    let full = Proof::from_value(&json!({"depth": 256, "siblings": vec![z; 256]})).unwrap();
    assert_eq!(full.siblings.len(), MAX_DEPTH);
}
