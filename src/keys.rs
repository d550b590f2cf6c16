//! ed25519 keys as Tor keeps them, and signing with Tor's expanded keys.
//!
//! Tor stores an onion service's secret key as an *expanded* key (the
//! clamped scalar `a` and the 32-byte `prefix`), with no seed, in
//! `hs_ed25519_secret_key`. libsodium's high-level API signs only from a
//! seed, so [`SigningKey::sign`] builds the signature from libsodium's
//! scalar primitives (PROTOCOL.md §2). The signature is ordinary ed25519 and
//! is checked with libsodium's ordinary verify. The Quorum keeps its own key
//! in the same file format, so one signing path serves both.

use sodiumoxide::crypto::hash::sha512;
use sodiumoxide::crypto::sign::ed25519;
use std::fmt;
use std::path::Path;

/// The 32-byte header of Tor's `hs_ed25519_secret_key` file (NUL-padded).
pub const SECRET_KEY_HEADER: &[u8] = b"== ed25519v1-secret: type0 ==";

/// The 32-byte header of Tor's `hs_ed25519_public_key` file (NUL-padded).
pub const PUBLIC_KEY_HEADER: &[u8] = b"== ed25519v1-public: type0 ==";

/// Length of Tor's key file headers.
const HEADER_LEN: usize = 32;

/// Length of an `hs_ed25519_secret_key` file.
pub const SECRET_KEY_FILE_LEN: usize = HEADER_LEN + 64;

/// Length of an `hs_ed25519_public_key` file.
pub const PUBLIC_KEY_FILE_LEN: usize = HEADER_LEN + 32;

/// Why a key file could not be used.
#[derive(Debug)]
pub enum KeyError {
    /// The file could not be read.
    Io(std::io::Error),
    /// The file is Tor's public key file, not the secret key.
    PublicKeyFile,
    /// The file has the wrong length for a Tor secret key.
    Length(usize),
    /// The file does not start with Tor's secret key header.
    Header,
    /// The scalar in the file is not a usable ed25519 secret key.
    Scalar,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Io(e) => write!(f, "cannot read it: {e}"),
            KeyError::PublicKeyFile => write!(
                f,
                "this is Tor's public key file; give hs_ed25519_secret_key from the same directory"
            ),
            KeyError::Length(n) => write!(
                f,
                "a Tor secret key file is {SECRET_KEY_FILE_LEN} bytes, this one is {n} (truncated or not a key?)"
            ),
            KeyError::Header => write!(
                f,
                "it does not start with Tor's header \"== ed25519v1-secret: type0 ==\""
            ),
            KeyError::Scalar => write!(
                f,
                "it does not hold a valid (clamped) ed25519 secret key; the file is damaged"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

#[cfg(test)]
thread_local! {
    /// Point checks made on this thread, so that tests can hold a parser
    /// to the checks it should make (each costs about a signature's time).
    pub(crate) static POINT_CHECKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A valid ed25519 public key (a point in the main subgroup).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Accepts 32 bytes only if they encode a valid ed25519 point.
    pub fn from_bytes(bytes: [u8; 32]) -> Option<Self> {
        #[cfg(test)]
        POINT_CHECKS.with(|n| n.set(n.get() + 1));
        // SAFETY: libsodium reads exactly 32 bytes from the pointer.
        let valid =
            unsafe { libsodium_sys::crypto_core_ed25519_is_valid_point(bytes.as_ptr()) } == 1;
        valid.then_some(PublicKey(bytes))
    }

    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Checks an ed25519 signature of `message` by this key.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        KeyBytes(self.0).verify(message, signature)
    }

    /// The key as Base64, as it appears in attestations and flags.
    pub fn to_base64(&self) -> String {
        crate::codec::b64_encode(&self.0)
    }

    /// Parses a Base64 key as given in `--quorum-key` or an attestation.
    pub fn from_base64(text: &str) -> Option<Self> {
        crate::codec::b64_decode_exact::<32>(text).and_then(Self::from_bytes)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

/// 32 bytes that name a key but have not been checked to be a valid point:
/// what an attestation's `quorum` field holds until it is matched against
/// the trusted keys. Checking the point costs as much as a signature
/// verification; comparing bytes with an already checked key costs nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyBytes(pub [u8; 32]);

impl KeyBytes {
    /// Parses canonical Base64 of 32 bytes.
    pub fn from_base64(text: &str) -> Option<Self> {
        crate::codec::b64_decode_exact::<32>(text).map(KeyBytes)
    }

    /// The bytes as Base64.
    pub fn to_base64(&self) -> String {
        crate::codec::b64_encode(&self.0)
    }

    /// The checked key among `keys` with these bytes, if any.
    pub fn find_in<'a>(&self, keys: &'a [PublicKey]) -> Option<&'a PublicKey> {
        keys.iter().find(|k| k.as_bytes() == &self.0)
    }

    /// Checks an ed25519 signature of `message` by these bytes. libsodium's
    /// verify refuses non-canonical and small-order keys itself. Any 64
    /// bytes may arrive from the network: the conversion to the library's
    /// type refuses some (the top bits of the last byte set) rather than
    /// panic, and those never verify.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        let key = ed25519::PublicKey(self.0);
        let Ok(sig) = ed25519::Signature::from_bytes(&signature.0) else {
            return false;
        };
        ed25519::verify_detached(&sig, message, &key)
    }
}

impl From<PublicKey> for KeyBytes {
    fn from(key: PublicKey) -> Self {
        KeyBytes(key.0)
    }
}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyBytes({})", self.to_base64())
    }
}

/// A 64-byte ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// The signature as Base64, as it appears in records and attestations.
    pub fn to_base64(&self) -> String {
        crate::codec::b64_encode(&self.0)
    }

    /// Parses canonical Base64 of exactly 64 bytes.
    pub fn from_base64(text: &str) -> Option<Self> {
        crate::codec::b64_decode_exact::<64>(text).map(Signature)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_base64())
    }
}

/// An expanded ed25519 secret key (`a`, `prefix`) and its public key.
pub struct SigningKey {
    scalar: [u8; 32],
    prefix: [u8; 32],
    public: PublicKey,
}

impl SigningKey {
    /// Builds a key from the 64 expanded bytes Tor stores (`a || prefix`).
    pub fn from_expanded(expanded: &[u8; 64]) -> Result<Self, KeyError> {
        let mut scalar = [0u8; 32];
        let mut prefix = [0u8; 32];
        scalar.copy_from_slice(&expanded[..32]);
        // Tor's keys are clamped. An unclamped scalar means a damaged file,
        // and one with the top bit set would sign with a different key than
        // the public key derived here.
        if scalar[0] & 7 != 0 || scalar[31] & 0x80 != 0 {
            return Err(KeyError::Scalar);
        }
        prefix.copy_from_slice(&expanded[32..]);
        let mut point = [0u8; 32];
        // SAFETY: both buffers are 32 bytes, as libsodium requires.
        let rc = unsafe {
            libsodium_sys::crypto_scalarmult_ed25519_base_noclamp(
                point.as_mut_ptr(),
                scalar.as_ptr(),
            )
        };
        if rc != 0 {
            return Err(KeyError::Scalar);
        }
        let public = PublicKey::from_bytes(point).ok_or(KeyError::Scalar)?;
        Ok(SigningKey {
            scalar,
            prefix,
            public,
        })
    }

    /// Expands a 32-byte seed as ed25519 (and Tor) does:
    /// `SHA-512(seed)`, the first half clamped.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let mut expanded = sha512::hash(seed).0;
        expanded[0] &= 248;
        expanded[31] &= 127;
        expanded[31] |= 64;
        // A clamped scalar is never zero, so this cannot fail.
        Self::from_expanded(&expanded).unwrap_or_else(|_| unreachable!("clamped scalar"))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        sodiumoxide::randombytes::randombytes_into(&mut seed);
        Self::from_seed(&seed)
    }

    /// Parses the contents of Tor's `hs_ed25519_secret_key`.
    pub fn from_tor_file_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() == PUBLIC_KEY_FILE_LEN && bytes.starts_with(PUBLIC_KEY_HEADER) {
            return Err(KeyError::PublicKeyFile);
        }
        if bytes.len() != SECRET_KEY_FILE_LEN {
            return Err(KeyError::Length(bytes.len()));
        }
        let (header, key) = bytes.split_at(HEADER_LEN);
        if !header.starts_with(SECRET_KEY_HEADER)
            || header[SECRET_KEY_HEADER.len()..].iter().any(|&b| b != 0)
        {
            return Err(KeyError::Header);
        }
        let mut expanded = [0u8; 64];
        expanded.copy_from_slice(key);
        Self::from_expanded(&expanded)
    }

    /// Reads Tor's `hs_ed25519_secret_key` file.
    pub fn read_tor_file(path: &Path) -> Result<Self, KeyError> {
        let bytes = std::fs::read(path).map_err(KeyError::Io)?;
        Self::from_tor_file_bytes(&bytes)
    }

    /// The contents of an `hs_ed25519_secret_key` file for this key.
    pub fn to_tor_file_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; SECRET_KEY_FILE_LEN];
        out[..SECRET_KEY_HEADER.len()].copy_from_slice(SECRET_KEY_HEADER);
        out[HEADER_LEN..HEADER_LEN + 32].copy_from_slice(&self.scalar);
        out[HEADER_LEN + 32..].copy_from_slice(&self.prefix);
        out
    }

    /// The public key that verifies this key's signatures.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// Signs `message`: `r = H(prefix||M)`, `R = rB`,
    /// `S = r + H(R||A||M)·a mod L`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        let mut state = sha512::State::new();
        state.update(&self.prefix);
        state.update(message);
        let r = reduce(&state.finalize().0);
        let mut big_r = [0u8; 32];
        // SAFETY: 32-byte output and scalar, as libsodium requires. `r` is
        // never zero in practice (probability 2^-252), and a zero would only
        // give an invalid signature, never undefined behaviour.
        unsafe {
            libsodium_sys::crypto_scalarmult_ed25519_base_noclamp(big_r.as_mut_ptr(), r.as_ptr());
        }
        let mut state = sha512::State::new();
        state.update(&big_r);
        state.update(self.public.as_bytes());
        state.update(message);
        let k = reduce(&state.finalize().0);
        let mut ka = [0u8; 32];
        let mut s = [0u8; 32];
        // SAFETY: all buffers are 32-byte scalars.
        unsafe {
            libsodium_sys::crypto_core_ed25519_scalar_mul(
                ka.as_mut_ptr(),
                k.as_ptr(),
                self.scalar.as_ptr(),
            );
            libsodium_sys::crypto_core_ed25519_scalar_add(s.as_mut_ptr(), r.as_ptr(), ka.as_ptr());
        }
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&big_r);
        sig[32..].copy_from_slice(&s);
        Signature(sig)
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        sodiumoxide::utils::memzero(&mut self.scalar);
        sodiumoxide::utils::memzero(&mut self.prefix);
    }
}

/// Reduces a 64-byte hash modulo the group order L.
fn reduce(hash: &[u8; 64]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: 32-byte output, 64-byte input, as libsodium requires.
    unsafe { libsodium_sys::crypto_core_ed25519_scalar_reduce(out.as_mut_ptr(), hash.as_ptr()) };
    out
}

/// Initialises libsodium once; every program calls it before any crypto.
pub fn init() -> Result<(), &'static str> {
    sodiumoxide::init().map_err(|()| "libsodium failed to initialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_64_bytes_are_checked_without_a_panic() {
        init().unwrap();
        let key = SigningKey::from_seed(&[7u8; 32]);
        let mut sig = key.sign(b"message");
        assert!(key.public().verify(b"message", &sig));
        for last in [0x20, 0x40, 0x80, 0xff] {
            sig.0[63] |= last;
            assert!(!key.public().verify(b"message", &sig), "{last:#x}");
        }
    }

    #[test]
    fn expanded_signatures_verify_with_plain_ed25519() {
        init().unwrap();
        let key = SigningKey::from_seed(&[7u8; 32]);
        let (pk, sk) = ed25519::keypair_from_seed(&ed25519::Seed([7u8; 32]));
        assert_eq!(key.public().as_bytes(), &pk.0);
        let sig = key.sign(b"hello");
        assert_eq!(sig.0, ed25519::sign_detached(b"hello", &sk).to_bytes());
        assert!(key.public().verify(b"hello", &sig));
        assert!(!key.public().verify(b"hellO", &sig));
    }

    #[test]
    fn tor_file_round_trips() {
        init().unwrap();
        let key = SigningKey::generate();
        let bytes = key.to_tor_file_bytes();
        let again = SigningKey::from_tor_file_bytes(&bytes).unwrap();
        assert_eq!(again.public(), key.public());
        assert!(matches!(
            SigningKey::from_tor_file_bytes(&bytes[..95]),
            Err(KeyError::Length(95))
        ));
    }
}
