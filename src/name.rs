//! `.tor` names (PROTOCOL.md §1): registered names, lookup names and
//! subdomain keys, parsed once at the edge and passed inward as types.
//!
//! A [`RegisteredName`] is what a record claims (`example.tor`); a
//! [`LookupName`] is what a person types (`www.example.tor`); a
//! [`SubdomainKey`] is the part before the registered name (`www`). This
//! module only checks spelling; who owns a name is the Quorum's business.

use std::fmt;

/// The top-level suffix every onions name ends with.
pub const TLD: &str = "tor";

/// Longest whole name, in characters, including the `.tor` suffix.
pub const MAX_NAME_LEN: usize = 253;

/// Longest single label, in characters.
pub const MAX_LABEL_LEN: usize = 63;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// The name does not end in `.tor`.
    NotTor,
    /// The name is longer than [`MAX_NAME_LEN`].
    TooLong(usize),
    /// A label is empty, too long, or holds a character other than
    /// `a-z`, `0-9` and `-`, or starts or ends with `-`.
    BadLabel(String),
    /// A registered name was expected but the name has subdomains.
    NotRegistered,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::NotTor => write!(f, "a name must end in .{TLD}"),
            NameError::TooLong(n) => {
                write!(
                    f,
                    "a name is at most {MAX_NAME_LEN} characters, this one has {n}"
                )
            }
            NameError::BadLabel(label) => write!(
                f,
                "label {label:?} must be 1-{MAX_LABEL_LEN} characters of a-z, 0-9 and '-', \
                 not starting or ending with '-'"
            ),
            NameError::NotRegistered => {
                write!(
                    f,
                    "a registered name is one label before .{TLD}, like example.{TLD}"
                )
            }
        }
    }
}

impl std::error::Error for NameError {}

/// Checks one label: 1–63 characters of `a-z0-9-`, no leading or trailing `-`.
fn check_label(label: &str) -> Result<(), NameError> {
    let ok = !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(NameError::BadLabel(label.to_owned()))
    }
}

/// Checks labels joined by dots (one or more).
fn check_labels(text: &str) -> Result<(), NameError> {
    text.split('.').try_for_each(check_label)
}

/// A name that a record can claim: exactly one label followed by `.tor`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegisteredName(String);

impl RegisteredName {
    /// Parses a registered name exactly as written (no case folding): the
    /// form found inside records, where the signature covers the bytes.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        let lookup = LookupName::parse(text)?;
        if lookup.subdomain().is_some() {
            return Err(NameError::NotRegistered);
        }
        Ok(lookup.registered())
    }

    /// The name as text, for example `example.tor`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The single label before `.tor`.
    pub fn label(&self) -> &str {
        &self.0[..self.0.len() - TLD.len() - 1]
    }
}

impl fmt::Display for RegisteredName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name a person looks up: `[SUB.]*LABEL.tor`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LookupName {
    text: String,
    /// Byte offset where the registered name starts in `text`.
    registered_at: usize,
}

impl LookupName {
    /// Parses a lookup name exactly as written (no case folding).
    pub fn parse(text: &str) -> Result<Self, NameError> {
        if text.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong(text.len()));
        }
        let stem = text
            .strip_suffix(TLD)
            .and_then(|s| s.strip_suffix('.'))
            .ok_or(NameError::NotTor)?;
        check_labels(stem)?;
        let registered_at = stem.rfind('.').map_or(0, |dot| dot + 1);
        Ok(LookupName {
            text: text.to_owned(),
            registered_at,
        })
    }

    /// Lower-cases what a person typed, then parses it.
    pub fn from_user(text: &str) -> Result<Self, NameError> {
        Self::parse(&text.to_ascii_lowercase())
    }

    /// The registered name this lookup falls under (`example.tor`).
    pub fn registered(&self) -> RegisteredName {
        RegisteredName(self.text[self.registered_at..].to_owned())
    }

    /// The subdomain key (`a.b` for `a.b.example.tor`), if any.
    pub fn subdomain(&self) -> Option<SubdomainKey> {
        (self.registered_at > 0)
            .then(|| SubdomainKey(self.text[..self.registered_at - 1].to_owned()))
    }

    /// The whole name as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for LookupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The subdomain part of a lookup name: one or more labels joined by `.`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubdomainKey(String);

impl SubdomainKey {
    /// Parses a subdomain key that will sit in front of `name`; the whole
    /// name must stay within [`MAX_NAME_LEN`].
    pub fn parse(text: &str, name: &RegisteredName) -> Result<Self, NameError> {
        check_labels(text)?;
        let whole = text.len() + 1 + name.as_str().len();
        if whole > MAX_NAME_LEN {
            return Err(NameError::TooLong(whole));
        }
        Ok(SubdomainKey(text.to_owned()))
    }

    /// The key as text, for example `www` or `a.b`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubdomainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lookup_names() {
        let name = LookupName::parse("a.b.example.tor").unwrap();
        assert_eq!(name.registered().as_str(), "example.tor");
        assert_eq!(name.subdomain().unwrap().as_str(), "a.b");
        let bare = LookupName::parse("example.tor").unwrap();
        assert_eq!(bare.subdomain(), None);
        assert_eq!(bare.registered().label(), "example");
    }

    #[test]
    fn folds_case_only_for_people() {
        assert!(LookupName::parse("Example.tor").is_err());
        assert_eq!(
            LookupName::from_user("WWW.Example.TOR").unwrap().as_str(),
            "www.example.tor"
        );
    }

    #[test]
    fn registered_names_have_one_label() {
        assert_eq!(
            RegisteredName::parse("www.example.tor"),
            Err(NameError::NotRegistered)
        );
        assert!(RegisteredName::parse("example.tor").is_ok());
    }

    #[test]
    fn whole_name_length_is_bounded() {
        let label = "a".repeat(63);
        let long = format!("{label}.{label}.{label}.{}.tor", "b".repeat(57));
        assert_eq!(long.len(), 253);
        assert!(LookupName::parse(&long).is_ok());
        let longer = format!("c{long}");
        assert_eq!(LookupName::parse(&longer), Err(NameError::TooLong(254)));
        let name = RegisteredName::parse("example.tor").unwrap();
        let sub = format!("{label}.{label}.{label}.{}", "b".repeat(50));
        assert!(SubdomainKey::parse(&sub, &name).is_err());
    }
}
