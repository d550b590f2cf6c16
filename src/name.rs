//! `.tor` names (PROTOCOL.md §1): registered names, lookup names and
//! subdomain keys, parsed once at the edge and passed inward as types.
//!
//! A [`RegisteredName`] is what a record claims (`example.tor`); a
//! [`LookupName`] is what a person types (`www.example.tor`); a
//! [`SubdomainKey`] is the part before the registered name (`www`). This
//! module only checks spelling; who owns a name is the Quorum's business.
//!
//! [`Host`] reads the host a stream asks Tor for: a lookup name spelled
//! `X.tor` or `X.tor.onion` (§12.6), a host under either suffix that is not
//! a lookup name, or anything else. It is the one place that decides which
//! streams are the client's.
//!
//! Either spelling may end in the one dot of a fully qualified name
//! (`example.tor.`, `example.tor.onion.`), and means the same lookup name.
//! Tor (checked with 0.4.9.11) takes such a host from a SOCKS client and
//! never strips the dot: the STREAM events and `stream-status` show
//! `example.tor.` as the target, a `*.tor` mapping does not match it, and
//! `example.tor.onion.` is no `.onion` host to Tor (it does not refuse it),
//! so unless the client claims it, the name waits for an exit circuit.
//! Tor refuses two trailing dots (or any empty label) at the SOCKS request
//! itself; `Host` calls them invalid too.

use std::fmt;

/// The top-level suffix every onions name ends with.
pub const TLD: &str = "tor";

/// The suffix a lookup name may carry after `.tor` in a host (§12.6), so
/// that Tor itself refuses the host whenever no client redirects it.
pub const ONION_SUFFIX: &str = ".onion";

/// The one dot a host may end with (a fully qualified name, `example.tor.`):
/// Tor passes it on untouched, so [`Host`] must read such a host as the
/// name it spells, or the stream would slip past the client.
const ROOT_DOT: char = '.';

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

    /// `SUB.NAME`: the name of subdomain `sub` of `name`, which
    /// [`SubdomainKey::parse`] already checked fits in front of it.
    pub fn under(sub: &SubdomainKey, name: &RegisteredName) -> Self {
        LookupName {
            text: format!("{sub}.{name}"),
            registered_at: sub.0.len() + 1,
        }
    }
}

impl From<RegisteredName> for LookupName {
    /// The registered name itself, looked up.
    fn from(name: RegisteredName) -> Self {
        LookupName {
            text: name.0,
            registered_at: 0,
        }
    }
}

impl fmt::Display for LookupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What a stream's target host is to the client (PROTOCOL.md §12.6), read
/// once where a stream comes in so that what follows holds a
/// [`LookupName`], never the host's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A lookup name, spelled `X.tor` or `X.tor.onion`, in any case, with or
    /// without one trailing dot.
    Name(LookupName),
    /// `tor`, `tor.onion`, or a host ending in `.tor` or `.tor.onion` (with
    /// any number of trailing dots) whose `X.tor` part is not a lookup name,
    /// or that ends in more than one dot: the client's to refuse.
    Invalid(NameError),
    /// Any other host (real onion addresses included): Tor's business.
    Other,
}

impl Host {
    /// Classifies a host as Tor reports it (the application's spelling,
    /// not lower-cased). Trailing dots are set aside before deciding whose
    /// the host is, so that `example.tor..` is the client's (to refuse), not
    /// Tor's; one is the root of a fully qualified name, more are an empty
    /// label.
    pub fn classify(host: &str) -> Host {
        let lower = host.to_ascii_lowercase();
        let trimmed = lower.trim_end_matches(ROOT_DOT);
        let stem = trimmed.strip_suffix(ONION_SUFFIX).unwrap_or(trimmed);
        if stem != TLD && !stem.strip_suffix(TLD).is_some_and(|s| s.ends_with('.')) {
            return Host::Other;
        }
        if lower.len() - trimmed.len() > 1 {
            return Host::Invalid(NameError::BadLabel(String::new()));
        }
        match LookupName::parse(stem) {
            Ok(name) => Host::Name(name),
            Err(e) => Host::Invalid(e),
        }
    }

    /// Whether the host is the client's (a name, or an invalid one): such a
    /// host must never reach an exit.
    pub fn is_ours(&self) -> bool {
        !matches!(self, Host::Other)
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
    fn builds_lookup_names_from_their_parts() {
        let name = RegisteredName::parse("example.tor").unwrap();
        let sub = SubdomainKey::parse("a.b", &name).unwrap();
        let under = LookupName::under(&sub, &name);
        assert_eq!(under, LookupName::parse("a.b.example.tor").unwrap());
        let bare = LookupName::from(name.clone());
        assert_eq!(bare, LookupName::parse("example.tor").unwrap());
        assert_eq!(bare.registered(), name);
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

    /// The lookup name a host stands for, or why it is refused, or `None`
    /// when it is not the client's.
    fn host(text: &str) -> Option<Result<String, NameError>> {
        match Host::classify(text) {
            Host::Name(name) => Some(Ok(name.as_str().to_owned())),
            Host::Invalid(e) => Some(Err(e)),
            Host::Other => None,
        }
    }

    #[test]
    fn hosts_spelled_tor_and_tor_onion_are_the_same_names() {
        for text in ["example.tor", "example.tor.onion", "EXAMPLE.Tor.ONION"] {
            assert_eq!(host(text), Some(Ok("example.tor".to_owned())), "{text}");
        }
        for text in ["www.example.tor", "WWW.example.TOR.onion"] {
            assert_eq!(host(text), Some(Ok("www.example.tor".to_owned())), "{text}");
        }
        let v3 = "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad";
        let under_v3 = format!("{v3}.tor.onion");
        assert_eq!(host(&under_v3), Some(Ok(format!("{v3}.tor"))));
    }

    #[test]
    fn invalid_names_under_either_suffix_are_ours_to_refuse() {
        assert_eq!(host("tor"), Some(Err(NameError::NotTor)));
        assert_eq!(host("tor.onion"), Some(Err(NameError::NotTor)));
        assert_eq!(host("TOR.ONION"), Some(Err(NameError::NotTor)));
        let bad = Some(Err(NameError::BadLabel("bad_name-".to_owned())));
        assert_eq!(host("bad_name-.tor.onion"), bad);
        assert_eq!(host("bad_name-.tor"), bad);
        assert_eq!(
            host(".tor.onion"),
            Some(Err(NameError::BadLabel(String::new())))
        );
        assert_eq!(
            host("a..tor.onion"),
            Some(Err(NameError::BadLabel(String::new())))
        );
        let long = format!("{}tor.onion", "a.".repeat(126));
        assert_eq!(host(&long), Some(Err(NameError::TooLong(255))));
        assert!(Host::classify("tor.onion").is_ours());
    }

    #[test]
    fn one_trailing_dot_is_the_same_name() {
        for text in [
            "example.tor.",
            "example.tor.onion.",
            "EXAMPLE.Tor.",
            "Example.TOR.Onion.",
        ] {
            assert_eq!(host(text), Some(Ok("example.tor".to_owned())), "{text}");
        }
        for text in ["www.example.tor.", "WWW.example.tor.onion."] {
            assert_eq!(host(text), Some(Ok("www.example.tor".to_owned())), "{text}");
        }
        // The dot is not counted: 253 characters and the dot are a name.
        let label = "a".repeat(63);
        let longest = format!("{label}.{label}.{label}.{}.tor", "b".repeat(57));
        assert_eq!(host(&format!("{longest}.")), Some(Ok(longest.clone())));
        let longer = format!("c{longest}.");
        assert_eq!(host(&longer), Some(Err(NameError::TooLong(254))));
    }

    #[test]
    fn more_than_one_trailing_dot_or_an_empty_label_is_invalid() {
        let empty = Some(Err(NameError::BadLabel(String::new())));
        for text in [
            "example.tor..",
            "example.tor...",
            "example.tor.onion..",
            "www.example.TOR..",
            "tor..",
            "a..tor.",
            ".tor.",
            ".tor.onion.",
        ] {
            assert_eq!(host(text), empty, "{text}");
            assert!(Host::classify(text).is_ours(), "{text}");
        }
        assert_eq!(host("tor."), Some(Err(NameError::NotTor)));
        assert_eq!(host("tor.onion."), Some(Err(NameError::NotTor)));
        let bad = Some(Err(NameError::BadLabel("bad_name-".to_owned())));
        assert_eq!(host("bad_name-.tor."), bad);
        assert_eq!(host("bad_name-.tor.onion."), bad);
    }

    #[test]
    fn other_hosts_pass_through() {
        let v3 = "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion";
        let upper = v3.to_ascii_uppercase();
        let sub = format!("www.{v3}");
        let tor_sub = format!("tor.{v3}");
        let rooted = format!("{v3}.");
        for text in [
            v3,
            rooted.as_str(),
            upper.as_str(),
            sub.as_str(),
            tor_sub.as_str(),
            "x.tor.onion.evil",
            "example.tor.onion.onion",
            "example.tor.onion.onion.",
            "x.tor.onion.evil.",
            "example.com.",
            "example.torr",
            "example.torr.",
            "exampletor",
            "exampletor.onion",
            "onion",
            ".onion",
            ".",
            "..",
            "example.com",
            "127.0.0.1",
            "[::1]",
            "",
        ] {
            assert_eq!(host(text), None, "{text:?}");
            assert!(!Host::classify(text).is_ours(), "{text:?}");
        }
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
