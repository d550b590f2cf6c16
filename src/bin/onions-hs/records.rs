//! Making and sending records and statements: `claim` (with or without a
//! transfer statement), `transfer` and `release`; the proof of work with its
//! progress bar, and where the finished record goes.

use onions::attest::Attestation;
use onions::cli::{self};
use onions::clock;
use onions::keys::SigningKey;
use onions::name::{LookupName, RegisteredName, SubdomainKey};
use onions::onion::OnionAddress;
use onions::operator::{self, life, OutputFile, SerialBook};
use onions::record::{Claim, Record, MAX_LIFETIME};
use onions::transport::{self, Endpoint};
use onions::work::Progress;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use crate::args::{ClaimArgs, Destination, ReleaseArgs, TransferArgs};

pub(crate) fn claim(args: ClaimArgs) -> Result<(), String> {
    let sending = Sending::new(args.destination())?;
    let key = read_key(&args.key)?;
    let claim = build_claim(&args)?;
    let statement = args
        .transfer
        .as_deref()
        .map(|path| life::read_statement(path, &claim.name, &key))
        .transpose()
        .map_err(|e| e.to_string())?;
    let (mut book, serial) = serial_for(&args.state, args.serial, &key)?;
    let claim = Claim { serial, ..claim };
    let record = match statement {
        None => Record::from_claim(claim, &key),
        Some(statement) => life::taking(claim, statement, &key),
    };
    sending.finish_and_send(record, &key, args.threads, &mut book)
}

/// Where a finished record goes: to a Quorum (or nowhere with --dry-run),
/// then to --out or standard output.
struct Sending {
    quorum: Option<Endpoint>,
    route: transport::Route,
    out: Option<OutputFile>,
}

impl Sending {
    /// Checks the flags, and that --out can be written, before any work.
    fn new(to: Destination<'_>) -> Result<Sending, String> {
        let quorum = match (to.quorum, to.dry_run) {
            (Some(_), true) => return Err("--quorum and --dry-run exclude each other".into()),
            (None, false) => {
                return Err("give --quorum HOST:PORT to send the record, or --dry-run".into())
            }
            (Some(q), false) => Some(Endpoint::parse(q).map_err(|e| format!("--quorum {e}"))?),
            (None, true) => None,
        };
        let route = cli::route(to.socks, to.direct).map_err(|e| e.to_string())?;
        let out = to
            .out
            .map(OutputFile::create)
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok(Sending { quorum, route, out })
    }

    /// Works and signs `record`, remembers its serial, sends it, and writes
    /// the outcome.
    fn finish_and_send(
        self,
        record: Record,
        key: &SigningKey,
        threads: Option<usize>,
        book: &mut SerialBook,
    ) -> Result<(), String> {
        let threads = threads.unwrap_or_else(default_threads).max(1);
        let record = with_progress(record.work, threads, |report| {
            operator::finish_unsigned(record, key, threads, Duration::from_millis(250), report)
        })
        .map_err(|e| e.to_string())?;
        book.record(&record.onion.to_string(), record.serial)
            .map_err(|e| e.to_string())?;
        let document = match self.quorum {
            None => record.to_value(),
            Some(quorum) => {
                let attestation = operator::submit(&quorum, self.route, &record)
                    .map_err(|e| format!("Quorum {quorum}: {e}"))?;
                check_own_attestation(&record, &attestation)?;
                eprintln!("accepted: {}", what_was_sent(&record, attestation.seq));
                json!({"record": record.to_value(), "attestation": attestation.to_value()})
            }
        };
        write_document(self.out, &document)
    }
}

/// What an accepted record did, for the operator.
fn what_was_sent(record: &Record, seq: u64) -> String {
    let (name, onion, serial) = (&record.name, &record.onion, record.serial);
    if record.release {
        format!(
            "{name} released by {onion} at seq {seq} (serial {serial}); nobody else may claim it before {}",
            record.expires
        )
    } else if let Some(t) = &record.transfer {
        format!(
            "{name} moved from {} to {onion} at seq {seq} (serial {serial})",
            t.from
        )
    } else {
        format!("{name} -> {onion} at seq {seq} (serial {serial})")
    }
}

/// Writes `document` as pretty JSON to `out`, or to standard output.
fn write_document(out: Option<OutputFile>, document: &Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(document).map_err(|e| e.to_string())?;
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

/// The serial book at `state`, and the serial to sign with: `given`, or
/// one above the last that `key` used.
fn serial_for(
    state: &Path,
    given: Option<u64>,
    key: &SigningKey,
) -> Result<(SerialBook, u64), String> {
    let book = SerialBook::open(state).map_err(|e| e.to_string())?;
    let serial =
        given.unwrap_or_else(|| book.next(&OnionAddress::from_key(key.public()).to_string()));
    Ok((book, serial))
}

fn read_key(path: &Path) -> Result<SigningKey, String> {
    SigningKey::read_tor_file(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A registered name as a person typed it.
fn registered_name(text: &str) -> Result<RegisteredName, String> {
    let name = LookupName::from_user(text).map_err(|e| format!("name {text:?}: {e}"))?;
    if name.subdomain().is_some() {
        return Err(format!(
            "name {text:?}: give the registered name ({})",
            name.registered()
        ));
    }
    Ok(name.registered())
}

pub(crate) fn transfer(args: TransferArgs) -> Result<(), String> {
    let name = registered_name(&args.name)?;
    let to = OnionAddress::parse(&args.to.to_ascii_lowercase())
        .map_err(|e| format!("--to {:?}: {e}", args.to))?;
    if !(1..=24).contains(&args.hours) {
        return Err(format!("--hours {}: must be 1 to 24", args.hours));
    }
    let key = read_key(&args.key)?;
    let out = args
        .out
        .as_deref()
        .map(OutputFile::create)
        .transpose()
        .map_err(|e| e.to_string())?;
    let onion = OnionAddress::from_key(key.public()).to_string();
    let serial = match args.serial {
        Some(serial) => serial,
        None => {
            let book = SerialBook::open(&args.state).map_err(|e| e.to_string())?;
            match book.next(&onion) - 1 {
                0 => {
                    return Err(format!(
                        "{}: this key has used no serial; give --serial, the serial of {name}'s live record",
                        args.state.display()
                    ))
                }
                last => last,
            }
        }
    };
    let lifetime = args.hours * 3600;
    let statement = life::sign_statement(name, to, serial, (clock::now(), lifetime), &key)
        .map_err(|e| e.to_string())?;
    eprintln!(
        "statement: {} from {} (serial {}) to {}, valid until {}; its owner claims it with --transfer",
        statement.name, statement.from, statement.serial, statement.to, statement.expires
    );
    write_document(out, &statement.to_value())
}

pub(crate) fn release(args: ReleaseArgs) -> Result<(), String> {
    let sending = Sending::new(args.destination())?;
    let name = registered_name(&args.name)?;
    if !(1..=MAX_LIFETIME).contains(&args.cooldown) {
        return Err(format!(
            "--cooldown {}: must be 1 to {MAX_LIFETIME} seconds",
            args.cooldown
        ));
    }
    check_work(args.work)?;
    let key = read_key(&args.key)?;
    let (mut book, serial) = serial_for(&args.state, args.serial, &key)?;
    let record = life::release(name, serial, (clock::now(), args.cooldown), args.work, &key);
    sending.finish_and_send(record, &key, args.threads, &mut book)
}

fn check_work(work: u64) -> Result<(), String> {
    if work > onions::record::MAX_WORK {
        return Err(format!(
            "--work {work}: at most {} bits",
            onions::record::MAX_WORK
        ));
    }
    Ok(())
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
    check_work(args.work)?;
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
