//! Checking files offline: `verify` (a record, with its attestation) and
//! `evidence` (proof that a Quorum key misbehaved).

use onions::attest::Attestation;
use onions::cli::{self};
use onions::clock;
use onions::evidence::EvidenceFile;
use onions::record::Record;
use onions::verify::Verifier;
use serde_json::Value;
use std::path::Path;

use crate::args::{EvidenceArgs, VerifyArgs};

pub(crate) fn verify(args: VerifyArgs) -> Result<(), String> {
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

/// Checks an evidence file and says what it proves: valid evidence
/// convicts the key that signed it, so the user compares that key with the
/// Quorum key they trust.
pub(crate) fn evidence(args: EvidenceArgs) -> Result<(), String> {
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
