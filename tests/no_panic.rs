//! Garbage in, refusal out: the record and attestation parsers and the
//! verifier never panic, and nothing but the genuine record gets through.
//!
//! Starting from the signed record and attestation of `vectors.json`, a
//! deterministic xorshift generator mutates their JSON thousands of times:
//! bytes flipped, inserted, deleted and spliced in the text; field values
//! swapped for values of other types (null, booleans, huge, negative and
//! float numbers, nested objects, long and non-ASCII strings); keys removed
//! and added; integers nudged; characters of strings changed. Every mutant
//! goes through `serde_json`, `Record::from_value`, `Attestation::from_value`
//! and, when it parses, the verifier. The test asserts that nothing panics,
//! that whatever parses prints back to itself, that every mutant the
//! verifier accepts is the original record or attestation (any change to
//! signed content must break a signature), that the unmutated originals are
//! accepted every time they are tried, and that each layer refuses its share.

use onions::attest::Attestation;
use onions::canonical;
use onions::keys::{self, PublicKey};
use onions::record::Record;
use onions::verify::Verifier;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The time at which the vectors' record is valid.
const VECTOR_NOW: u64 = 1_764_000_100;

/// Mutants tried; a few seconds in a debug build.
const ITERATIONS: u64 = 10_000;

/// Every this many iterations the unmutated original is tried instead.
const ORIGINAL_EVERY: u64 = 50;

/// A small deterministic generator (xorshift64*), so a failure replays.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Characters that tend to matter to JSON, Base64, names and addresses.
const INTERESTING_CHARS: &[char] = &[
    '{',
    '}',
    '[',
    ']',
    '"',
    ',',
    ':',
    '\\',
    ' ',
    '\n',
    '0',
    '1',
    '9',
    '-',
    '+',
    '.',
    'e',
    'E',
    'a',
    'z',
    'A',
    'Z',
    '=',
    '/',
    '_',
    '\0',
    '\u{7f}',
    '\u{e9}',
    '\u{2028}',
    '\u{65e5}',
    '\u{1f980}',
    '\u{fffd}',
];

/// Keys a mutant may gain: near-misses of real keys and oddities.
const EXTRA_KEYS: &[&str] = &[
    "extra",
    "V",
    "Name",
    "sig ",
    " sig",
    "",
    "nonce2",
    "subdomain",
    "\u{e9}",
    "record",
    "seq",
    "accepted",
    "quorum",
    "v",
    "name",
    "sig",
    "work",
];

/// A random string: printable, non-ASCII, control or look-alike text.
fn random_string(rng: &mut XorShift) -> String {
    match rng.below(9) {
        0 => String::new(),
        1 => "x".repeat(rng.below(10_000) + 1),
        2 => "caf\u{e9} \u{65e5}\u{672c} \u{1f980}".into(),
        3 => "\u{0}\u{1}\t\n\u{7f}".into(),
        4 => "example.tor".into(),
        5 => "5jfgyy7ctrjavpxvkb5rglwf7gkuo5vox27hxescd3vgsfcg2iwfmxqd.onion".into(),
        6 => "A".repeat(86) + "==",
        7 => (0..rng.below(64) + 1)
            .map(|_| (0x20 + rng.below(0x5f) as u8) as char)
            .collect(),
        _ => (0..rng.below(16) + 1)
            .map(|_| *rng.pick(INTERESTING_CHARS))
            .collect(),
    }
}

/// A random JSON value of any type, nested at most `depth` more levels.
fn random_value(rng: &mut XorShift, depth: usize) -> Value {
    let kinds = if depth == 0 { 12 } else { 15 };
    match rng.below(kinds) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => Value::from(u64::MAX),
        3 => Value::from(1u64 << 53),
        4 => Value::from((1u64 << 53) - 1),
        5 => Value::from(-(rng.below(1000) as i64) - 1),
        6 => Value::from(i64::MIN),
        7 => Value::from(*rng.pick(&[0.5, -0.0, 1.0, 1e300, -1e-300, 1764000000.5])),
        8 => Value::from(rng.next()),
        9 => Value::from(rng.below(3) as u64),
        10 | 11 => Value::from(random_string(rng)),
        12 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(4))
                .map(|_| (random_string(rng), random_value(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// One text-level mutation: flip, insert, delete or splice bytes.
fn mutate_text(rng: &mut XorShift, text: &mut Vec<u8>) {
    let len = text.len();
    match rng.below(6) {
        0 if len > 0 => {
            let at = rng.below(len);
            text[at] ^= 1 << rng.below(8);
        }
        1 => {
            let c = *rng.pick(INTERESTING_CHARS);
            let mut buf = [0u8; 4];
            let at = rng.below(len + 1);
            text.splice(at..at, c.encode_utf8(&mut buf).bytes());
        }
        2 => {
            let at = rng.below(len + 1);
            text.insert(at, rng.next() as u8);
        }
        3 if len > 0 => {
            let at = rng.below(len);
            let n = (rng.below(8) + 1).min(len - at);
            text.drain(at..at + n);
        }
        4 if len > 0 => {
            let from = rng.below(len);
            let n = (rng.below(32) + 1).min(len - from);
            let piece: Vec<u8> = text[from..from + n].to_vec();
            let at = rng.below(len + 1);
            text.splice(at..at, piece);
        }
        _ => {
            // Nesting deeper than serde_json allows, or a truncated tail.
            if rng.one_in(2) {
                let at = rng.below(len + 1);
                text.splice(at..at, std::iter::repeat_n(b'[', 200));
            } else {
                text.truncate(rng.below(len + 1));
            }
        }
    }
}

/// One value-level mutation of a JSON object: nudge an integer, edit a
/// string, replace a value with one of another type, remove or add a key,
/// grow the subdomains, or replace the whole document. Mutations that keep
/// the shape weigh most, so that many mutants reach the verifier.
fn mutate_value(rng: &mut XorShift, value: &mut Value) {
    let Some(map) = value.as_object_mut() else {
        *value = random_value(rng, 3);
        return;
    };
    let keys: Vec<String> = map.keys().cloned().collect();
    if keys.is_empty() {
        map.insert(rng.pick(EXTRA_KEYS).to_string(), random_value(rng, 2));
        return;
    }
    let key = rng.pick(&keys).clone();
    match rng.below(24) {
        0..=6 => {
            let old = map[&key].as_u64().unwrap_or(0);
            map.insert(key, Value::from(nudge(rng, old)));
        }
        7..=13 => {
            let old = map[&key].as_str().unwrap_or("").to_owned();
            map.insert(key, Value::from(edit_string(rng, &old)));
        }
        14..=17 => {
            map.insert(key, random_value(rng, 3));
        }
        18 | 19 => {
            map.remove(&key);
        }
        20 | 21 => {
            map.insert(rng.pick(EXTRA_KEYS).to_string(), random_value(rng, 2));
        }
        22 => grow_subdomains(rng, map),
        _ => *value = random_value(rng, 3),
    }
}

/// A nearby or telling integer: off by one, a bit flipped, zero, or a time
/// around the vectors' clock (which makes records expired, or too long).
fn nudge(rng: &mut XorShift, n: u64) -> u64 {
    match rng.below(7) {
        0 => n.wrapping_add(1),
        1 => n.wrapping_sub(1),
        2 => n ^ (1 << rng.below(53)),
        3 => 0,
        4 => VECTOR_NOW - 40 * 86400 + rng.below(80 * 86400) as u64,
        5 => VECTOR_NOW - rng.below(200) as u64,
        _ => rng.below(70) as u64,
    }
}

/// `text` with one character replaced or inserted.
fn edit_string(rng: &mut XorShift, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let c = if rng.one_in(2) {
        *rng.pick(INTERESTING_CHARS)
    } else {
        (0x20 + rng.below(0x5f) as u8) as char
    };
    if chars.is_empty() || rng.one_in(4) {
        let at = rng.below(chars.len() + 1);
        chars.insert(at, c);
    } else {
        let at = rng.below(chars.len());
        chars[at] = c;
    }
    chars.into_iter().collect()
}

/// Adds one or 33 subdomains, with valid or random labels and addresses.
fn grow_subdomains(rng: &mut XorShift, map: &mut Map<String, Value>) {
    let subs = map
        .entry("subdomains")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(subs) = subs.as_object_mut() else {
        *subs = random_value(rng, 2);
        return;
    };
    let count = if rng.one_in(3) { 33 } else { 1 };
    for i in 0..count {
        let label = if rng.one_in(2) {
            format!("s{i}")
        } else {
            random_string(rng)
        };
        let onion = if rng.one_in(2) {
            "aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bqead.onion".into()
        } else {
            random_value(rng, 1)
        };
        subs.insert(label, onion);
    }
}

/// What became of the mutants, layer by layer.
#[derive(Debug, Default)]
struct Tally {
    not_json: u64,
    records_refused_by_parser: u64,
    records_refused_by_verifier: u64,
    records_accepted: u64,
    attestations_refused_by_parser: u64,
    attestations_refused_by_verifier: u64,
    attestations_accepted: u64,
    originals_tried: u64,
    originals_accepted: u64,
    codes: BTreeMap<&'static str, u64>,
}

/// The fixed inputs every iteration is checked against.
struct Fixture {
    record_value: Value,
    attestation_value: Value,
    record: Record,
    attestation: Attestation,
    record_canonical: String,
    attestation_canonical: String,
    verifier: Verifier,
    quorum_verifier: Verifier,
}

impl Fixture {
    fn load() -> Fixture {
        keys::init().unwrap();
        let v: Value = serde_json::from_str(include_str!("data/vectors.json")).unwrap();
        let record = Record::from_value(&v["record"]).expect("the vector record parses");
        let attestation =
            Attestation::from_value(&v["attestation"]).expect("the vector attestation parses");
        let quorum = PublicKey::from_base64(v["quorum"]["public_key_b64"].as_str().unwrap())
            .expect("the vector quorum key parses");
        let verifier = Verifier {
            min_work: 8,
            trusted: vec![quorum],
            max_skew: None,
        };
        Fixture {
            record_canonical: record.canonical(),
            attestation_canonical: canonical::to_string(&attestation.to_value()),
            record_value: v["record"].clone(),
            attestation_value: v["attestation"].clone(),
            record,
            attestation,
            quorum_verifier: Verifier {
                max_skew: Some(onions::verify::QUORUM_MAX_SKEW),
                ..verifier.clone()
            },
            verifier,
        }
    }

    /// Feeds one JSON text through every parser and check. `original`
    /// says the text is an unmutated vector, which must be accepted.
    fn check(&self, text: &str, original: bool, tally: &mut Tally) {
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(_) => {
                assert!(!original, "the original no longer parses as JSON");
                tally.not_json += 1;
                return;
            }
        };
        // Canonical JSON of any value without floats (which the protocol
        // never uses, and serde_json reads back only approximately) reads
        // back as the same value.
        let canon = canonical::to_string(&value);
        if !canonical::has_float(&value) {
            assert_eq!(
                serde_json::from_str::<Value>(&canon).ok().as_ref(),
                Some(&value),
                "canonical JSON does not read back: {canon}"
            );
        }

        let mut accepted = false;
        match Record::from_value(&value) {
            Err(e) => {
                assert_eq!(e.code(), "bad_record", "{e}");
                assert!(!e.to_string().is_empty());
                tally.records_refused_by_parser += 1;
            }
            Ok(record) => {
                assert_eq!(
                    Record::from_value(&record.to_value()).as_ref(),
                    Ok(&record),
                    "a parsed record prints back to itself"
                );
                assert_eq!(Record::from_json(&record.canonical()).as_ref(), Ok(&record));
                let plain = self.verifier.check_record(&record, VECTOR_NOW);
                let strict = self.quorum_verifier.check_record(&record, VECTOR_NOW);
                assert_eq!(
                    plain.is_ok(),
                    strict.is_ok(),
                    "the Quorum's skew rule changes nothing for this record: {plain:?} {strict:?}"
                );
                match plain {
                    Ok(()) => {
                        assert_eq!(
                            record.canonical(),
                            self.record_canonical,
                            "an altered record verified"
                        );
                        assert_eq!(record, self.record);
                        self.verifier
                            .check_answer(&record, &self.attestation, VECTOR_NOW)
                            .expect("the original record goes with its attestation");
                        tally.records_accepted += 1;
                        accepted = true;
                    }
                    Err(e) => {
                        assert!(!e.to_string().is_empty());
                        *tally.codes.entry(e.code()).or_default() += 1;
                        tally.records_refused_by_verifier += 1;
                        assert_eq!(
                            self.verifier.check_attestation(&record, &self.attestation),
                            if record.id() == self.record.id() {
                                Ok(())
                            } else {
                                Err(onions::attest::AttestError::WrongRecord)
                            },
                            "the attestation binds exactly one record"
                        );
                    }
                }
            }
        }

        match Attestation::from_value(&value) {
            Err(e) => {
                assert_eq!(e.code(), "bad_record", "{e}");
                assert!(!e.to_string().is_empty());
                tally.attestations_refused_by_parser += 1;
            }
            Ok(attestation) => {
                assert_eq!(
                    Attestation::from_value(&attestation.to_value()).as_ref(),
                    Ok(&attestation),
                    "a parsed attestation prints back to itself"
                );
                match self.verifier.check_attestation(&self.record, &attestation) {
                    Ok(()) => {
                        assert_eq!(
                            canonical::to_string(&attestation.to_value()),
                            self.attestation_canonical,
                            "an altered attestation verified"
                        );
                        tally.attestations_accepted += 1;
                        accepted = true;
                    }
                    Err(e) => {
                        assert!(!e.to_string().is_empty());
                        *tally.codes.entry(e.code()).or_default() += 1;
                        tally.attestations_refused_by_verifier += 1;
                    }
                }
            }
        }

        if original {
            tally.originals_tried += 1;
            assert!(accepted, "the unmutated original was refused: {text}");
            tally.originals_accepted += 1;
        }
    }
}

/// Builds the `iteration`th input: the original, or 1 to 4 mutations of it
/// (mostly one).
fn make_input(rng: &mut XorShift, fixture: &Fixture, iteration: u64) -> (String, bool) {
    let base = if rng.below(3) < 2 {
        &fixture.record_value
    } else {
        &fixture.attestation_value
    };
    let spell = |rng: &mut XorShift, value: &Value| {
        if rng.one_in(2) {
            serde_json::to_string_pretty(value).unwrap()
        } else {
            value.to_string()
        }
    };
    if iteration % ORIGINAL_EVERY == 0 {
        return (spell(rng, base), true);
    }
    let mut value = Some(base.clone());
    let mut text: Vec<u8> = Vec::new();
    let mutations = match rng.below(20) {
        0..=11 => 1,
        12..=16 => 2,
        _ => 3 + rng.below(2),
    };
    for _ in 0..mutations {
        if value.is_none() && rng.one_in(2) {
            value = serde_json::from_slice(&text).ok();
        }
        match value.as_mut() {
            Some(v) if rng.below(3) < 2 => mutate_value(rng, v),
            _ => {
                if let Some(v) = value.take() {
                    text = spell(rng, &v).into_bytes();
                }
                mutate_text(rng, &mut text);
            }
        }
    }
    let text = match value {
        Some(v) => spell(rng, &v).into_bytes(),
        None => text,
    };
    (String::from_utf8_lossy(&text).into_owned(), false)
}

#[test]
fn mutated_records_and_attestations_never_panic_and_never_pass() {
    let fixture = Fixture::load();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut tally = Tally::default();
    for iteration in 0..ITERATIONS {
        let (text, original) = make_input(&mut rng, &fixture, iteration);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            fixture.check(&text, original, &mut tally)
        }));
        if outcome.is_err() {
            panic!("iteration {iteration} failed (see the panic above) on input:\n{text}");
        }
    }
    println!("{tally:#?}");

    let mutants = ITERATIONS - tally.originals_tried;
    assert!(tally.originals_tried >= ITERATIONS / ORIGINAL_EVERY);
    assert_eq!(
        tally.originals_accepted, tally.originals_tried,
        "the original is accepted every time"
    );
    // Only re-spellings of the originals (whitespace, key order, escapes)
    // can pass, so nearly every mutant is refused at some layer.
    let passed = tally.records_accepted + tally.attestations_accepted - tally.originals_accepted;
    assert!(
        passed < mutants / 10,
        "{passed} of {mutants} mutants passed: {tally:#?}"
    );
    // Each layer did real work: some mutants broke the JSON, some the
    // shape, and some parsed cleanly only to fail a signature or a rule.
    assert!(tally.not_json > mutants / 20, "{tally:#?}");
    assert!(tally.records_refused_by_parser > mutants / 10, "{tally:#?}");
    assert!(
        tally.attestations_refused_by_parser > mutants / 10,
        "{tally:#?}"
    );
    assert!(tally.records_refused_by_verifier > 0, "{tally:#?}");
    assert!(tally.attestations_refused_by_verifier > 0, "{tally:#?}");
    for code in ["bad_signature", "bad_record", "expired"] {
        assert!(
            tally.codes.get(code).copied().unwrap_or(0) > 0,
            "no mutant was refused with {code}: {tally:#?}"
        );
    }
}
