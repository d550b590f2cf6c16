//! What an operator sees when they get something wrong with `onions-hs`.
//!
//! Each mistake (the wrong key file, a broken key file, a bad name or
//! address, an output that cannot be written, a missing, broken or tampered
//! record, out-of-range flags, conflicting flags) ends the program with a
//! non-zero exit and exactly one line on stderr that names the offending
//! file or value, never a panic. A claim whose output cannot be written
//! fails before it spends any time on proof of work.

use onions::keys::{self, SigningKey, PUBLIC_KEY_HEADER};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::{assert_one_line_failure, run_hs, run_hs_within, TempDir};

/// The time at which the vectors' record is valid.
const VECTOR_NOW: u64 = 1_764_000_100;

/// A scratch directory holding a valid secret key file and a state path.
struct Operator {
    tmp: TempDir,
    key: PathBuf,
    state: PathBuf,
}

impl Operator {
    fn new(label: &str) -> Operator {
        keys::init().unwrap();
        let tmp = TempDir::new(label);
        let key = tmp.join("hs_ed25519_secret_key");
        std::fs::write(&key, SigningKey::from_seed(&[1; 32]).to_tor_file_bytes()).unwrap();
        let state = tmp.join("state");
        Operator { tmp, key, state }
    }

    /// Writes `bytes` to a file named `name` in the scratch directory.
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.tmp.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// `claim NAME --key KEY --dry-run --work 0 --state STATE` plus `extra`
    /// (a later `--work` wins, as argh keeps the last value).
    fn claim_args(&self, name: &str, key: &Path, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "claim".into(),
            name.into(),
            "--key".into(),
            key.display().to_string(),
            "--dry-run".into(),
            "--state".into(),
            self.state.display().to_string(),
        ];
        if !extra.contains(&"--work") {
            args.extend(["--work".into(), "0".into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    fn claim(&self, name: &str, extra: &[&str]) -> (std::process::ExitStatus, String, String) {
        run_hs(self.claim_args(name, &self.key, extra))
    }

    fn claim_with_key(
        &self,
        key: &Path,
        extra: &[&str],
    ) -> (std::process::ExitStatus, String, String) {
        run_hs(self.claim_args("example.tor", key, extra))
    }

    /// Asserts nothing was written: no serial used up, no stray temp files.
    fn assert_untouched(&self, what: &str) {
        assert!(!self.state.exists(), "{what}: the state file was written");
        let strays: Vec<_> = std::fs::read_dir(self.tmp.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(strays.is_empty(), "{what}: left {strays:?} behind");
    }
}

fn vectors() -> Value {
    serde_json::from_str(include_str!("data/vectors.json")).unwrap()
}

#[test]
fn the_public_key_file_is_not_the_secret_key() {
    let op = Operator::new("bad-pubkey");
    let mut bytes = vec![0u8; 64];
    bytes[..PUBLIC_KEY_HEADER.len()].copy_from_slice(PUBLIC_KEY_HEADER);
    bytes[32..].copy_from_slice(SigningKey::from_seed(&[1; 32]).public().as_bytes());
    let public = op.file("hs_ed25519_public_key", &bytes);
    let result = op.claim_with_key(&public, &[]);
    assert_one_line_failure(
        "public key as --key",
        &result,
        &[&public.display().to_string(), "public key file"],
    );
    op.assert_untouched("public key as --key");
}

#[test]
fn a_truncated_key_file_is_refused() {
    let op = Operator::new("bad-truncated");
    let full = std::fs::read(&op.key).unwrap();
    let cut = op.file("truncated_key", &full[..50]);
    let result = op.claim_with_key(&cut, &[]);
    assert_one_line_failure(
        "truncated key",
        &result,
        &[&cut.display().to_string(), "50", "truncated"],
    );
    op.assert_untouched("truncated key");
}

#[test]
fn a_key_file_with_the_wrong_header_is_refused() {
    let op = Operator::new("bad-header");
    let mut bytes = std::fs::read(&op.key).unwrap();
    bytes[..29].copy_from_slice(b"== ed25519v1-secret: type1 ==");
    let wrong = op.file("wrong_header_key", &bytes);
    let result = op.claim_with_key(&wrong, &[]);
    assert_one_line_failure(
        "wrong header",
        &result,
        &[&wrong.display().to_string(), "header"],
    );
    op.assert_untouched("wrong header");
}

#[test]
fn a_missing_key_file_is_named() {
    let op = Operator::new("bad-nokey");
    let missing = op.tmp.join("no_such_key");
    let result = op.claim_with_key(&missing, &[]);
    assert_one_line_failure(
        "missing key",
        &result,
        &[&missing.display().to_string(), "No such file"],
    );
}

#[test]
fn invalid_and_subdomain_names_cannot_be_claimed() {
    let op = Operator::new("bad-names");
    let line = assert_one_line_failure(
        "ex_ample.tor",
        &op.claim("ex_ample.tor", &[]),
        &["ex_ample.tor"],
    );
    assert!(
        line.contains("a-z"),
        "says which characters are allowed: {line}"
    );
    let line = assert_one_line_failure(
        "www.example.tor",
        &op.claim("www.example.tor", &[]),
        &["www.example.tor", "--sub"],
    );
    assert!(
        line.contains("(example.tor)"),
        "points to the registered name: {line}"
    );
    op.assert_untouched("bad names");
}

#[test]
fn a_subdomain_address_with_a_bad_checksum_is_refused() {
    let op = Operator::new("bad-sub");
    let v = vectors();
    let bad = v["invalid_onions"][0].as_str().unwrap();
    let good = v["owner"]["onion"].as_str().unwrap();
    assert_eq!(bad.len(), good.len(), "the vector is a one-letter typo");
    let sub = format!("www={bad}");
    assert_one_line_failure(
        "bad --sub",
        &op.claim("example.tor", &["--sub", &sub]),
        &[bad, "checksum"],
    );
    // The same flag with the correct address is accepted.
    let fixed = format!("www={good}");
    let (status, stdout, stderr) = op.claim("example.tor", &["--sub", &fixed]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains(good), "the record lists the subdomain");
}

#[test]
fn an_unwritable_out_is_refused() {
    let op = Operator::new("bad-out");
    let nodir = op.tmp.join("no").join("such").join("dir").join("rec.json");
    let nodir_text = nodir.display().to_string();
    assert_one_line_failure(
        "--out in a missing directory",
        &op.claim("example.tor", &["--out", &nodir_text]),
        &[&nodir_text, "--out"],
    );
    let plain = op.file("plain-file", b"not a directory\n");
    let under_file = plain.join("rec.json");
    let under_file_text = under_file.display().to_string();
    assert_one_line_failure(
        "--out under a regular file",
        &op.claim("example.tor", &["--out", &under_file_text]),
        &[&under_file_text, "--out"],
    );
    assert_eq!(
        std::fs::read(&plain).unwrap(),
        b"not a directory\n",
        "the file in the way is left alone"
    );
    op.assert_untouched("unwritable --out");
}

#[test]
fn an_unwritable_out_fails_before_the_proof_of_work() {
    let op = Operator::new("bad-out-fast");
    let nodir = op.tmp.join("missing").join("rec.json");
    let nodir_text = nodir.display().to_string();
    // 30 bits would take days; the command must give up before starting.
    let args = op.claim_args(
        "example.tor",
        &op.key,
        &["--work", "30", "--out", &nodir_text],
    );
    let result = run_hs_within(args, Duration::from_secs(20));
    assert_one_line_failure("--out fails fast", &result, &[&nodir_text]);
    op.assert_untouched("--out fails fast");
}

#[test]
fn verify_names_a_missing_file() {
    let op = Operator::new("bad-verify-missing");
    let missing = op.tmp.join("nothing-here.json");
    let missing_text = missing.display().to_string();
    assert_one_line_failure(
        "verify missing",
        &run_hs(["verify", &missing_text]),
        &[&missing_text, "No such file"],
    );
}

#[test]
fn verify_names_a_file_that_is_not_json() {
    let op = Operator::new("bad-verify-json");
    let junk = op.file("junk.json", b"this is { not json\n");
    let junk_text = junk.display().to_string();
    assert_one_line_failure(
        "verify non-JSON",
        &run_hs(["verify", &junk_text]),
        &[&junk_text, "not valid JSON"],
    );
}

#[test]
fn verify_refuses_a_tampered_record() {
    let op = Operator::new("bad-verify-tampered");
    let v = vectors();
    let now = VECTOR_NOW.to_string();

    // The untouched vector verifies at its time, which makes the refusal
    // below about the tampering and nothing else.
    let good = op.file("good.json", v["record"].to_string().as_bytes());
    let (status, stdout, stderr) = run_hs(["verify", &good.display().to_string(), "--now", &now]);
    assert!(status.success(), "the vector record verifies: {stderr}");
    assert!(stdout.starts_with("valid record: example.tor"), "{stdout}");

    let mut record = v["record"].clone();
    record["contact"] = "someone else".into();
    let tampered = op.file("tampered.json", record.to_string().as_bytes());
    let tampered_text = tampered.display().to_string();
    assert_one_line_failure(
        "verify tampered",
        &run_hs(["verify", &tampered_text, "--now", &now]),
        &[&tampered_text, "signature"],
    );
}

#[test]
fn out_of_range_lifetime_and_work_are_refused() {
    let op = Operator::new("bad-ranges");
    assert_one_line_failure(
        "--lifetime 31",
        &op.claim("example.tor", &["--lifetime", "31"]),
        &["--lifetime 31", "30 days"],
    );
    assert_one_line_failure(
        "--lifetime 0",
        &op.claim("example.tor", &["--lifetime", "0"]),
        &["--lifetime 0"],
    );
    assert_one_line_failure(
        "--work 65",
        &op.claim("example.tor", &["--work", "65"]),
        &["--work 65", "64"],
    );
    op.assert_untouched("out-of-range flags");
}

#[test]
fn socks_and_direct_exclude_each_other() {
    let op = Operator::new("bad-route");
    assert_one_line_failure(
        "--socks with --direct",
        &op.claim("example.tor", &["--socks", "127.0.0.1:9050", "--direct"]),
        &["--socks", "--direct"],
    );
    op.assert_untouched("--socks with --direct");
}

#[test]
fn lookup_needs_a_quorum_key() {
    // Port 1 on loopback has no server: the command must refuse before
    // it tries to connect anywhere.
    assert_one_line_failure(
        "lookup without --quorum-key",
        &run_hs([
            "lookup",
            "www.example.tor",
            "--server",
            "127.0.0.1:1",
            "--direct",
        ]),
        &["--quorum-key"],
    );
}

#[test]
fn lookup_takes_a_name_or_an_onion_not_both() {
    let onion = "5jfgyy7ctrjavpxvkb5rglwf7gkuo5vox27hxescd3vgsfcg2iwfmxqd.onion";
    let common = ["--server", "127.0.0.1:1", "--direct", "--quorum-key", "x"];
    let with = |first: &[&str]| {
        let mut args = vec!["lookup"];
        args.extend_from_slice(first);
        args.extend_from_slice(&common);
        run_hs(args)
    };
    assert_one_line_failure("lookup of nothing", &with(&[]), &["NAME", "--onion"]);
    assert_one_line_failure(
        "lookup of a name and an onion",
        &with(&["example.tor", "--onion", onion]),
        &["NAME", "--onion", "not both"],
    );
    assert_one_line_failure(
        "lookup of a name as --onion",
        &with(&["--onion", "example.tor"]),
        &["--onion \"example.tor\"", "v3 onion address"],
    );
}

/// Runs a 30-bit claim (days of work) that must be refused before any work.
fn refused_before_work(op: &Operator, extra: &[&str], what: &str, needles: &[&str]) {
    let mut all = vec!["--work", "30"];
    all.extend_from_slice(extra);
    let args = op.claim_args("example.tor", &op.key, &all);
    let result = run_hs_within(args, Duration::from_secs(20));
    assert_one_line_failure(what, &result, needles);
}

#[test]
fn records_that_could_never_verify_fail_before_the_work() {
    let op = Operator::new("never-valid");
    let long_contact = "x".repeat(129);
    refused_before_work(
        &op,
        &["--contact", "caf\u{e9}"],
        "non-ASCII contact",
        &["contact"],
    );
    refused_before_work(
        &op,
        &["--contact", &long_contact],
        "long contact",
        &["contact"],
    );
    refused_before_work(&op, &["--serial", "0"], "serial 0", &["serial"]);
    refused_before_work(
        &op,
        &["--serial", "9007199254740992"],
        "serial 2^53",
        &["serial"],
    );
    let www = vectors()["www"]["onion"].as_str().unwrap().to_owned();
    let subs: Vec<String> = (0..33).map(|i| format!("s{i}={www}")).collect();
    let mut extra: Vec<&str> = Vec::new();
    for sub in &subs {
        extra.extend(["--sub", sub.as_str()]);
    }
    refused_before_work(&op, &extra, "33 subdomains", &["33 subdomains"]);
    let state = std::fs::read_to_string(&op.state).unwrap();
    assert_eq!(
        state.trim(),
        "{}",
        "no serial was used up by a refused claim"
    );
}

#[test]
fn an_out_that_is_a_directory_or_a_bad_state_path_fails_before_the_work() {
    let op = Operator::new("dir-out");
    let dir = op.tmp.join("a-directory");
    std::fs::create_dir(&dir).unwrap();
    let dir_text = dir.display().to_string();
    refused_before_work(
        &op,
        &["--out", &dir_text],
        "--out is a directory",
        &[&dir_text, "directory"],
    );
    let bad_state = op.tmp.join("missing").join("state");
    let bad_state_text = bad_state.display().to_string();
    refused_before_work(
        &op,
        &["--state", &bad_state_text],
        "--state in a missing directory",
        &[&bad_state_text],
    );
}

#[test]
fn a_damaged_unclamped_key_is_refused() {
    let op = Operator::new("unclamped");
    let mut bytes = SigningKey::from_seed(&[1; 32]).to_tor_file_bytes();
    bytes[63] |= 0x80;
    let key = op.file("hs_ed25519_secret_key.bad", &bytes);
    let key_text = key.display().to_string();
    assert_one_line_failure(
        "unclamped scalar",
        &op.claim_with_key(&key, &[]),
        &[&key_text, "damaged"],
    );
}

#[test]
fn a_usage_error_is_one_line() {
    let result = run_hs(["claim", "example.tor", "--work", "abc"]);
    assert_one_line_failure("--work abc", &result, &["--work"]);
}
