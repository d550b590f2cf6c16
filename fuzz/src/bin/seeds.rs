//! Writes the seed corpus, `fuzz/corpus/<target>/`, from the project's
//! real data: the worked examples of `tests/data/vectors*.json` (records,
//! attestations, heads, proofs, cosignatures, evidence, and the requests,
//! replies and pushes that carry them) and logs the store itself writes.
//!
//! `cargo run --bin seeds` in `fuzz/`; the output is deterministic, so a
//! run on an unchanged tree changes no file. Not a fuzz target.

#[allow(dead_code)]
#[path = "../../targets/replay.rs"]
mod replay;

use onions::attest::Attestation;
use onions::evidence::{Attested, EvidenceFile, OwnershipEvidence, Rule};
use onions::head::SignedHead;
use onions::keys::SigningKey;
use onions::name::RegisteredName;
use onions::record::{Claim, Record};
use onions::wire::{
    self, AuditState, AuditStatus, CosignStatus, HeadTiming, Id, Mismatch, Reply, Request, Runtime,
    ServerRole, Status, UpstreamStatus, WitnessStatus,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Seeds of one target: file name to bytes.
type Seeds = BTreeMap<String, Vec<u8>>;

fn main() {
    onions::keys::init().expect("libsodium");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("../tests/data");
    let vectors: Vec<(String, Value)> = [
        "vectors",
        "vectors-v2",
        "vectors-witness",
        "vectors-reverse",
    ]
        .iter()
        .map(|stem| {
            let text = fs::read_to_string(data.join(format!("{stem}.json")))
                .unwrap_or_else(|e| panic!("{stem}.json: {e}"));
            (stem.to_string(), serde_json::from_str(&text).expect("JSON"))
        })
        .collect();
    let mut nodes = Vec::new();
    for (stem, value) in &vectors {
        walk(value, stem, &mut nodes);
    }
    let corpus = root.join("corpus");
    write(&corpus.join("objects"), objects(&nodes));
    write(&corpus.join("request"), requests(&nodes, &vectors));
    write(
        &corpus.join("reply_push"),
        replies_and_pushes(&nodes, &vectors),
    );
    write(&corpus.join("replay"), logs());
}

/// Every JSON object and array in `value` (and every string that is one),
/// with its path, e.g. `vectors-v2.answers.found.reply`.
fn walk(value: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            out.push((path.to_owned(), value.clone()));
            for (key, v) in map {
                walk(v, &format!("{path}.{key}"), out);
            }
        }
        Value::Array(items) => {
            out.push((path.to_owned(), value.clone()));
            for (i, v) in items.iter().enumerate() {
                walk(v, &format!("{path}.{i}"), out);
            }
        }
        Value::String(text) => {
            if let Ok(inner @ (Value::Object(_) | Value::Array(_))) =
                serde_json::from_str::<Value>(text)
            {
                walk(&inner, path, out);
            }
        }
        _ => {}
    }
}

/// The objects any parser of the `objects` target takes, as they are in
/// the examples, plus ownership evidence of each rule.
fn objects(nodes: &[(String, Value)]) -> Seeds {
    let mut seeds = Seeds::new();
    // The files whole are the examples' containers, not objects.
    for (path, value) in nodes.iter().filter(|(path, _)| path.contains('.')) {
        let parses = onions::record::Record::from_value(value).is_ok()
            || Attestation::from_value(value).is_ok()
            || SignedHead::from_value(value).is_ok()
            || onions::merkle::Proof::from_value(value).is_ok()
            || onions::cosign::Cosignature::from_value(value).is_ok()
            || onions::cosign::Cosignature::list_from_value(value).is_ok_and(|l| !l.is_empty())
            || EvidenceFile::from_json(&value.to_string()).is_ok()
            || ["record", "attestation", "head"]
                .iter()
                .any(|k| value.get(k).is_some());
        if parses {
            add(&mut seeds, path, "json", value.to_string().into_bytes());
        }
    }
    for (rule, evidence) in ownership() {
        let text = onions::canonical::to_string(&evidence.to_value());
        add(
            &mut seeds,
            &format!("ownership-{rule}"),
            "json",
            text.into_bytes(),
        );
    }
    seeds
}

/// Request lines: puts of every example record, lookups of every example
/// name (valid or not), subscribe, status, the example cosign request and
/// the example reverse requests (valid or not).
fn requests(nodes: &[(String, Value)], vectors: &[(String, Value)]) -> Seeds {
    let mut seeds = Seeds::new();
    let mut id = 0u64;
    let mut records = BTreeSet::new();
    for (path, value) in nodes {
        if Record::from_value(value).is_ok() && records.insert(value.to_string()) {
            id += 1;
            let put = Request::Put {
                id: Id::Number(id),
                record: value.clone(),
            };
            add(&mut seeds, &format!("put-{path}"), "line", put.to_line());
        }
    }
    let names = &vectors[0].1["names"];
    for (kind, list) in [("valid", &names["valid"]), ("invalid", &names["invalid"])] {
        for name in list.as_array().into_iter().flatten() {
            let line = json!({"type": "lookup", "id": format!("q{id}"), "name": name});
            id += 1;
            add(
                &mut seeds,
                &format!("lookup-{kind}"),
                "line",
                line_of(&line),
            );
        }
    }
    let subscribe = Request::Subscribe {
        id: Id::Number(7),
        from: 5,
    };
    add(&mut seeds, "subscribe", "line", subscribe.to_line());
    let status = Request::Status {
        id: Id::Text("s".into()),
    };
    add(&mut seeds, "status", "line", status.to_line());
    let cosign = vectors[2].1["cosign_request"]
        .as_str()
        .expect("cosign_request");
    add(&mut seeds, "cosign", "line", cosign.as_bytes().to_vec());
    let reverse = &vectors[3].1;
    let cases = reverse["cases"].as_array().into_iter().flatten();
    let invalid = reverse["invalid"].as_array().into_iter().flatten();
    for (kind, case) in cases
        .map(|c| ("reverse", c))
        .chain(invalid.map(|c| ("reverse-invalid", c)))
    {
        let line = case["request"].as_str().expect("a request line");
        add(&mut seeds, kind, "line", line.as_bytes().to_vec());
    }
    seeds
}

/// Reply and push lines: the examples' answers (and the found answer with
/// its witnesses' cosignatures), the example cosignatures push, and every
/// other kind built from the examples' objects.
fn replies_and_pushes(nodes: &[(String, Value)], vectors: &[(String, Value)]) -> Seeds {
    let mut seeds = Seeds::new();
    let v2 = &vectors[1].1;
    let witness = &vectors[2].1;
    for (path, value) in nodes {
        if value.get("type").is_some() {
            add(&mut seeds, path, "line", line_of(value));
        }
    }
    let mut cosigned = v2["answers"]["found"]["reply"].clone();
    cosigned["cosignatures"] = witness["client"]["cases"][0]["cosignatures"].clone();
    add(&mut seeds, "found-cosigned", "line", line_of(&cosigned));
    let push = witness["cosignatures_push"]
        .as_str()
        .expect("cosignatures_push");
    add(
        &mut seeds,
        "cosignatures-push",
        "line",
        push.as_bytes().to_vec(),
    );

    let log = v2["log"].as_array().expect("log");
    let head = SignedHead::from_value(&v2["head"]["head"]).expect("the example head");
    for entry in log {
        let seq = entry["seq"].as_u64().expect("seq");
        let record = onions::canonical::to_string(&entry["record"]);
        let attestation = onions::canonical::to_string(&entry["attestation"]);
        let line = wire::record_line(seq, &record, &attestation);
        add(&mut seeds, &format!("push-record-{seq}"), "line", line);
    }
    let attestation = Attestation::from_value(&log[0]["attestation"]).expect("attestation");
    let replies = [
        (
            "accepted",
            Reply::Accepted {
                id: Id::Number(1),
                attestation,
            },
        ),
        (
            "cosigned",
            Reply::Cosigned {
                id: Id::Number(2),
                count: 2,
            },
        ),
        (
            "subscribed",
            Reply::Subscribed {
                id: Id::Text("sub".into()),
                seq: 7,
            },
        ),
        (
            "error",
            Reply::Error(wire::WireError::new(
                &Id::Number(3),
                wire::Code::BadRequest,
                "lookup needs a \"name\" string",
            )),
        ),
        (
            "status-quorum",
            Reply::Status {
                id: Id::Number(4),
                status: Box::new(status(&head, false)),
            },
        ),
        (
            "status-mirror",
            Reply::Status {
                id: Id::Number(5),
                status: Box::new(status(&head, true)),
            },
        ),
    ];
    for (name, reply) in replies {
        add(&mut seeds, name, "line", reply.to_line());
    }
    add(
        &mut seeds,
        "push-head",
        "line",
        wire::head_line(&head.canonical()),
    );
    add(
        &mut seeds,
        "push-heartbeat",
        "line",
        wire::heartbeat_line(7),
    );
    seeds
}

/// A server's status: a Quorum's with nothing optional, or a mirror's with
/// everything.
fn status(head: &SignedHead, mirror: bool) -> Status {
    let evidence = onions::head::Evidence::new(head.clone(), {
        let mut other = head.clone();
        other.size += 1;
        other
    });
    Status {
        role: if mirror {
            ServerRole::Mirror
        } else {
            ServerRole::Quorum
        },
        version: "0.1.0".into(),
        protocol: wire::PROTOCOL,
        seq: 7,
        head: Some(head.clone()),
        records: 5,
        subscribers: 1,
        min_work: 4,
        quorum_keys: vec![head.quorum.to_base64()],
        upstream: mirror.then(|| UpstreamStatus {
            addr: "127.0.0.1:10053".into(),
            connected: true,
            alarm: Some("upstream went back".into()),
            lag_records: 2,
            lag_secs: 30,
        }),
        audit: mirror.then(|| AuditStatus {
            state: AuditState::Alarm,
            matched: Some(head.clone()),
            checked: 3,
            mismatches: 1,
            last_mismatch: Some(Mismatch {
                head: head.clone(),
                root: [7; 32],
                size: 4,
            }),
            evidence,
        }),
        head_timing: mirror.then_some(HeadTiming {
            count: 3,
            total_us: 900,
            max_us: 400,
        }),
        cosignatures: mirror.then(|| CosignStatus {
            needed: 2,
            current: 3,
            witness: Some(WitnessStatus {
                key: head.quorum.to_base64(),
                last: Some(head.clone()),
                at: head.time,
                made: 4,
                refused: 1,
                alarm: None,
                evidence: vec!["evidence-equivocation-1764000300-0a1b2c3d.json".into()],
            }),
        }),
        runtime: mirror.then_some(Runtime {
            uptime: 60,
            connections: 2,
        }),
    }
}

/// Ownership evidence of each rule, signed with the examples' Quorum key
/// (its Tor key file is in `vectors.json`).
fn ownership() -> Vec<(&'static str, EvidenceFile)> {
    let vectors: Value = serde_json::from_str(include_str!("../../../tests/data/vectors.json"))
        .expect("vectors.json");
    let file = vectors["quorum"]["tor_secret_key_file_b64"]
        .as_str()
        .and_then(onions::codec::b64_decode_exact::<96>)
        .expect("the Quorum's key file");
    let quorum = SigningKey::from_tor_file_bytes(&file).expect("the Quorum's key");
    let t0 = 1_764_000_000;
    let record = |owner: u8, serial: u64| {
        let key = SigningKey::from_seed(&[owner; 32]);
        let claim = Claim {
            name: RegisteredName::parse("example.tor").expect("name"),
            subdomains: BTreeMap::new(),
            contact: String::new(),
            serial,
            issued: t0 + serial,
            expires: t0 + 7 * 86_400,
            work: 0,
        };
        let mut record = Record::from_claim(claim, &key);
        record.sign_with(&key);
        record
    };
    let attested = |seq: u64, record: Record| Attested {
        seq,
        attestation: Attestation::sign(record.id(), seq, t0 + 60 * seq, &quorum),
        record,
    };
    [
        ("name_taken", Rule::NameTaken, record(1, 1), record(2, 1)),
        (
            "stale_serial",
            Rule::StaleSerial,
            record(1, 2),
            record(1, 1),
        ),
        ("duplicate", Rule::Duplicate, record(1, 1), record(1, 1)),
    ]
    .into_iter()
    .map(|(name, rule, earlier, later)| {
        let evidence = OwnershipEvidence::new(rule, attested(3, earlier), attested(8, later));
        (name, EvidenceFile::Ownership(Box::new(evidence)))
    })
    .collect()
}

/// Replay inputs: each real log whole (mode 2 at 0: the log after its
/// header replaced by another's), a torn tail, a flipped byte in the
/// middle, the same with checksums recomputed, and a frame written twice.
fn logs() -> Seeds {
    let mut seeds = Seeds::new();
    let logs = replay::real_logs();
    for (name, bytes) in &logs {
        let input = [&[2u8, 0, 0][..], &bytes[12..]].concat();
        add(&mut seeds, &format!("log-{name}"), "bin", input);
    }
    let base = &logs[0].1;
    let body = base.len() - 12;
    let at = |offset: usize| {
        u16::try_from(offset % (body + 1))
            .unwrap_or(0)
            .to_le_bytes()
    };
    let seed = |mode: u8, offset: usize, payload: &[u8]| {
        let [lo, hi] = at(offset);
        [&[mode, lo, hi][..], payload].concat()
    };
    add(&mut seeds, "torn-tail", "bin", seed(2, body - 7, &[]));
    add(
        &mut seeds,
        "flipped-byte",
        "bin",
        seed(3, body * 2 / 5, &[0x20]),
    );
    add(
        &mut seeds,
        "flipped-resealed",
        "bin",
        seed(0x83, body / 3, &[1]),
    );
    let first = 12 + 5 + u32::from_le_bytes(base[13..17].try_into().expect("length")) as usize + 16;
    add(
        &mut seeds,
        "frame-twice",
        "bin",
        seed(1, first - 12, &base[12..first]),
    );
    seeds
}

/// `value` as one line.
fn line_of(value: &Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(value).expect("JSON");
    line.push(b'\n');
    line
}

/// Adds a seed named after `path` (made a file name), unless the same
/// bytes are there already.
fn add(seeds: &mut Seeds, path: &str, ext: &str, bytes: Vec<u8>) {
    if seeds.values().any(|b| *b == bytes) {
        return;
    }
    let stem: String = path
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = format!("{stem}.{ext}");
    let mut n = 1;
    while seeds.contains_key(&name) {
        n += 1;
        name = format!("{stem}-{n}.{ext}");
    }
    seeds.insert(name, bytes);
}

/// Replaces the files of `dir` by `seeds`.
fn write(dir: &PathBuf, seeds: Seeds) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let count = seeds.len();
    for (name, bytes) in seeds {
        fs::write(dir.join(&name), bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    println!("{}: {count} seeds", dir.display());
}
