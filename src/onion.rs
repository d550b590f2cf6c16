//! Tor v3 onion addresses (PROTOCOL.md §2).
//!
//! `base32(PUBKEY || CHECKSUM || VERSION).onion`, lower case. An
//! [`OnionAddress`] only exists once its checksum, version and key have been
//! checked, so code that holds one never re-validates it.

use crate::keys::PublicKey;
use sha3::{Digest, Sha3_256};
use std::fmt;

/// Characters before `.onion` in a v3 address.
pub const ENCODED_LEN: usize = 56;

/// The version byte of v3 addresses.
const VERSION: u8 = 0x03;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Why an onion address was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnionError {
    /// Not 56 lower-case base32 characters followed by `.onion`.
    Format,
    /// The version byte is not 3.
    Version(u8),
    /// The two checksum bytes do not match the key.
    Checksum,
    /// The 32 bytes are not a valid ed25519 public key.
    Key,
}

impl fmt::Display for OnionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnionError::Format => write!(
                f,
                "a v3 onion address is {ENCODED_LEN} lower-case base32 characters followed by .onion"
            ),
            OnionError::Version(v) => write!(f, "onion address version is {v}, only 3 is valid"),
            OnionError::Checksum => write!(f, "onion address checksum is wrong (a typo?)"),
            OnionError::Key => write!(f, "onion address does not hold a valid ed25519 key"),
        }
    }
}

impl std::error::Error for OnionError {}

/// A checked v3 onion address: the service's ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OnionAddress(PublicKey);

impl OnionAddress {
    /// Parses `<56 chars>.onion`, checking checksum, version and key.
    pub fn parse(text: &str) -> Result<Self, OnionError> {
        let raw = decode_shape(text).ok_or(OnionError::Format)?;
        let version = raw[34];
        if version != VERSION {
            return Err(OnionError::Version(version));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&raw[..32]);
        if raw[32..34] != checksum(&key) {
            return Err(OnionError::Checksum);
        }
        let key = PublicKey::from_bytes(key).ok_or(OnionError::Key)?;
        Ok(OnionAddress(key))
    }

    /// The address of the service whose key is `key`.
    pub fn from_key(key: PublicKey) -> Self {
        OnionAddress(key)
    }

    /// The key bytes that `text` spells, when it has the shape of a v3
    /// address, without checking its checksum, version or key point: for
    /// addresses that were checked when they were stored (the store's
    /// reverse index reads many and checking each point would cost as
    /// much as a signature).
    pub fn unchecked_key(text: &str) -> Option<[u8; 32]> {
        decode_shape(text)?[..32].try_into().ok()
    }

    /// The first three bytes of the key of the address `text`, decoded from
    /// its first eight characters after checking only its length, its
    /// `.onion` and those characters: for indexes built over records that
    /// were verified when stored, where decoding the whole key of each
    /// would cost more than the rest of reading them.
    pub fn unchecked_key_prefix(text: &str) -> Option<[u8; 3]> {
        let encoded = text.strip_suffix(".onion")?;
        if encoded.len() != ENCODED_LEN {
            return None;
        }
        let raw = base32_decode(&encoded[..8])?;
        Some([raw[0], raw[1], raw[2]])
    }

    /// The service's public key, which signs its records.
    pub fn key(&self) -> &PublicKey {
        &self.0
    }
}

impl fmt::Display for OnionAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.0.as_bytes();
        let mut text = String::with_capacity(ENCODED_LEN + ".onion".len());
        spell_into(key, checksum(key), &mut text);
        f.write_str(&text)
    }
}

/// Appends the v3 address of `key` with the given checksum, unchecked, to
/// `out`: for texts stored packed (the store keeps an address's key and
/// checksum and spells it back on every read, where hashing again would
/// cost more).
pub fn spell_into(key: &[u8; 32], checksum: [u8; 2], out: &mut String) {
    let mut raw = [0u8; 35];
    raw[..32].copy_from_slice(key);
    raw[32..34].copy_from_slice(&checksum);
    raw[34] = VERSION;
    base32_encode_into(&raw, out);
    out.push_str(".onion");
}

/// The key and checksum that `text` spells, when it has the shape of a v3
/// address with version 3, without checking the checksum or the key point:
/// [`spell_into`] spells them back to exactly `text`.
pub fn unchecked_parts(text: &str) -> Option<([u8; 32], [u8; 2])> {
    let raw = decode_shape(text)?;
    if raw[34] != VERSION {
        return None;
    }
    Some((raw[..32].try_into().ok()?, [raw[32], raw[33]]))
}

/// `SHA3-256(".onion checksum" || PUBKEY || VERSION)[0..2]`: the checksum
/// a v3 address of `key` carries.
pub fn checksum(key: &[u8; 32]) -> [u8; 2] {
    let mut hasher = Sha3_256::new();
    hasher.update(b".onion checksum");
    hasher.update(key);
    hasher.update([VERSION]);
    let digest = hasher.finalize();
    [digest[0], digest[1]]
}

/// The 35 bytes `text` spells when it has the shape of a v3 address: 56
/// lower-case base32 characters and `.onion`. Nothing in them is checked.
fn decode_shape(text: &str) -> Option<[u8; 35]> {
    let encoded = text.strip_suffix(".onion")?;
    if encoded.len() != ENCODED_LEN {
        return None;
    }
    base32_decode(encoded)
}

/// Appends RFC 4648 base32, lower case, of 35 bytes (exactly 56
/// characters) to `out`.
fn base32_encode_into(raw: &[u8; 35], out: &mut String) {
    for chunk in raw.chunks(5) {
        let bits = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        for i in (0..8).rev() {
            out.push(ALPHABET[((bits >> (i * 5)) & 31) as usize] as char);
        }
    }
}

/// The value of one lower-case base32 digit.
fn base32_value(c: u8) -> Option<u8> {
    match c {
        b'a'..=b'z' => Some(c - b'a'),
        b'2'..=b'7' => Some(c - b'2' + 26),
        _ => None,
    }
}

/// Decodes 56 lower-case base32 characters into 35 bytes.
fn base32_decode(text: &str) -> Option<[u8; 35]> {
    let mut raw = [0u8; 35];
    for (chunk, out) in text.as_bytes().chunks(8).zip(raw.chunks_mut(5)) {
        let mut bits = 0u64;
        for &c in chunk {
            bits = (bits << 5) | u64::from(base32_value(c)?);
        }
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = (bits >> (32 - 8 * i)) as u8;
        }
    }
    Some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_prefix_is_the_keys_first_three_bytes() {
        crate::keys::init().unwrap();
        for seed in 0..64u8 {
            let key = crate::keys::SigningKey::from_seed(&[seed; 32]).public();
            let text = OnionAddress::from_key(key).to_string();
            let want: [u8; 3] = key.as_bytes()[..3].try_into().unwrap();
            assert_eq!(OnionAddress::unchecked_key_prefix(&text), Some(want));
        }
        assert_eq!(OnionAddress::unchecked_key_prefix("abcde.onion"), None);
        let upper = format!("{}.onion", "A".repeat(ENCODED_LEN));
        assert_eq!(OnionAddress::unchecked_key_prefix(&upper), None);
    }

    #[test]
    fn base32_round_trips() {
        let mut raw = [0u8; 35];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = (i * 37 + 11) as u8;
        }
        let mut text = String::new();
        base32_encode_into(&raw, &mut text);
        assert_eq!(base32_decode(&text), Some(raw));
    }

    #[test]
    fn unchecked_parts_spell_back_the_address() {
        let key = crate::keys::SigningKey::from_seed(&[5; 32]).public();
        let text = OnionAddress::from_key(key).to_string();
        let (raw_key, sum) = unchecked_parts(&text).unwrap();
        assert_eq!((&raw_key, sum), (key.as_bytes(), checksum(key.as_bytes())));
        let mut again = String::new();
        spell_into(&raw_key, sum, &mut again);
        assert_eq!(again, text);
        let mut raw = [0u8; 35];
        raw[34] = 4;
        let mut version_4 = String::new();
        base32_encode_into(&raw, &mut version_4);
        version_4.push_str(".onion");
        assert_eq!(unchecked_parts(&version_4), None);
    }

    #[test]
    fn base32_digits_are_the_alphabet() {
        for (i, c) in ALPHABET.iter().enumerate() {
            assert_eq!(base32_value(*c), Some(i as u8));
        }
        for c in [b'A', b'0', b'1', b'8', b'=', b'.', 0xff] {
            assert_eq!(base32_value(c), None);
        }
    }

    #[test]
    fn refuses_non_base32() {
        let text = format!("{}.onion", "1".repeat(56));
        assert_eq!(OnionAddress::parse(&text), Err(OnionError::Format));
    }
}
