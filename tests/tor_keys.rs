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
use std::path::Path;
use testkit::tor::start_tor_hidden_service;
use testkit::{assert_one_line_failure, run_hs, TempDir};

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
    keys::init().unwrap();
    let tmp = TempDir::new("tor-keys");
    let (_tor, hs_dir) = start_tor_hidden_service(tmp.path());
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
    keys::init().unwrap();
    let tmp = TempDir::new("tor-claim");
    let (_tor, hs_dir) = start_tor_hidden_service(tmp.path());
    let secret = hs_dir.join("hs_ed25519_secret_key");
    let host = hostname(&hs_dir);
    let rec = tmp.join("rec.json");
    let state = tmp.join("state");
    let claim = |out: &Path| {
        run_hs([
            "claim".as_ref(),
            "example.tor".as_ref(),
            "--key".as_ref(),
            secret.as_os_str(),
            "--sub".as_ref(),
            format!("www={host}").as_ref(),
            "--work".as_ref(),
            "4".as_ref(),
            "--dry-run".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
            "--state".as_ref(),
            state.as_os_str(),
        ])
    };

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
    let book: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(book[&host], Value::from(first.serial));
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
    let book: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(book[&host], Value::from(second.serial));
}

#[test]
fn tors_public_key_file_is_refused_as_the_key() {
    keys::init().unwrap();
    let tmp = TempDir::new("tor-pubkey");
    let (_tor, hs_dir) = start_tor_hidden_service(tmp.path());
    let public = hs_dir.join("hs_ed25519_public_key");
    let out = tmp.join("rec.json");
    let result = run_hs([
        "claim".as_ref(),
        "example.tor".as_ref(),
        "--key".as_ref(),
        public.as_os_str(),
        "--work".as_ref(),
        "4".as_ref(),
        "--dry-run".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
        "--state".as_ref(),
        tmp.join("state").as_os_str(),
    ]);
    assert_one_line_failure(
        "public key file as --key",
        &result,
        &[&public.display().to_string(), "public key file"],
    );
    assert!(!out.exists(), "no record is written");
    assert!(!tmp.join("state").exists(), "no serial is used up");
}
