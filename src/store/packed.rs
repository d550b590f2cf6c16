//! Packed texts: the canonical JSON of a record, an attestation or a head
//! stored as bytes, and rebuilt exactly on every read.
//!
//! The texts are what a server sends, so the log used to keep them as
//! they are; most of their bytes are spellings (Base64 signatures and
//! keys, base32 onion addresses, quoted key names) of far fewer bytes.
//! [`pack`] stores each value of the parsed text by what it is, and
//! [`unpack`] writes the canonical text back without building a JSON
//! value. A text is packed only when unpacking gives back exactly the
//! same bytes (checked by [`pack`] itself), so a spelling this module does
//! not foresee is stored as text (`None`) and never changed.
//!
//! Encoding, one tag byte per value:
//!
//! ```text
//! 0 null | 1 false | 2 true
//! 3 integer: LEB128 u64
//! 4 string: LEB128 length | bytes
//! 5 Base64 (padded, standard alphabet): LEB128 length | the bytes it encodes
//! 6 onion address: key [32] | checksum [2] (version 3)
//! 7 upper-case hex: LEB128 length | the bytes; 8 lower-case hex: the same
//!   (digits only are upper case; a string both hex and Base64 is hex)
//! 9 the string that is the entry's registered name
//! 10 the integer that is the entry's seq
//! 11 array: LEB128 count | values
//! 12 object: LEB128 count | (key, value) in canonical order; a key is one
//!    byte, an index into KEYS, or 255 then LEB128 length | bytes
//! ```

use crate::canonical;
use crate::codec::{b64_decode_public, b64_encode_into};
use crate::name::RegisteredName;
use crate::onion;
use serde_json::{Map, Value};
use std::fmt::Write;

/// What a packed text may refer to instead of repeating it: fields its
/// log frame already holds.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Context<'a> {
    /// The registered name of the frame's entry.
    pub(super) name: Option<&'a str>,
    /// The seq of the frame's entry.
    pub(super) seq: Option<u64>,
}

impl<'a> Context<'a> {
    /// The context of a record entry's texts: its name and seq.
    pub(super) fn entry(name: &'a RegisteredName, seq: u64) -> Context<'a> {
        Context {
            name: Some(name.as_str()),
            seq: Some(seq),
        }
    }
}

/// Key names that take one byte. Frozen: a log stores indexes into it, so
/// names are only ever appended.
const KEYS: [&str; 22] = [
    "accepted",
    "contact",
    "expires",
    "from",
    "issued",
    "name",
    "nonce",
    "onion",
    "quorum",
    "record",
    "release",
    "root",
    "seq",
    "serial",
    "sig",
    "size",
    "subdomains",
    "time",
    "to",
    "transfer",
    "v",
    "work",
];

/// The key byte that says a literal key follows.
const LITERAL_KEY: u8 = 255;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INTEGER: u8 = 3;
const STRING: u8 = 4;
const BASE64: u8 = 5;
const ONION: u8 = 6;
const HEX_UPPER: u8 = 7;
const HEX_LOWER: u8 = 8;
const NAME: u8 = 9;
const SEQ: u8 = 10;
const ARRAY: u8 = 11;
const OBJECT: u8 = 12;

/// The packed bytes of the canonical JSON `text`, or `None` when it should
/// be stored as text: it does not parse, holds a value this encoding has no
/// tag for (a negative or fractional number), or does not come back the
/// same (it was not canonical).
pub(super) fn pack(text: &str, context: &Context<'_>) -> Option<Vec<u8>> {
    let value: Value = serde_json::from_str(text).ok()?;
    let mut out = Vec::with_capacity(text.len() / 2);
    pack_value(&value, context, &mut out)?;
    (unpack(&out, context)? == text).then_some(out)
}

/// The canonical JSON text `bytes` were packed from, or `None` if they are
/// not a whole packed value (the frame is corrupt).
pub(super) fn unpack(bytes: &[u8], context: &Context<'_>) -> Option<String> {
    let mut text = String::with_capacity(bytes.len() * 2);
    let mut input = Input { bytes, at: 0 };
    write_value(&mut input, context, &mut text)?;
    (input.at == bytes.len()).then_some(text)
}

/// The onion keys a packed record points at, from its `onion` and the
/// values of its `subdomains`, without rebuilding its text; `None` when
/// the bytes are not a packed object of packed onion addresses there,
/// which the caller then reads from the unpacked text.
pub(super) fn pointed_keys(bytes: &[u8]) -> Option<Vec<[u8; 32]>> {
    let mut input = Input { bytes, at: 0 };
    if input.byte()? != OBJECT {
        return None;
    }
    let mut keys = Vec::new();
    for _ in 0..input.count()? {
        match input.key()? {
            "onion" => keys.push(input.onion_key()?),
            "subdomains" => {
                if input.byte()? != OBJECT {
                    return None;
                }
                for _ in 0..input.count()? {
                    input.key()?;
                    keys.push(input.onion_key()?);
                }
            }
            _ => input.skip_value()?,
        }
    }
    Some(keys)
}

/// Appends the packed form of `value`; `None` for a number that is not a
/// non-negative integer.
fn pack_value(value: &Value, context: &Context<'_>, out: &mut Vec<u8>) -> Option<()> {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
        Value::Number(n) => {
            let n = n.as_u64()?;
            if context.seq == Some(n) {
                out.push(SEQ);
            } else {
                out.push(INTEGER);
                push_varint(n, out);
            }
        }
        Value::String(s) => pack_string(s, context, out),
        Value::Array(items) => {
            out.push(ARRAY);
            push_varint(items.len() as u64, out);
            for item in items {
                pack_value(item, context, out)?;
            }
        }
        Value::Object(map) => pack_object(map, context, out)?,
    }
    Some(())
}

/// Appends an object, its keys in the map's order (byte order, which is
/// canonical order).
fn pack_object(map: &Map<String, Value>, context: &Context<'_>, out: &mut Vec<u8>) -> Option<()> {
    out.push(OBJECT);
    push_varint(map.len() as u64, out);
    for (key, item) in map {
        match KEYS.iter().position(|k| k == key) {
            Some(index) => out.push(index as u8),
            None => {
                out.push(LITERAL_KEY);
                push_bytes(key.as_bytes(), out);
            }
        }
        pack_value(item, context, out)?;
    }
    Some(())
}

/// Appends a string by the shortest tag that spells it back exactly.
fn pack_string(s: &str, context: &Context<'_>, out: &mut Vec<u8>) {
    if context.name == Some(s) {
        out.push(NAME);
    } else if let Some((key, checksum)) = onion::unchecked_parts(s) {
        out.push(ONION);
        out.extend_from_slice(&key);
        out.extend_from_slice(&checksum);
    } else if let Some((tag, bytes)) = hex_bytes(s) {
        out.push(tag);
        push_bytes(&bytes, out);
    } else if let Some(bytes) = b64_decode_public(s) {
        out.push(BASE64);
        push_bytes(&bytes, out);
    } else {
        out.push(STRING);
        push_bytes(s.as_bytes(), out);
    }
}

/// The bytes `s` spells in hex of one case, with that case's tag.
fn hex_bytes(s: &str) -> Option<(u8, Vec<u8>)> {
    if s.is_empty() || s.len() % 2 != 0 {
        return None;
    }
    let tag = if s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')) {
        HEX_UPPER
    } else if s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        HEX_LOWER
    } else {
        return None;
    };
    let nibble = |b: u8| (b as char).to_digit(16).expect("checked above") as u8;
    let bytes = s
        .as_bytes()
        .chunks(2)
        .map(|pair| nibble(pair[0]) << 4 | nibble(pair[1]))
        .collect();
    Some((tag, bytes))
}

/// Appends `n` as LEB128.
fn push_varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends a length and the bytes.
fn push_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    push_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Packed bytes being read.
struct Input<'a> {
    /// All of them.
    bytes: &'a [u8],
    /// Where the next value starts.
    at: usize,
}

impl<'a> Input<'a> {
    /// The next byte.
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let part = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(part)
    }

    /// The next LEB128 integer (at most ten bytes, as u64 needs).
    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    /// A count or length: bounded by the bytes left, so a corrupt one
    /// cannot make the reader allocate or loop beyond the frame.
    fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n <= self.bytes.len() - self.at).then_some(n)
    }

    /// A length and that many bytes.
    fn sized(&mut self) -> Option<&'a [u8]> {
        let n = self.count()?;
        self.take(n)
    }

    /// An object's key.
    fn key(&mut self) -> Option<&'a str> {
        match self.byte()? {
            LITERAL_KEY => std::str::from_utf8(self.sized()?).ok(),
            index => KEYS.get(usize::from(index)).copied(),
        }
    }

    /// An onion address value's key.
    fn onion_key(&mut self) -> Option<[u8; 32]> {
        if self.byte()? != ONION {
            return None;
        }
        let key = self.take(32)?.try_into().ok()?;
        self.take(2)?;
        Some(key)
    }

    /// Steps over one value.
    fn skip_value(&mut self) -> Option<()> {
        match self.byte()? {
            NULL | FALSE | TRUE | NAME | SEQ => {}
            INTEGER => {
                self.varint()?;
            }
            STRING | BASE64 | HEX_UPPER | HEX_LOWER => {
                self.sized()?;
            }
            ONION => {
                self.take(34)?;
            }
            ARRAY => {
                for _ in 0..self.count()? {
                    self.skip_value()?;
                }
            }
            OBJECT => {
                for _ in 0..self.count()? {
                    self.key()?;
                    self.skip_value()?;
                }
            }
            _ => return None,
        }
        Some(())
    }
}

/// Writes the canonical text of the next value.
fn write_value(input: &mut Input<'_>, context: &Context<'_>, out: &mut String) -> Option<()> {
    match input.byte()? {
        NULL => out.push_str("null"),
        FALSE => out.push_str("false"),
        TRUE => out.push_str("true"),
        INTEGER => write!(out, "{}", input.varint()?).ok()?,
        SEQ => write!(out, "{}", context.seq?).ok()?,
        STRING => canonical::write_string(std::str::from_utf8(input.sized()?).ok()?, out),
        NAME => canonical::write_string(context.name?, out),
        BASE64 => {
            out.push('"');
            b64_encode_into(input.sized()?, out);
            out.push('"');
        }
        ONION => {
            let key = input.take(32)?.try_into().ok()?;
            let checksum = input.take(2)?.try_into().ok()?;
            out.push('"');
            onion::spell_into(key, checksum, out);
            out.push('"');
        }
        tag @ (HEX_UPPER | HEX_LOWER) => {
            let digits = if tag == HEX_UPPER {
                b"0123456789ABCDEF"
            } else {
                b"0123456789abcdef"
            };
            out.push('"');
            for b in input.sized()? {
                out.push(digits[usize::from(b >> 4)] as char);
                out.push(digits[usize::from(b & 15)] as char);
            }
            out.push('"');
        }
        ARRAY => write_array(input, context, out)?,
        OBJECT => write_object(input, context, out)?,
        _ => return None,
    }
    Some(())
}

/// Writes an array's items after its tag.
fn write_array(input: &mut Input<'_>, context: &Context<'_>, out: &mut String) -> Option<()> {
    out.push('[');
    for i in 0..input.count()? {
        if i > 0 {
            out.push(',');
        }
        write_value(input, context, out)?;
    }
    out.push(']');
    Some(())
}

/// Writes an object's members after its tag, in the order stored.
fn write_object(input: &mut Input<'_>, context: &Context<'_>, out: &mut String) -> Option<()> {
    out.push('{');
    for i in 0..input.count()? {
        if i > 0 {
            out.push(',');
        }
        canonical::write_string(input.key()?, out);
        out.push(':');
        write_value(input, context, out)?;
    }
    out.push('}');
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = "{\"contact\":\"0123456789ABCDEF0123456789ABCDEF01234567\",\"expires\":1764604800,\"issued\":1764000000,\"name\":\"example.tor\",\"nonce\":221,\"onion\":\"aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bqead.onion\",\"serial\":1,\"sig\":\"P6uce5xJYEB34zyWgSgSxK+gGR7NNgTuShLvTtzaSpVk7t7Ol+xZ6VVo/ZguSpZMlWL9xh9b2qsKWa7YNDBKAA==\",\"subdomains\":{\"www\":\"5jfgyy7ctrjavpxvkb5rglwf7gkuo5vox27hxescd3vgsfcg2iwfmxqd.onion\"},\"v\":1,\"work\":8}";
    const ATTESTATION: &str = "{\"accepted\":1764000060,\"quorum\":\"GX9rI+FshTLGq8g4+s1ep4m+DHaykgM0A5v6iz02jWE=\",\"record\":\"IX3AHUH2R/qqN3TvJsHGIvYUUUsKhFP1K6zqLHfF76E=\",\"seq\":1,\"sig\":\"vhIIU+0yJrv3EjnnAd1BrB6YPq48svumvJVRBn4pBNGIc660puIDgDDjwGQA570chhhMXpmS/5Xl8JAQfYyaBw==\"}";

    fn entry() -> Context<'static> {
        Context {
            name: Some("example.tor"),
            seq: Some(1),
        }
    }

    fn round_trip(text: &str, context: &Context<'_>) -> Vec<u8> {
        let packed = pack(text, context).expect("packs");
        assert_eq!(unpack(&packed, context).as_deref(), Some(text));
        packed
    }

    #[test]
    fn the_protocol_example_packs_to_under_half_and_back() {
        let record = round_trip(RECORD, &entry());
        let attestation = round_trip(ATTESTATION, &entry());
        assert_eq!(record.len(), 198, "was {} bytes of text", RECORD.len());
        assert_eq!(attestation.len(), 148, "was {}", ATTESTATION.len());
    }

    #[test]
    fn a_record_points_at_its_onion_and_subdomains_without_unpacking() {
        let packed = round_trip(RECORD, &entry());
        let keys = pointed_keys(&packed).unwrap();
        let expected = crate::record::pointed_keys(RECORD).unwrap();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, expected);
        assert_eq!(keys.len(), 2);
    }

    #[test]
    fn values_with_no_tag_or_another_spelling_stay_text() {
        for text in [
            "{\"a\":-1}",
            "{\"a\":1.5}",
            "{\"b\":1,\"a\":2}",
            "{\"a\": 1}",
            "not json",
        ] {
            assert_eq!(pack(text, &Context::default()), None, "{text}");
        }
    }

    /// The tag `s` is packed with.
    fn tag_of(s: &str) -> u8 {
        let mut out = Vec::new();
        pack_string(s, &entry(), &mut out);
        out[0]
    }

    #[test]
    fn near_miss_spellings_are_kept_as_strings() {
        assert_eq!(tag_of("+/8AEA=="), BASE64);
        assert_eq!(tag_of("+/8AEB=="), STRING, "non-zero trailing bits");
        let onion = "aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bqead.onion";
        assert_eq!(tag_of(onion), ONION);
        let wrong_checksum = onion.replace("bqead", "baead");
        assert_eq!(tag_of(&wrong_checksum), ONION, "spelled back as it was");
        let version_2 = onion.replace("bqead", "bqeac");
        assert_eq!(tag_of(&version_2), STRING);
        assert_eq!(tag_of(&onion.to_uppercase()), STRING);
        assert_eq!(tag_of("0A1B"), HEX_UPPER, "hex before Base64: fewer bytes");
        assert_eq!(tag_of("0a1b"), HEX_LOWER);
        assert_eq!(tag_of("0aA0"), BASE64, "mixed-case hex is Base64 too");
        assert_eq!(tag_of("abc"), STRING, "odd length");
        assert_eq!(tag_of("example.tor"), NAME);
        assert_eq!(tag_of("other.tor"), STRING);
        round_trip(
            "{\"k\\\"\":[null,true,false,\"a\\\\b\",\"\"],\"zzz\":{}}",
            &entry(),
        );
    }

    #[test]
    fn the_context_is_used_only_where_it_matches() {
        let text = "{\"name\":\"example.tor\",\"seq\":1,\"serial\":1}";
        let with = round_trip(text, &entry());
        let without = round_trip(text, &Context::default());
        assert!(with.len() < without.len());
        assert_eq!(unpack(&with, &Context::default()), None, "needs its frame");
    }

    #[test]
    fn corrupt_bytes_are_refused_not_misread() {
        let packed = round_trip(ATTESTATION, &entry());
        for cut in 0..packed.len() {
            assert_eq!(unpack(&packed[..cut], &entry()), None, "cut at {cut}");
        }
        let mut longer = packed.clone();
        longer.push(NULL);
        assert_eq!(unpack(&longer, &entry()), None, "trailing bytes");
        assert_eq!(unpack(&[OBJECT, 0xff, 0xff, 0xff, 0x0f], &entry()), None);
        assert_eq!(unpack(&[13], &entry()), None, "unknown tag");
    }

    /// Reads `bytes` both ways; whatever unpacks is JSON.
    fn read_both_ways(bytes: &[u8]) {
        if let Some(text) = unpack(bytes, &entry()) {
            assert!(serde_json::from_str::<Value>(&text).is_ok(), "{text}");
        }
        let _ = pointed_keys(bytes);
    }

    #[test]
    fn any_change_to_packed_bytes_is_refused_or_read_as_json() {
        let packed = round_trip(RECORD, &entry());
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for at in 0..packed.len() {
            for flip in [1u8, 0x80, 0xff] {
                let mut changed = packed.clone();
                changed[at] ^= flip;
                read_both_ways(&changed);
            }
        }
        for _ in 0..2000 {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| (next() % 16) as u8).collect();
            read_both_ways(&bytes);
        }
    }
}
