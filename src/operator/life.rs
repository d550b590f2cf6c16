//! A name's life beyond claiming and renewing (PROTOCOL.md §12): the
//! statement that hands a name to another onion, the record that takes it
//! with that statement, and the release that gives it up. Each is checked
//! here, before minutes of proof of work are spent on a record the Quorum
//! would refuse.

use crate::keys::SigningKey;
use crate::name::RegisteredName;
use crate::onion::OnionAddress;
use crate::record::{Claim, Record};
use crate::transfer::{Transfer, TransferError};
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a transfer statement cannot be made or used.
#[derive(Debug)]
pub enum StatementError {
    /// The statement file cannot be read.
    Read(PathBuf, std::io::Error),
    /// The file is not a valid statement, or the statement does not fit the
    /// name and key it is used with.
    Invalid(PathBuf, TransferError),
    /// The statement would be refused as made (a transfer to itself, a
    /// lifetime out of range).
    Unusable(TransferError),
}

impl fmt::Display for StatementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatementError::Read(path, e) => write!(f, "{}: {e}", path.display()),
            StatementError::Invalid(path, e) => write!(f, "{}: {e}", path.display()),
            StatementError::Unusable(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for StatementError {}

/// Signs a statement handing `name`, held by `key`'s onion at `serial`, to
/// `to`, valid for `lifetime` seconds from `now`.
pub fn sign_statement(
    name: RegisteredName,
    to: OnionAddress,
    serial: u64,
    (now, lifetime): (u64, u64),
    key: &SigningKey,
) -> Result<Transfer, StatementError> {
    let statement = Transfer::sign(name, to, serial, (now, now + lifetime), key);
    statement.check_static().map_err(StatementError::Unusable)?;
    Ok(statement)
}

/// Reads the statement at `path` and checks that it hands `name` to the
/// onion of `key`, signed by its `from` key.
pub fn read_statement(
    path: &Path,
    name: &RegisteredName,
    key: &SigningKey,
) -> Result<Transfer, StatementError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| StatementError::Read(path.to_owned(), e))?;
    let invalid = |e| StatementError::Invalid(path.to_owned(), e);
    let statement = Transfer::from_json(&text).map_err(invalid)?;
    let onion = OnionAddress::from_key(key.public());
    statement
        .check_in(name, &onion, statement.serial.saturating_add(1))
        .map_err(invalid)?;
    statement.check_signature().map_err(invalid)?;
    Ok(statement)
}

/// The unsigned record taking `claim`'s name with `statement`: its serial
/// is at least one above the serial handed over.
pub fn taking(claim: Claim, statement: Transfer, key: &SigningKey) -> Record {
    let serial = claim.serial.max(statement.serial + 1);
    let mut record = Record::from_claim(Claim { serial, ..claim }, key);
    record.transfer = Some(statement);
    record
}

/// The unsigned release of `name` at `serial`, issued `now`, holding the
/// name for `cooldown` seconds, with `work` bits of proof of work.
pub fn release(
    name: RegisteredName,
    serial: u64,
    (now, cooldown): (u64, u64),
    work: u64,
    key: &SigningKey,
) -> Record {
    let claim = Claim {
        name,
        subdomains: Default::default(),
        contact: String::new(),
        serial,
        issued: now,
        expires: now + cooldown,
        work,
    };
    let mut record = Record::from_claim(claim, key);
    record.release = true;
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::tests::{key, name};

    #[test]
    fn a_statement_written_is_read_back_only_by_its_target() {
        let dir = std::env::temp_dir().join(format!("onions-life-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("statement.json");
        let to = OnionAddress::from_key(key(2).public());
        let statement = sign_statement(name(), to, 4, (1000, 600), &key(1)).unwrap();
        std::fs::write(&path, statement.to_value().to_string()).unwrap();
        assert_eq!(read_statement(&path, &name(), &key(2)).unwrap(), statement);
        assert!(matches!(
            read_statement(&path, &name(), &key(3)),
            Err(StatementError::Invalid(
                _,
                TransferError::OtherTarget { .. }
            ))
        ));
        let other = RegisteredName::parse("other.tor").unwrap();
        assert!(matches!(
            read_statement(&path, &other, &key(2)),
            Err(StatementError::Invalid(_, TransferError::OtherName { .. }))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_statement_to_itself_is_not_made() {
        let me = OnionAddress::from_key(key(1).public());
        assert!(matches!(
            sign_statement(name(), me, 4, (1000, 600), &key(1)),
            Err(StatementError::Unusable(TransferError::ToItself))
        ));
    }

    #[test]
    fn taking_raises_the_serial_above_the_one_handed_over() {
        let to = OnionAddress::from_key(key(2).public());
        let statement = sign_statement(name(), to, 9, (1000, 600), &key(1)).unwrap();
        let claim = Claim {
            name: name(),
            subdomains: Default::default(),
            contact: String::new(),
            serial: 1,
            issued: 1000,
            expires: 2000,
            work: 0,
        };
        let record = taking(claim, statement, &key(2));
        assert_eq!(record.serial, 10);
        assert!(crate::verify::check_static_rules(&record).is_ok());
    }
}
