//! The flags of `onions-hs` and its subcommands: their one definition
//! (argh derives parsing and `--help` from it; the completions and the
//! man page are checked against it), and the config-file table of `claim`.

use argh::FromArgs;
use onions::cli::Flag;
use onions::operator::{self};
use onions::work::{self};
use std::path::{Path, PathBuf};

#[derive(FromArgs)]
/// Claim a .tor name for an onion service, move or release it, check records, look names up.
pub(crate) struct Args {
    #[argh(subcommand)]
    pub(crate) command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
pub(crate) enum Command {
    Claim(ClaimArgs),
    Transfer(TransferArgs),
    Release(ReleaseArgs),
    Verify(VerifyArgs),
    Lookup(LookupArgs),
    Evidence(EvidenceArgs),
}

/// Declares a subcommand that makes a record and sends it to a Quorum:
/// its own flags, then the flags `claim` and `release` share (where the
/// record goes, its serial, the threads that work it), then `after`.
/// argh cannot nest one flag struct in another, so the shared flags are
/// written here once; `dry_run` and `out` are their descriptions, which
/// name what the subcommand makes.
macro_rules! sending_subcommand {
    (
        $(#[$($attr:tt)*])*
        struct $name:ident { $($own:tt)* }
        dry_run: $dry_run:tt,
        out: $out:tt,
        after { $($after:tt)* }
    ) => {
        #[derive(FromArgs)]
        $(#[$($attr)*])*
        pub(crate) struct $name {
            $($own)*
            /// the Quorum's HOST:PORT (may be a .onion)
            #[argh(option)]
            pub(crate) quorum: Option<String>,
            /// the SOCKS port of Tor (default 127.0.0.1:9050)
            #[argh(option)]
            pub(crate) socks: Option<String>,
            /// connect to the Quorum directly instead of through Tor (tests only)
            #[argh(switch)]
            pub(crate) direct: bool,
            #[doc = $dry_run]
            #[argh(switch)]
            pub(crate) dry_run: bool,
            #[doc = $out]
            #[argh(option)]
            pub(crate) out: Option<PathBuf>,
            /// the serial to use (default: one above the last this key used)
            #[argh(option)]
            pub(crate) serial: Option<u64>,
            /// where serials are remembered (default ./onions-hs.state)
            #[argh(option, default = "PathBuf::from(operator::DEFAULT_STATE_FILE)")]
            pub(crate) state: PathBuf,
            /// threads for the proof of work (default: every core)
            #[argh(option)]
            pub(crate) threads: Option<usize>,
            $($after)*
        }

        impl $name {
            /// The flags that say where the finished record goes.
            pub(crate) fn destination(&self) -> Destination<'_> {
                Destination {
                    quorum: self.quorum.as_deref(),
                    socks: self.socks.as_deref(),
                    direct: self.direct,
                    dry_run: self.dry_run,
                    out: self.out.as_deref(),
                }
            }
        }
    };
}

/// Where `claim` and `release` send what they make, as their flags say.
pub(crate) struct Destination<'a> {
    /// --quorum: the Quorum to send to.
    pub(crate) quorum: Option<&'a str>,
    /// --socks: Tor's SOCKS port.
    pub(crate) socks: Option<&'a str>,
    /// --direct: no Tor.
    pub(crate) direct: bool,
    /// --dry-run: send nothing.
    pub(crate) dry_run: bool,
    /// --out: the file for the outcome.
    pub(crate) out: Option<&'a Path>,
}

sending_subcommand! {
    #[argh(subcommand, name = "claim")]
    /// Make a record for NAME signed with the service's Tor key, do its proof of
    /// work, and send it to the Quorum through Tor (or write it with --dry-run).
    struct ClaimArgs {
        /// read flags (and name) from FILE, one "flag-name = value" a line (see the man page); flags given here win
        #[argh(option)]
        #[allow(dead_code)] // read by cli::parse_args_with_config before argh
        pub(crate) config: Option<PathBuf>,
        /// the registered name to claim, like example.tor
        #[argh(positional)]
        pub(crate) name: String,
        /// the service's hs_ed25519_secret_key, from its HiddenServiceDir
        #[argh(option)]
        pub(crate) key: PathBuf,
        /// a subdomain and its address, LABEL=ADDRESS.onion (repeatable)
        #[argh(option)]
        pub(crate) sub: Vec<String>,
        /// contact text for people, like an OpenPGP fingerprint (max 128)
        #[argh(option, default = "String::new()")]
        pub(crate) contact: String,
        /// proof-of-work difficulty in bits (default 12, the Quorum's default minimum)
        #[argh(option, default = "work::DEFAULT_WORK")]
        pub(crate) work: u64,
        /// days until the claim expires, 1 to 30 (default 30)
        #[argh(option, default = "30")]
        pub(crate) lifetime: u64,
    }
    dry_run: " do not send; print or write the finished record",
    out: " write the record (and attestation, once sent) to FILE as JSON",
    after {
        /// take the name from its current owner with the statement in FILE (from onions-hs transfer)
        #[argh(option)]
        pub(crate) transfer: Option<PathBuf>,
    }
}

#[derive(FromArgs)]
#[argh(subcommand, name = "transfer")]
/// Sign, with the key of the onion that holds NAME, a statement handing it to
/// another onion; its owner then claims NAME with --transfer FILE.
pub(crate) struct TransferArgs {
    /// the registered name to hand over, like example.tor
    #[argh(positional)]
    pub(crate) name: String,
    /// the hs_ed25519_secret_key of the onion that holds NAME now
    #[argh(option)]
    pub(crate) key: PathBuf,
    /// the v3 address that takes NAME
    #[argh(option)]
    pub(crate) to: String,
    /// the serial of NAME's live record (default: the last serial this key used)
    #[argh(option)]
    pub(crate) serial: Option<u64>,
    /// hours the statement stays valid, 1 to 24 (default 24)
    #[argh(option, default = "24")]
    pub(crate) hours: u64,
    /// write the statement to FILE (default: standard output)
    #[argh(option)]
    pub(crate) out: Option<PathBuf>,
    /// where serials are remembered (default ./onions-hs.state)
    #[argh(option, default = "PathBuf::from(operator::DEFAULT_STATE_FILE)")]
    pub(crate) state: PathBuf,
}

sending_subcommand! {
    #[argh(subcommand, name = "release")]
    /// Give NAME up: it stops resolving at once, and nobody else may claim it
    /// until the cool-down ends.
    struct ReleaseArgs {
        /// the registered name to give up, like example.tor
        #[argh(positional)]
        pub(crate) name: String,
        /// the hs_ed25519_secret_key of the onion that holds NAME
        #[argh(option)]
        pub(crate) key: PathBuf,
        /// seconds the release holds NAME before it is free (default 86400; at least the Quorum's --release-cooldown)
        #[argh(option, default = "onions::server::RELEASE_COOLDOWN")]
        pub(crate) cooldown: u64,
        /// proof-of-work difficulty in bits (default 12, the Quorum's default minimum)
        #[argh(option, default = "work::DEFAULT_WORK")]
        pub(crate) work: u64,
    }
    dry_run: " do not send; print or write the finished release",
    out: " write the release (and attestation, once sent) to FILE as JSON",
    after {}
}

#[derive(FromArgs)]
#[argh(subcommand, name = "verify")]
/// Check a record file, or a file with a "record" and its "attestation"; exit 0
/// only if valid.
pub(crate) struct VerifyArgs {
    /// the JSON file to check
    #[argh(positional)]
    pub(crate) file: PathBuf,
    /// a trusted Quorum key, Base64 (repeatable); checks the attestation
    #[argh(option)]
    pub(crate) quorum_key: Vec<String>,
    /// least proof-of-work difficulty to accept, in bits (default 0)
    #[argh(option, default = "0")]
    pub(crate) min_work: u64,
    /// check as of this Unix time instead of now
    #[argh(option)]
    pub(crate) now: Option<u64>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "lookup")]
/// Ask a mirror or the Quorum for NAME and verify the answer; or, with --onion,
/// which names point at an address, each confirmed with a verified lookup.
pub(crate) struct LookupArgs {
    /// the name to look up, like www.example.tor (or give --onion)
    #[argh(positional)]
    pub(crate) name: Option<String>,
    /// print the names that point at this v3 address instead, one a line (exit 1 when none does)
    #[argh(option)]
    pub(crate) onion: Option<String>,
    /// the server's HOST:PORT (may be a .onion)
    #[argh(option)]
    pub(crate) server: String,
    /// the SOCKS port of Tor (default 127.0.0.1:9050)
    #[argh(option)]
    pub(crate) socks: Option<String>,
    /// connect directly instead of through Tor (tests only)
    #[argh(switch)]
    pub(crate) direct: bool,
    /// a trusted Quorum key, Base64 (repeatable, at least one)
    #[argh(option)]
    pub(crate) quorum_key: Vec<String>,
    /// least proof-of-work difficulty to accept, in bits (default 0)
    #[argh(option, default = "0")]
    pub(crate) min_work: u64,
    /// oldest head accepted with the answer, in seconds (default 600; with witnesses, the age of the k-th newest cosignature)
    #[argh(option, default = "onions::lookup::DEFAULT_MAX_HEAD_AGE")]
    pub(crate) max_head_age: u64,
    /// a trusted witness key, Base64 (repeatable)
    #[argh(option)]
    pub(crate) witness_key: Vec<String>,
    /// how many trusted witnesses must have cosigned the answer's head (default: a majority of --witness-key)
    #[argh(option)]
    pub(crate) witnesses: Option<usize>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "evidence")]
/// Check an evidence file that a mirror or witness wrote, offline and with no
/// trusted key; exit 0 only if it proves that a Quorum key misbehaved.
pub(crate) struct EvidenceArgs {
    /// the evidence-*.json file to check
    #[argh(positional)]
    pub(crate) file: PathBuf,
}

/// Every flag of `claim` but `--config`, and its NAME, for config files.
pub(crate) const CLAIM_FLAGS: &[Flag] = &[
    Flag::positional("name"),
    Flag::single("key"),
    Flag::repeated("sub"),
    Flag::single("contact"),
    Flag::single("work"),
    Flag::single("lifetime"),
    Flag::single("quorum"),
    Flag::single("socks"),
    Flag::switch("direct"),
    Flag::switch("dry-run"),
    Flag::single("out"),
    Flag::single("serial"),
    Flag::single("state"),
    Flag::single("threads"),
    Flag::single("transfer"),
];
