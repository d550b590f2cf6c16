//! The transfer statement (PROTOCOL.md §12.2): the owner of a live name,
//! signing with the key of the onion that holds it, hands the name to
//! another onion address.
//!
//! The new owner carries the statement in its record's `transfer` key; the
//! record is parsed with it ([`crate::record::Record::from_value`]) and
//! every verifier checks it with the record ([`Transfer::check_in`], called
//! from [`crate::verify`]). What needs the live set (who holds the name now,
//! at which serial) is the Quorum's and a witness's business.

use crate::canonical;
use crate::canonical::INT_LIMIT;
use crate::keys::{Signature, SigningKey};
use crate::name::{NameError, RegisteredName};
use crate::onion::{OnionAddress, OnionError};
use serde_json::{Map, Value};
use std::fmt;

/// The statement format version this code speaks.
pub const VERSION: u64 = 1;
/// Longest lifetime of a statement, `expires - issued`, in seconds (one day).
pub const MAX_LIFETIME: u64 = 24 * 60 * 60;

/// Domain separator of statement signatures.
const SIGNATURE_CONTEXT: &str = "onions-transfer-v1\n";

/// Every key of a statement, in canonical order.
const KEYS: [&str; 8] = [
    "expires", "from", "issued", "name", "serial", "sig", "to", "v",
];

/// Why a statement is refused on its own or in the record carrying it.
/// Every variant is the wire code `bad_transfer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferError {
    /// Not an object, a key missing or extra, or a field of the wrong type.
    Shape(String),
    /// `v` is not 1.
    Version(u64),
    /// `name` is not a registered name.
    Name(NameError),
    /// `from` or `to` is not a valid v3 address.
    Onion {
        /// Which field held the address.
        field: &'static str,
        /// What was wrong with it.
        error: OnionError,
    },
    /// `from` and `to` are the same onion: an owner's own update needs no
    /// statement.
    ToItself,
    /// `serial` is 0.
    Serial,
    /// `expires` is not after `issued`, or more than a day after it.
    Lifetime {
        /// The statement's `issued`.
        issued: u64,
        /// The statement's `expires`.
        expires: u64,
    },
    /// The statement hands over another name than the record claims.
    OtherName {
        /// The name in the statement.
        statement: RegisteredName,
        /// The name the record claims.
        record: RegisteredName,
    },
    /// The statement hands the name to another onion than the record's.
    OtherTarget {
        /// The statement's `to`.
        to: OnionAddress,
        /// The record's `onion`.
        record: OnionAddress,
    },
    /// The record's serial is not above the serial handed over.
    SerialNotAbove {
        /// The statement's `serial`.
        statement: u64,
        /// The record's `serial`.
        record: u64,
    },
    /// `sig` does not verify with the key of `from`.
    BadSignature,
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::Shape(why) => write!(f, "transfer statement is malformed: {why}"),
            TransferError::Version(v) => write!(
                f,
                "transfer statement version {v} is not supported (only {VERSION})"
            ),
            TransferError::Name(e) => write!(f, "transfer statement name is invalid: {e}"),
            TransferError::Onion { field, error } => {
                write!(f, "transfer statement field {field}: {error}")
            }
            TransferError::ToItself => write!(
                f,
                "transfer statement hands the name to the onion that holds it; an owner's own update needs none"
            ),
            TransferError::Serial => write!(f, "transfer statement serial must be at least 1"),
            TransferError::Lifetime { issued, expires } => write!(
                f,
                "transfer statement expires ({expires}) must be after issued ({issued}) and at most one day later"
            ),
            TransferError::OtherName { statement, record } => write!(
                f,
                "transfer statement is for {statement}, the record claims {record}"
            ),
            TransferError::OtherTarget { to, record } => write!(
                f,
                "transfer statement hands the name to {to}, not to this record's onion {record}"
            ),
            TransferError::SerialNotAbove { statement, record } => write!(
                f,
                "record serial {record} must be above the serial handed over ({statement})"
            ),
            TransferError::BadSignature => write!(
                f,
                "transfer statement signature does not verify with the key of its from address"
            ),
        }
    }
}

impl std::error::Error for TransferError {}

/// A parsed transfer statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The registered name handed over.
    pub name: RegisteredName,
    /// The onion whose live record holds the name; its key signs.
    pub from: OnionAddress,
    /// The onion that takes the name.
    pub to: OnionAddress,
    /// The serial of `from`'s live record being handed over.
    pub serial: u64,
    /// Unix seconds when signed.
    pub issued: u64,
    /// Unix seconds after which the Quorum refuses it.
    pub expires: u64,
    /// The signature by the key of `from`.
    pub sig: Signature,
}

impl Transfer {
    /// Signs a statement handing `name` (held by `key`'s onion at `serial`)
    /// to `to`, valid from `issued` to `expires`.
    pub fn sign(
        name: RegisteredName,
        to: OnionAddress,
        serial: u64,
        (issued, expires): (u64, u64),
        key: &SigningKey,
    ) -> Transfer {
        let mut statement = Transfer {
            name,
            from: OnionAddress::from_key(key.public()),
            to,
            serial,
            issued,
            expires,
            sig: Signature([0u8; 64]),
        };
        statement.sig = key.sign(&statement.signed_bytes());
        statement
    }

    /// What `sig` signs: the context line and the statement without `sig`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        canonical::signed_bytes(SIGNATURE_CONTEXT, self.unsigned_map())
    }

    /// The statement as JSON, all keys included.
    pub fn to_value(&self) -> Value {
        canonical::with_sig(self.unsigned_map(), self.sig.to_base64())
    }

    /// Parses a statement from JSON, checking its shape and each field
    /// (but not the rules between fields or the signature: see
    /// [`Transfer::check_in`]).
    pub fn from_value(value: &Value) -> Result<Transfer, TransferError> {
        let map = value
            .as_object()
            .ok_or_else(|| TransferError::Shape("must be a JSON object".into()))?;
        if let Some(extra) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(TransferError::Shape(format!("unknown key {extra:?}")));
        }
        if let Some(missing) = KEYS.iter().find(|k| !map.contains_key(**k)) {
            return Err(TransferError::Shape(format!("missing key {missing:?}")));
        }
        let version = int(map, "v")?;
        if version != VERSION {
            return Err(TransferError::Version(version));
        }
        let sig = Signature::from_base64(string(map, "sig")?)
            .ok_or_else(|| TransferError::Shape("sig must be Base64 of 64 bytes".into()))?;
        Ok(Transfer {
            name: RegisteredName::parse(string(map, "name")?).map_err(TransferError::Name)?,
            from: address(map, "from")?,
            to: address(map, "to")?,
            serial: int(map, "serial")?,
            issued: int(map, "issued")?,
            expires: int(map, "expires")?,
            sig,
        })
    }

    /// Parses a statement from JSON text (a file `onions-hs transfer` wrote).
    pub fn from_json(text: &str) -> Result<Transfer, TransferError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| TransferError::Shape(format!("not valid JSON: {e}")))?;
        Transfer::from_value(&value)
    }

    /// The checks every verifier runs on a statement carried by a record
    /// claiming `name` for `onion` at `serial` (§12.2), with no clock and
    /// no cryptography (the signature is [`Transfer::check_signature`]).
    pub fn check_in(
        &self,
        name: &RegisteredName,
        onion: &OnionAddress,
        serial: u64,
    ) -> Result<(), TransferError> {
        self.check_static()?;
        if &self.name != name {
            return Err(TransferError::OtherName {
                statement: self.name.clone(),
                record: name.clone(),
            });
        }
        if &self.to != onion {
            return Err(TransferError::OtherTarget {
                to: self.to,
                record: *onion,
            });
        }
        if serial <= self.serial {
            return Err(TransferError::SerialNotAbove {
                statement: self.serial,
                record: serial,
            });
        }
        Ok(())
    }

    /// Checks `sig` against the key of `from`.
    pub fn check_signature(&self) -> Result<(), TransferError> {
        if self.from.key().verify(&self.signed_bytes(), &self.sig) {
            Ok(())
        } else {
            Err(TransferError::BadSignature)
        }
    }

    /// The statement's own rules: two onions, serial, lifetime.
    pub fn check_static(&self) -> Result<(), TransferError> {
        if self.from == self.to {
            return Err(TransferError::ToItself);
        }
        if self.serial == 0 {
            return Err(TransferError::Serial);
        }
        if self.expires <= self.issued || self.expires - self.issued > MAX_LIFETIME {
            return Err(TransferError::Lifetime {
                issued: self.issued,
                expires: self.expires,
            });
        }
        Ok(())
    }

    fn unsigned_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("v".into(), VERSION.into());
        map.insert("name".into(), self.name.as_str().into());
        map.insert("from".into(), self.from.to_string().into());
        map.insert("to".into(), self.to.to_string().into());
        map.insert("serial".into(), self.serial.into());
        map.insert("issued".into(), self.issued.into());
        map.insert("expires".into(), self.expires.into());
        map
    }
}

/// An integer field, below 2^53.
fn int(map: &Map<String, Value>, key: &str) -> Result<u64, TransferError> {
    map.get(key)
        .and_then(Value::as_u64)
        .filter(|n| *n < INT_LIMIT)
        .ok_or_else(|| TransferError::Shape(format!("{key} must be an integer from 0 to 2^53 - 1")))
}

/// A string field.
fn string<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a str, TransferError> {
    map.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| TransferError::Shape(format!("{key} must be a string")))
}

/// A v3 address field.
fn address(map: &Map<String, Value>, field: &'static str) -> Result<OnionAddress, TransferError> {
    OnionAddress::parse(string(map, field)?).map_err(|error| TransferError::Onion { field, error })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The `n`th test key; statements here and in `operator::life` pass
    /// between these.
    pub(crate) fn key(n: u8) -> SigningKey {
        SigningKey::from_seed(&[n; 32])
    }

    /// The name the statements of the tests hand over.
    pub(crate) fn name() -> RegisteredName {
        RegisteredName::parse("example.tor").unwrap()
    }

    fn statement() -> Transfer {
        let to = OnionAddress::from_key(key(2).public());
        Transfer::sign(name(), to, 3, (1000, 2000), &key(1))
    }

    #[test]
    fn a_signed_statement_round_trips_and_checks() {
        let t = statement();
        let back = Transfer::from_value(&t.to_value()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.check_in(&name(), &t.to, 4), Ok(()));
        assert_eq!(back.check_signature(), Ok(()));
    }

    #[test]
    fn each_binding_is_checked() {
        let t = statement();
        let other = RegisteredName::parse("other.tor").unwrap();
        assert!(matches!(
            t.check_in(&other, &t.to, 4),
            Err(TransferError::OtherName { .. })
        ));
        let elsewhere = OnionAddress::from_key(key(9).public());
        assert!(matches!(
            t.check_in(&name(), &elsewhere, 4),
            Err(TransferError::OtherTarget { .. })
        ));
        assert!(matches!(
            t.check_in(&name(), &t.to, 3),
            Err(TransferError::SerialNotAbove { .. })
        ));
        let mut forged = t.clone();
        forged.from = OnionAddress::from_key(key(7).public());
        assert_eq!(forged.check_signature(), Err(TransferError::BadSignature));
    }

    #[test]
    fn lifetime_and_self_transfer_are_refused() {
        let to = OnionAddress::from_key(key(2).public());
        let long = Transfer::sign(name(), to, 3, (1000, 1000 + MAX_LIFETIME + 1), &key(1));
        assert!(matches!(
            long.check_static(),
            Err(TransferError::Lifetime { .. })
        ));
        let me = OnionAddress::from_key(key(1).public());
        let own = Transfer::sign(name(), me, 3, (1000, 2000), &key(1));
        assert_eq!(own.check_static(), Err(TransferError::ToItself));
    }

    #[test]
    fn shape_errors_name_the_key() {
        let mut value = statement().to_value();
        value["extra"] = 1.into();
        assert!(
            matches!(Transfer::from_value(&value), Err(TransferError::Shape(w)) if w.contains("extra"))
        );
        let mut value = statement().to_value();
        value.as_object_mut().unwrap().remove("serial");
        assert!(
            matches!(Transfer::from_value(&value), Err(TransferError::Shape(w)) if w.contains("serial"))
        );
    }
}
