//! Base64 (RFC 4648 §4, standard alphabet, padded) and strict decoding.
//!
//! Every Base64 string in the protocol is decoded here. Decoding is strict:
//! the text must be exactly the canonical encoding of a value of the expected
//! length, so one signature or key has exactly one spelling and a record id
//! cannot be changed by re-spelling a field.

use sodiumoxide::base64::{self, Variant};

/// Encodes bytes as padded standard Base64.
pub fn b64_encode(bytes: &[u8]) -> String {
    base64::encode(bytes, Variant::Original)
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
