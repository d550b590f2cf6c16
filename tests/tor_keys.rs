//! An onion-service operator's story with the keys a real Tor wrote.
//!
//! A real `tor` (network disabled) starts with a `HiddenServiceDir` and
//! writes `hostname`, `hs_ed25519_secret_key` and `hs_ed25519_public_key`.
//! onions reads Tor's expanded secret key and derives exactly the address
//! Tor printed; the operator then claims `example.tor` with that file,
//! `onions-hs verify` and the library's verifier both accept the record,
//! a second claim raises the serial by itself, and handing over the public
//! key file by mistake is refused with a message that says so.

use onions::keys::{self, PublicKey, SigningKey, PUBLIC_KEY_HEADER};
use onions::name::SubdomainKey;
use onions::onion::OnionAddress;
use onions::record::Record;
use onions::verify::Verifier;
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use testkit::tor::start_tor_hidden_service;
use testkit::{assert_one_line_failure, run_hs, ChildGuard, TempDir};

/// A real tor with one onion service, started in a new temporary
/// directory named after `label`: the directory, the tor and the
/// service's `HiddenServiceDir`. Every test here starts with one.
fn tor_service(label: &str) -> (TempDir, ChildGuard, PathBuf) {
    keys::init().unwrap();
    let tmp = TempDir::new(label);
    let (tor, hs_dir) = start_tor_hidden_service(tmp.path());
    (tmp, tor, hs_dir)
}

/// Runs `onions-hs claim example.tor --key KEY` with `subs` as `--sub`
/// values, work 4 and `--dry-run`, writing the record to `out` and the
/// serial to `state`: the claim every test here makes with Tor's files.
fn dry_claim(
    key: &Path,
    subs: &[String],
    out: &Path,
    state: &Path,
) -> (ExitStatus, String, String) {
    let mut args: Vec<&OsStr> = ["claim", "example.tor", "--key"].map(OsStr::new).to_vec();
    args.push(key.as_os_str());
    for sub in subs {
        args.extend([OsStr::new("--sub"), OsStr::new(sub)]);
    }
    args.extend(["--work", "4", "--dry-run", "--out"].map(OsStr::new));
    args.extend([out.as_os_str(), OsStr::new("--state"), state.as_os_str()]);
    run_hs(args)
}

/// Checks that the state file `state` remembers `serial` as the last one
/// used for the onion `host`.
fn assert_serial_kept(state: &Path, host: &str, serial: u64) {
    let book: Value = serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap();
    assert_eq!(book[host], Value::from(serial));
}

/// The `hostname` file Tor wrote, without its trailing newline.
fn hostname(hs_dir: &Path) -> String {
    let text = std::fs::read_to_string(hs_dir.join("hostname")).expect("tor wrote hostname");
    text.trim().to_owned()
}

/// The key inside Tor's 64-byte `hs_ed25519_public_key`, header checked.
fn tor_public_key(hs_dir: &Path) -> PublicKey {
    let bytes = std::fs::read(hs_dir.join("hs_ed25519_public_key")).expect("tor wrote it");
    assert_eq!(bytes.len(), 64, "hs_ed25519_public_key is header + key");
    let (header, key) = bytes.split_at(32);
    assert_eq!(&header[..PUBLIC_KEY_HEADER.len()], PUBLIC_KEY_HEADER);
    assert!(
        header[PUBLIC_KEY_HEADER.len()..].iter().all(|&b| b == 0),
        "the header is NUL-padded to 32 bytes"
    );
    PublicKey::from_bytes(key.try_into().expect("32 bytes"))
        .expect("Tor's public key is a valid ed25519 point")
}

#[test]
fn tors_secret_key_gives_tors_own_address() {
    let (_tmp, _tor, hs_dir) = tor_service("tor-keys");
    let secret = hs_dir.join("hs_ed25519_secret_key");

    let key = SigningKey::read_tor_file(&secret).expect("onions reads Tor's secret key file");
    let onion = OnionAddress::from_key(key.public()).to_string();
    assert_eq!(
        onion,
        hostname(&hs_dir),
        "same address as Tor's hostname file"
    );
    assert_eq!(tor_public_key(&hs_dir), key.public());

    // Written back, the key is byte for byte the file Tor wrote.
    assert_eq!(key.to_tor_file_bytes(), std::fs::read(&secret).unwrap());

    // A signature made with Tor's expanded key verifies with the key
    // published in Tor's address, and only for the message signed.
    let parsed = OnionAddress::parse(&onion).expect("Tor's hostname is a valid v3 address");
    let sig = key.sign(b"example.tor belongs to this service");
    assert!(parsed
        .key()
        .verify(b"example.tor belongs to this service", &sig));
    assert!(!parsed
        .key()
        .verify(b"example.tor belongs to another service", &sig));
}

#[test]
fn claim_with_tors_key_verifies_and_renews_with_higher_serial() {
    let (tmp, _tor, hs_dir) = tor_service("tor-claim");
    let secret = hs_dir.join("hs_ed25519_secret_key");
    let host = hostname(&hs_dir);
    let rec = tmp.join("rec.json");
    let state = tmp.join("state");
    let claim = |out: &Path| dry_claim(&secret, &[format!("www={host}")], out, &state);

    let (status, stdout, stderr) = claim(&rec);
    assert!(status.success(), "claim failed: {stderr}");
    assert!(stdout.is_empty(), "--out writes the record, not stdout");
    assert!(!stderr.contains("panicked"));

    let (status, stdout, stderr) = run_hs(["verify".as_ref(), rec.as_os_str()]);
    assert!(status.success(), "verify refused the claim: {stderr}");
    assert!(
        stdout.starts_with("valid record: example.tor -> ") && stdout.contains(&host),
        "{stdout}"
    );

    let first = Record::from_json(&std::fs::read_to_string(&rec).unwrap())
        .expect("the claimed record parses");
    let verifier = Verifier {
        min_work: 4,
        ..Verifier::default()
    };
    verifier
        .check_record(&first, onions::clock::now())
        .expect("the claimed record verifies");
    assert_eq!(first.onion.to_string(), host, "signed by Tor's service key");
    assert_eq!(first.name.as_str(), "example.tor");
    assert_eq!(first.work, 4);
    let www = SubdomainKey::parse("www", &first.name).unwrap();
    assert_eq!(
        first.subdomains.get(&www).map(ToString::to_string),
        Some(host.clone())
    );

    // Demanding more work than the record carries is refused by name.
    let (status, _, stderr) = run_hs([
        "verify".as_ref(),
        rec.as_os_str(),
        "--min-work".as_ref(),
        "5".as_ref(),
    ]);
    assert!(!status.success());
    assert!(stderr.contains("at least 5"), "{stderr}");

    // The state file remembers the serial, so a renewal goes up by itself.
    assert_serial_kept(&state, &host, first.serial);
    let rec2 = tmp.join("rec2.json");
    let (status, _, stderr) = claim(&rec2);
    assert!(status.success(), "second claim failed: {stderr}");
    let second = Record::from_json(&std::fs::read_to_string(&rec2).unwrap()).unwrap();
    verifier
        .check_record(&second, onions::clock::now())
        .expect("the renewal verifies");
    assert_eq!(second.onion, first.onion);
    assert!(
        second.serial > first.serial,
        "serial went from {} to {}",
        first.serial,
        second.serial
    );
    assert_serial_kept(&state, &host, second.serial);
}

#[test]
fn tors_public_key_file_is_refused_as_the_key() {
    let (tmp, _tor, hs_dir) = tor_service("tor-pubkey");
    let public = hs_dir.join("hs_ed25519_public_key");
    let out = tmp.join("rec.json");
    let result = dry_claim(&public, &[], &out, &tmp.join("state"));
    assert_one_line_failure(
        "public key file as --key",
        &result,
        &[&public.display().to_string(), "public key file"],
    );
    assert!(!out.exists(), "no record is written");
    assert!(!tmp.join("state").exists(), "no serial is used up");
}
