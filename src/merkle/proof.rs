//! [`Proof`] (PROTOCOL.md §10.3): the siblings from the root down and,
//! for absence, where the path ends ([`Terminal`]). Its one strict JSON
//! form (parsed with [`Proof::from_value`], written as a value or straight
//! into canonical text) and the checks of presence and absence against a
//! root, with [`ProofError`] saying why one fails.

use super::{leaf_hash, node_hash, Hash, Leaf, LeafKey, EMPTY, MAX_DEPTH};
use crate::canonical::INT_LIMIT;
use crate::codec::{b64_decode_exact, b64_encode, b64_encode_into};
use crate::record::RecordId;
use serde_json::{json, Map, Value};
use std::fmt;

/// Where an absence proof ends.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Terminal {
    /// An empty subtree.
    Empty,
    /// The one entry of the subtree, whose key is not the one asked.
    Leaf(Leaf),
}

/// A proof (PROTOCOL.md §10.3): the siblings from the root down; a
/// presence proof has no terminal.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Proof {
    /// Sibling i is the child at depth i + 1 off the path; the proof's
    /// depth is their number.
    pub siblings: Vec<Hash>,
    /// `None` for presence; the end of the path for absence.
    pub terminal: Option<Terminal>,
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofError {
    /// The JSON breaks the format of §10.3.
    Shape(String),
    /// A presence proof was given where absence is shown, or the reverse.
    WrongKind,
    /// The terminal entry is the key asked for, or lies off its path.
    NotThisKey,
    /// The path does not lead to the root.
    RootMismatch,
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProofError::Shape(why) => write!(f, "proof is malformed: {why}"),
            ProofError::WrongKind => write!(
                f,
                "proof is of presence where absence is asked, or the reverse"
            ),
            ProofError::NotThisKey => {
                write!(f, "proof's terminal entry is not another key on the path")
            }
            ProofError::RootMismatch => write!(f, "proof does not lead to the head's root"),
        }
    }
}

impl std::error::Error for ProofError {}

impl Proof {
    /// Parses a proof, exactly as §10.3 step 1 allows.
    pub fn from_value(value: &Value) -> Result<Proof, ProofError> {
        let shape = |why: &str| ProofError::Shape(why.to_owned());
        let map = value
            .as_object()
            .ok_or_else(|| shape("a proof must be an object"))?;
        if let Some(extra) = map
            .keys()
            .find(|k| !["depth", "siblings", "terminal"].contains(&k.as_str()))
        {
            return Err(ProofError::Shape(format!("unknown key {extra:?}")));
        }
        let depth = map
            .get("depth")
            .and_then(Value::as_u64)
            .filter(|d| *d <= MAX_DEPTH as u64)
            .ok_or_else(|| shape("depth must be an integer from 0 to 256"))?;
        let list = map
            .get("siblings")
            .and_then(Value::as_array)
            .ok_or_else(|| shape("siblings must be an array"))?;
        if list.len() as u64 != depth {
            return Err(shape("siblings must hold exactly depth hashes"));
        }
        let siblings = list
            .iter()
            .map(|s| s.as_str().and_then(b64_decode_exact::<32>))
            .collect::<Option<Vec<Hash>>>()
            .ok_or_else(|| shape("each sibling must be canonical Base64 of 32 bytes"))?;
        let terminal = map.get("terminal").map(terminal_of).transpose()?;
        Ok(Proof { siblings, terminal })
    }

    /// The proof as JSON.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("depth".into(), self.siblings.len().into());
        let siblings: Vec<Value> = self.siblings.iter().map(|s| b64_encode(s).into()).collect();
        map.insert("siblings".into(), siblings.into());
        match &self.terminal {
            None => {}
            Some(Terminal::Empty) => {
                map.insert("terminal".into(), json!({"empty": true}));
            }
            Some(Terminal::Leaf(leaf)) => {
                map.insert(
                    "terminal".into(),
                    json!({
                        "key": leaf.key.to_base64(),
                        "record": leaf.record.to_base64(),
                        "seq": leaf.seq,
                    }),
                );
            }
        }
        Value::Object(map)
    }

    /// Writes the proof's canonical JSON into `out` (the same text as
    /// `canonical::to_string(&self.to_value())`, without building a value).
    pub fn write_json(&self, out: &mut String) {
        out.push_str("{\"depth\":");
        push_int(out, self.siblings.len() as u64);
        out.push_str(",\"siblings\":[");
        for (i, sibling) in self.siblings.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            b64_encode_into(sibling, out);
            out.push('"');
        }
        out.push(']');
        match &self.terminal {
            None => {}
            Some(Terminal::Empty) => out.push_str(",\"terminal\":{\"empty\":true}"),
            Some(Terminal::Leaf(leaf)) => {
                out.push_str(",\"terminal\":{\"key\":\"");
                out.push_str(&leaf.key.to_base64());
                out.push_str("\",\"record\":\"");
                out.push_str(&leaf.record.to_base64());
                out.push_str("\",\"seq\":");
                push_int(out, leaf.seq);
                out.push('}');
            }
        }
        out.push('}');
    }

    /// Checks that this proves the entry (key, record, seq) is in the tree
    /// with `root`.
    pub fn verify_presence(
        &self,
        key: &LeafKey,
        record: &RecordId,
        seq: u64,
        root: &Hash,
    ) -> Result<(), ProofError> {
        self.check_depth()?;
        if self.terminal.is_some() {
            return Err(ProofError::WrongKind);
        }
        self.climb(key, leaf_hash(key, record, seq), root)
    }

    /// Checks that this proves no entry with `key` is in the tree with
    /// `root`.
    pub fn verify_absence(&self, key: &LeafKey, root: &Hash) -> Result<(), ProofError> {
        self.check_depth()?;
        let start = match &self.terminal {
            None => return Err(ProofError::WrongKind),
            Some(Terminal::Empty) => EMPTY,
            Some(Terminal::Leaf(leaf)) => {
                if leaf.key == *key || !leaf.key.shares_prefix(key, self.siblings.len()) {
                    return Err(ProofError::NotThisKey);
                }
                leaf.hash()
            }
        };
        self.climb(key, start, root)
    }

    /// Refuses a proof built in code with more siblings than a key has
    /// bits (parsing already does): the walk would run off the key.
    fn check_depth(&self) -> Result<(), ProofError> {
        if self.siblings.len() > MAX_DEPTH {
            return Err(ProofError::Shape(format!(
                "depth {} is more than 256",
                self.siblings.len()
            )));
        }
        Ok(())
    }

    /// Hashes from the terminal up to the root along `key` (§10.3, 3–4).
    pub(super) fn climb(&self, key: &LeafKey, start: Hash, root: &Hash) -> Result<(), ProofError> {
        let mut h = start;
        for (i, sibling) in self.siblings.iter().enumerate().rev() {
            h = if key.bit(i) {
                node_hash(sibling, &h)
            } else {
                node_hash(&h, sibling)
            };
        }
        if h == *root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        }
    }
}

/// Appends an integer in decimal, as canonical JSON writes it.
fn push_int(out: &mut String, n: u64) {
    use std::fmt::Write;
    // Writing into a String cannot fail.
    let _ = write!(out, "{n}");
}

/// Parses a terminal: exactly `{"empty":true}` or `{"key","record","seq"}`.
fn terminal_of(value: &Value) -> Result<Terminal, ProofError> {
    let shape = |why: &str| ProofError::Shape(why.to_owned());
    let map = value
        .as_object()
        .ok_or_else(|| shape("terminal must be an object"))?;
    if map.len() == 1 && map.get("empty") == Some(&Value::Bool(true)) {
        return Ok(Terminal::Empty);
    }
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    if keys.len() != 3 || !["key", "record", "seq"].iter().all(|k| keys.contains(k)) {
        return Err(shape(
            "terminal must be {\"empty\":true} or have exactly key, record and seq",
        ));
    }
    let text = |k: &str| map.get(k).and_then(Value::as_str);
    Ok(Terminal::Leaf(Leaf {
        key: text("key")
            .and_then(LeafKey::from_base64)
            .ok_or_else(|| shape("terminal key must be canonical Base64 of 32 bytes"))?,
        record: text("record")
            .and_then(RecordId::from_base64)
            .ok_or_else(|| shape("terminal record must be canonical Base64 of 32 bytes"))?,
        seq: map
            .get("seq")
            .and_then(Value::as_u64)
            .filter(|s| (1..INT_LIMIT).contains(s))
            .ok_or_else(|| shape("terminal seq must be an integer from 1 to 2^53-1"))?,
    }))
}
