//! Base64 (RFC 4648 §4, standard alphabet, padded) and strict decoding.
//!
//! Every Base64 string in the protocol is decoded here. Decoding is strict:
//! the text must be exactly the canonical encoding of a value of the expected
//! length, so one signature or key has exactly one spelling and a record id
//! cannot be changed by re-spelling a field.

use sodiumoxide::base64::{self, Variant};

/// Encodes bytes as padded standard Base64.
pub fn b64_encode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    b64_encode_into(bytes, &mut text);
    text
}

/// The standard Base64 alphabet (RFC 4648 §4).
const B64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Appends padded standard Base64 of `bytes` to `out` without allocating:
/// for texts written piece by piece (a proof's siblings in a reply, the
/// store's packed texts spelled back on every read). Not constant-time: no
/// secret is ever encoded.
pub fn b64_encode_into(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len().div_ceil(3) * 4);
    let mut spelled = [0u8; ENCODE_BLOCK / 3 * 4];
    for block in bytes.chunks(ENCODE_BLOCK) {
        let mut n = 0;
        for chunk in block.chunks(3) {
            spelled[n..n + 4].copy_from_slice(&b64_quad(chunk));
            n += 4;
        }
        out.push_str(std::str::from_utf8(&spelled[..n]).expect("Base64 is ASCII"));
    }
}

/// Bytes encoded in one step of [`b64_encode_into`]: spelled in a buffer
/// on the stack and appended at once, rather than a character at a time.
const ENCODE_BLOCK: usize = 48;

/// The four characters of one group of 1 to 3 bytes, padded.
fn b64_quad(chunk: &[u8]) -> [u8; 4] {
    let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
    let bits = byte(0) << 16 | byte(1) << 8 | byte(2);
    let digit = |i: usize| B64_ALPHABET[(bits >> (18 - 6 * i)) as usize & 63];
    [
        digit(0),
        digit(1),
        if chunk.len() > 1 { digit(2) } else { b'=' },
        if chunk.len() > 2 { digit(3) } else { b'=' },
    ]
}

/// The bytes `text` spells as canonical padded standard Base64 of any
/// length (non-empty), or `None`. Not constant-time, unlike libsodium's
/// decoder: for texts that hold no secret, which the store decodes for
/// every text it packs.
pub fn b64_decode_public(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || text.len() % 4 != 0 {
        return None;
    }
    let pad = text.bytes().rev().take_while(|&c| c == b'=').count();
    let mut bytes = Vec::with_capacity(text.len() / 4 * 3);
    for chunk in text.as_bytes().chunks(4) {
        let bits = chunk
            .iter()
            .try_fold(0u32, |acc, &c| Some(acc << 6 | b64_value(c)?))?;
        bytes.extend_from_slice(&bits.to_be_bytes()[1..]);
    }
    bytes.truncate(bytes.len().checked_sub(pad)?);
    let mut again = String::with_capacity(text.len());
    b64_encode_into(&bytes, &mut again);
    (again == text).then_some(bytes)
}

/// The value of one Base64 digit; padding reads as 0 and is checked by
/// encoding again.
fn b64_value(c: u8) -> Option<u32> {
    let value = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        b'=' => 0,
        _ => return None,
    };
    Some(u32::from(value))
}

/// Decodes canonical padded standard Base64 of exactly `N` bytes.
///
/// Returns `None` for anything else: wrong alphabet, missing padding,
/// non-zero trailing bits, or a different length.
pub fn b64_decode_exact<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = base64::decode(text, Variant::Original).ok()?;
    let array: [u8; N] = bytes.try_into().ok()?;
    (b64_encode(&array) == text).then_some(array)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_spells_as_libsodium_does() {
        let bytes: Vec<u8> = (0..70u32).map(|i| (i * 97 + 13) as u8).collect();
        for len in 0..bytes.len() {
            let libsodium = base64::encode(&bytes[..len], Variant::Original);
            let mut out = String::from("x");
            b64_encode_into(&bytes[..len], &mut out);
            assert_eq!(out[1..], libsodium, "{len} bytes");
            assert_eq!(b64_encode(&bytes[..len]), libsodium, "{len} bytes");
        }
    }

    #[test]
    fn public_decoding_takes_only_the_canonical_spelling() {
        let bytes: Vec<u8> = (0..70u32).map(|i| (i * 97 + 13) as u8).collect();
        for len in 1..bytes.len() {
            let text = b64_encode(&bytes[..len]);
            assert_eq!(b64_decode_public(&text).as_deref(), Some(&bytes[..len]));
        }
        for other in [
            "", "+/8AEB==", "+/8AEA", "-_8AEA==", "A===", "AA=A", "====", "+/8=AEA=",
        ] {
            assert_eq!(b64_decode_public(other), None, "{other:?}");
        }
    }

    #[test]
    fn round_trips_and_rejects_other_spellings() {
        let bytes = [0xfbu8, 0xff, 0x00, 0x10];
        let text = b64_encode(&bytes);
        assert_eq!(text, "+/8AEA==");
        assert_eq!(b64_decode_exact::<4>(&text), Some(bytes));
        assert_eq!(
            b64_decode_exact::<4>("+/8AEB=="),
            None,
            "non-zero trailing bits"
        );
        assert_eq!(b64_decode_exact::<4>("+/8AEA"), None, "missing padding");
        assert_eq!(b64_decode_exact::<3>(&text), None, "wrong length");
        assert_eq!(b64_decode_exact::<4>("-_8AEA=="), None, "url alphabet");
    }
}
