//! `onions-hs`: the onion-service operator's tool. Claims a `.tor` name with
//! the service's own Tor key, checks record files, and looks names up.

use argh::FromArgs;
use onions::attest::Attestation;
use onions::cli::{self, ConfigScope, Flag};
use onions::clock;
use onions::evidence::EvidenceFile;
use onions::keys::SigningKey;
use onions::lookup::{self, Policy, Resolution, Witnessed};
use onions::name::{LookupName, RegisteredName, SubdomainKey};
use onions::onion::OnionAddress;
use onions::operator::{self, OutputFile, SerialBook};
use onions::record::{Claim, Record, MAX_LIFETIME};
use onions::transport::{self, Endpoint};
use onions::verify::Verifier;
use onions::wire::{Id, Request};
use onions::work::{self, Progress};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(FromArgs)]
/// Claim a .tor name for an onion service, check records, look names up.
struct Args {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Claim(ClaimArgs),
    Verify(VerifyArgs),
    Lookup(LookupArgs),
    Evidence(EvidenceArgs),
}

#[derive(FromArgs)]
#[argh(subcommand, name = "claim")]
/// Make a record for NAME signed with the service's Tor key, do its proof of
/// work, and send it to the Quorum through Tor (or write it with --dry-run).
struct ClaimArgs {
    /// read flags (and name) from FILE, one "flag-name = value" a line (see the man page); flags given here win
    #[argh(option)]
    #[allow(dead_code)] // read by cli::parse_args_with_config before argh
    config: Option<PathBuf>,
    /// the registered name to claim, like example.tor
    #[argh(positional)]
    name: String,
    /// the service's hs_ed25519_secret_key, from its HiddenServiceDir
    #[argh(option)]
    key: PathBuf,
    /// a subdomain and its address, LABEL=ADDRESS.onion (repeatable)
    #[argh(option)]
    sub: Vec<String>,
    /// contact text for people, like an OpenPGP fingerprint (max 128)
    #[argh(option, default = "String::new()")]
    contact: String,
    /// proof-of-work difficulty in bits (default 12, the Quorum's default minimum)
    #[argh(option, default = "work::DEFAULT_WORK")]
    work: u64,
    /// days until the claim expires, 1 to 30 (default 30)
    #[argh(option, default = "30")]
    lifetime: u64,
    /// the Quorum's HOST:PORT (may be a .onion)
    #[argh(option)]
    quorum: Option<String>,
    /// the SOCKS port of Tor (default 127.0.0.1:9050)
    #[argh(option)]
    socks: Option<String>,
    /// connect to the Quorum directly instead of through Tor (tests only)
    #[argh(switch)]
    direct: bool,
    /// do not send; print or write the finished record
    #[argh(switch)]
    dry_run: bool,
    /// write the record (and attestation, once sent) to FILE as JSON
    #[argh(option)]
    out: Option<PathBuf>,
    /// the serial to use (default: one above the last this key used)
    #[argh(option)]
    serial: Option<u64>,
    /// where serials are remembered (default ./onions-hs.state)
    #[argh(option, default = "PathBuf::from(operator::DEFAULT_STATE_FILE)")]
    state: PathBuf,
    /// threads for the proof of work (default: every core)
    #[argh(option)]
    threads: Option<usize>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "verify")]
/// Check a record file, or a file with a "record" and its "attestation"; exit 0
/// only if valid.
struct VerifyArgs {
    /// the JSON file to check
    #[argh(positional)]
    file: PathBuf,
    /// a trusted Quorum key, Base64 (repeatable); checks the attestation
    #[argh(option)]
    quorum_key: Vec<String>,
    /// least proof-of-work difficulty to accept, in bits (default 0)
    #[argh(option, default = "0")]
    min_work: u64,
    /// check as of this Unix time instead of now
    #[argh(option)]
    now: Option<u64>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "lookup")]
/// Ask a mirror or the Quorum for NAME and verify the answer.
struct LookupArgs {
    /// the name to look up, like www.example.tor
    #[argh(positional)]
    name: String,
    /// the server's HOST:PORT (may be a .onion)
    #[argh(option)]
    server: String,
    /// the SOCKS port of Tor (default 127.0.0.1:9050)
    #[argh(option)]
    socks: Option<String>,
    /// connect directly instead of through Tor (tests only)
    #[argh(switch)]
    direct: bool,
    /// a trusted Quorum key, Base64 (repeatable, at least one)
    #[argh(option)]
    quorum_key: Vec<String>,
    /// least proof-of-work difficulty to accept, in bits (default 0)
    #[argh(option, default = "0")]
    min_work: u64,
    /// oldest head accepted with the answer, in seconds (default 600; with witnesses, the age of the k-th newest cosignature)
    #[argh(option, default = "onions::lookup::DEFAULT_MAX_HEAD_AGE")]
    max_head_age: u64,
    /// a trusted witness key, Base64 (repeatable)
    #[argh(option)]
    witness_key: Vec<String>,
    /// how many trusted witnesses must have cosigned the answer's head (default: a majority of --witness-key)
    #[argh(option)]
    witnesses: Option<usize>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "evidence")]
/// Check an evidence file that a mirror or witness wrote, offline and with no
/// trusted key; exit 0 only if it proves that a Quorum key misbehaved.
struct EvidenceArgs {
    /// the evidence-*.json file to check
    #[argh(positional)]
    file: PathBuf,
}

/// Every flag of `claim` but `--config`, and its NAME, for config files.
const CLAIM_FLAGS: &[Flag] = &[
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
];

fn main() {
    let args: Args = cli::parse_args_with_config(
        "onions-hs",
        &[ConfigScope {
            subcommand: Some("claim"),
            flags: CLAIM_FLAGS,
        }],
    );
    cli::run("onions-hs", || match args.command {
        Command::Claim(a) => claim(a),
        Command::Verify(a) => verify(a),
        Command::Lookup(a) => lookup(a),
        Command::Evidence(a) => evidence(a),
    });
}

fn claim(args: ClaimArgs) -> Result<(), String> {
    let quorum = match (&args.quorum, args.dry_run) {
        (Some(_), true) => return Err("--quorum and --dry-run exclude each other".into()),
        (None, false) => {
            return Err("give --quorum HOST:PORT to send the claim, or --dry-run".into())
        }
        (Some(q), false) => Some(Endpoint::parse(q).map_err(|e| format!("--quorum {e}"))?),
        (None, true) => None,
    };
    let route = cli::route(args.socks.as_deref(), args.direct).map_err(|e| e.to_string())?;
    let key =
        SigningKey::read_tor_file(&args.key).map_err(|e| format!("{}: {e}", args.key.display()))?;
    let claim = build_claim(&args)?;
    let out = args
        .out
        .as_deref()
        .map(OutputFile::create)
        .transpose()
        .map_err(|e| e.to_string())?;
    let mut book = SerialBook::open(&args.state).map_err(|e| e.to_string())?;
    let onion = OnionAddress::from_key(key.public()).to_string();
    let claim = Claim {
        serial: args.serial.unwrap_or_else(|| book.next(&onion)),
        ..claim
    };
    let threads = args.threads.unwrap_or_else(default_threads).max(1);
    let record = with_progress(claim.work, threads, |report| {
        operator::finish_record(claim, &key, threads, Duration::from_millis(250), report)
    })
    .map_err(|e| e.to_string())?;
    book.record(&onion, record.serial)
        .map_err(|e| e.to_string())?;
    let document = match quorum {
        None => record.to_value(),
        Some(quorum) => {
            let attestation = operator::submit(&quorum, route, &record)
                .map_err(|e| format!("Quorum {quorum}: {e}"))?;
            check_own_attestation(&record, &attestation)?;
            eprintln!(
                "accepted: {} -> {} at seq {} (serial {})",
                record.name, record.onion, attestation.seq, record.serial
            );
            json!({"record": record.to_value(), "attestation": attestation.to_value()})
        }
    };
    let text = serde_json::to_string_pretty(&document).map_err(|e| e.to_string())?;
    match out {
        Some(file) => file
            .commit(format!("{text}\n").as_bytes())
            .map_err(|e| e.to_string()),
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

fn build_claim(args: &ClaimArgs) -> Result<Claim, String> {
    let name =
        LookupName::from_user(&args.name).map_err(|e| format!("name {:?}: {e}", args.name))?;
    if name.subdomain().is_some() {
        return Err(format!(
            "name {:?}: claim the registered name ({}) and give subdomains with --sub",
            args.name,
            name.registered()
        ));
    }
    let name = name.registered();
    let subdomains = args
        .sub
        .iter()
        .map(|s| parse_sub(s, &name))
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    if !(1..=MAX_LIFETIME / 86400).contains(&args.lifetime) {
        return Err(format!(
            "--lifetime {}: must be 1 to 30 days",
            args.lifetime
        ));
    }
    if args.work > onions::record::MAX_WORK {
        return Err(format!(
            "--work {}: at most {} bits",
            args.work,
            onions::record::MAX_WORK
        ));
    }
    let issued = clock::now();
    Ok(Claim {
        name,
        subdomains,
        contact: args.contact.clone(),
        serial: 0,
        issued,
        expires: issued + args.lifetime * 86400,
        work: args.work,
    })
}

fn parse_sub(text: &str, name: &RegisteredName) -> Result<(SubdomainKey, OnionAddress), String> {
    let (label, onion) = text
        .split_once('=')
        .ok_or_else(|| format!("--sub {text:?}: expected LABEL=ADDRESS.onion"))?;
    let key = SubdomainKey::parse(&label.to_ascii_lowercase(), name)
        .map_err(|e| format!("--sub {text:?}: {e}"))?;
    let onion = OnionAddress::parse(&onion.to_ascii_lowercase())
        .map_err(|e| format!("--sub {text:?}: {e}"))?;
    Ok((key, onion))
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs the proof-of-work search, drawing a progress bar on a terminal.
fn with_progress<T>(
    work_bits: u64,
    threads: usize,
    body: impl FnOnce(&mut dyn FnMut(Progress)) -> T,
) -> T {
    let terminal = std::io::stderr().is_terminal() && work_bits > 0;
    let mut draw = |p: Progress| {
        if terminal {
            eprint!("\r{}", progress_line(&p, threads));
            let _ = std::io::stderr().flush();
        }
    };
    let result = body(&mut draw);
    if terminal {
        eprintln!();
    }
    result
}

fn progress_line(p: &Progress, threads: usize) -> String {
    const WIDTH: usize = 24;
    let fraction = (p.tries as f64 / p.expected).min(0.99);
    let filled = (fraction * WIDTH as f64) as usize;
    format!(
        "proof of work [{}{}] {:>3.0}%  {} of ~{:.0} tries, {:.0}/s on {threads} threads, ~{:.0} s left ",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        fraction * 100.0,
        p.tries,
        p.expected,
        p.rate(),
        p.remaining_secs()
    )
}

/// A Quorum's answer must name this very record and carry a valid signature.
fn check_own_attestation(record: &Record, attestation: &Attestation) -> Result<(), String> {
    if attestation.record != record.id() || !attestation.signature_holds() {
        return Err("the Quorum's attestation does not match the record sent".into());
    }
    Ok(())
}

fn verify(args: VerifyArgs) -> Result<(), String> {
    let path = &args.file;
    let value = read_json(path)?;
    let (record_value, attestation_value) = match value.get("record") {
        Some(r) if value.get("v").is_none() => (r, value.get("attestation")),
        _ => (&value, None),
    };
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let record = Record::from_value(record_value).map_err(|e| at(&e))?;
    let verifier = Verifier {
        min_work: args.min_work,
        trusted: cli::quorum_keys(&args.quorum_key).map_err(|e| e.to_string())?,
        max_skew: None,
    };
    let now = args.now.unwrap_or_else(clock::now);
    match (attestation_value, verifier.trusted.is_empty()) {
        (Some(a), false) => {
            let attestation = Attestation::from_value(a).map_err(|e| at(&e))?;
            verifier
                .check_answer(&record, &attestation, now)
                .map_err(|e| at(&e))?;
            println!(
                "valid, attested at seq {}: {}",
                attestation.seq,
                summary(&record)
            );
        }
        (Some(_), true) => {
            verifier.check_record(&record, now).map_err(|e| at(&e))?;
            println!(
                "valid record (attestation not checked: no --quorum-key): {}",
                summary(&record)
            );
        }
        (None, _) => {
            verifier.check_record(&record, now).map_err(|e| at(&e))?;
            println!("valid record: {}", summary(&record));
        }
    }
    Ok(())
}

fn summary(record: &Record) -> String {
    let subs: Vec<String> = record
        .subdomains
        .iter()
        .map(|(k, v)| format!("{k}.{} -> {v}", record.name))
        .collect();
    let mut line = format!(
        "{} -> {} (serial {}, work {}, expires {})",
        record.name, record.onion, record.serial, record.work, record.expires
    );
    for sub in subs {
        line.push_str("; ");
        line.push_str(&sub);
    }
    line
}

fn read_json(path: &Path) -> Result<Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: not valid JSON: {e}", path.display()))
}

fn lookup(args: LookupArgs) -> Result<(), String> {
    let name =
        LookupName::from_user(&args.name).map_err(|e| format!("name {:?}: {e}", args.name))?;
    let server = Endpoint::parse(&args.server).map_err(|e| format!("--server {e}"))?;
    let route = cli::route(args.socks.as_deref(), args.direct).map_err(|e| e.to_string())?;
    let trusted = cli::quorum_keys(&args.quorum_key).map_err(|e| e.to_string())?;
    if trusted.is_empty() {
        return Err("give at least one --quorum-key to check the answer against".into());
    }
    let policy = Policy {
        verifier: Verifier {
            min_work: args.min_work,
            trusted,
            max_skew: None,
        },
        max_head_age: args.max_head_age,
        witnesses: cli::witness_policy("witness-key", &args.witness_key, args.witnesses)
            .map_err(|e| e.to_string())?,
    };
    let request = Request::Lookup {
        id: Id::Number(1),
        name: name.clone(),
    };
    let now = clock::now();
    let reply = transport::request(&server, route, &request, transport::NETWORK_TIMEOUT)
        .map_err(|e| format!("{server}: {e}"))?;
    let witnessed = Witnessed::of_reply(&reply, &policy.witnesses);
    let resolution =
        lookup::check_reply(reply, &name, &policy, now).map_err(|e| format!("{server}: {e}"))?;
    let head = resolution.head();
    let head_line = format!(
        "head seq {} time {} root {} size {}{}",
        head.seq,
        head.time,
        onions::codec::b64_encode(&head.root),
        head.size,
        witnessed.map_or(String::new(), |w| cosigned_line(&w, now))
    );
    match resolution {
        Resolution::Found(answer) => {
            println!("{} -> {}", name, answer.target);
            eprintln!(
                "verified: serial {}, attested at seq {}, expires {}; {head_line}; proof of presence holds",
                answer.record.serial, answer.attestation.seq, answer.record.expires
            );
            Ok(())
        }
        Resolution::Expired(answer) => Err(format!(
            "{}: its record expired at {} (after {head_line}; proof of presence holds)",
            name.registered(),
            answer.record.expires
        )),
        Resolution::Absent(_) => Err(format!(
            "{} is not registered ({head_line}; proof of absence holds)",
            name.registered()
        )),
    }
}

/// Checks an evidence file and says what it proves: valid evidence
/// convicts the key that signed it, so the user compares that key with the
/// Quorum key they trust.
fn evidence(args: EvidenceArgs) -> Result<(), String> {
    let path = &args.file;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let invalid = |why: onions::evidence::EvidenceError| {
        format!("{}: not valid evidence: {why}", path.display())
    };
    let evidence = EvidenceFile::from_json(&text).map_err(invalid)?;
    let conviction = evidence.verify().map_err(invalid)?;
    println!("valid {} evidence: {conviction}", evidence.kind());
    if matches!(evidence, EvidenceFile::Ownership(_)) {
        eprintln!(
            "conclusive with the log between the two seqs: check that a mirror holds no other record of the name there (PROTOCOL.md §11.6)"
        );
    }
    Ok(())
}

/// What the witnesses say of the answer's head, after the head line.
fn cosigned_line(witnessed: &Witnessed, now: u64) -> String {
    format!(
        ", cosigned by {} trusted witnesses ({} required), fresh as of {} ({} s ago)",
        witnessed.valid,
        witnessed.needed,
        witnessed.fresh_as_of,
        now.saturating_sub(witnessed.fresh_as_of)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_config_flag_table_matches_the_flags() {
        onions::cli::check_flag_table::<super::Args>(&["claim"], super::CLAIM_FLAGS)
            .unwrap_or_else(|problems| panic!("{problems:#?}"));
    }
}
