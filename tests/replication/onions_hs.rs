//! The operator's own tool, `onions-hs`: it claims a name, looks its
//! subdomain up on a mirror, verifies the claim file, and updates it.

use crate::checks::{assert_same_heads, assert_serves};
use crate::REPLICATE_LIMIT;
use onions::attest::Attestation;
use onions::keys::SigningKey;
use onions::onion::OnionAddress;
use onions::record::Record;
use serde_json::Value;
use testkit::servers::{onion_of, owner, print_key, Server};
use testkit::{assert_one_line_failure, run_hs, TempDir};

/// The record and attestation of a claim file, with the attestation
/// checked against the record and the Quorum key `key`.
fn claim_file(path: &std::path::Path, key: &str) -> (Record, Attestation) {
    let document: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let claimed = Record::from_value(&document["record"]).expect("the claim file's record");
    let attestation =
        Attestation::from_value(&document["attestation"]).expect("the claim file's attestation");
    assert_eq!(attestation.quorum.to_base64(), key);
    assert_eq!(attestation.record, claimed.id());
    assert!(attestation.signature_holds());
    (claimed, attestation)
}

#[test]
fn onions_hs_claims_looks_up_and_verifies() {
    onions::keys::init().unwrap();
    let tmp = TempDir::new("replication-onions-hs");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);

    let service = SigningKey::from_seed(&[31; 32]);
    let key_file = tmp.join("hs_ed25519_secret_key");
    std::fs::write(&key_file, service.to_tor_file_bytes()).unwrap();
    let www = onion_of(&owner(32));
    let out = tmp.join("claim.json");
    let claim = |sub: &OnionAddress| {
        run_hs([
            "claim".to_owned(),
            "hs-e2e.tor".to_owned(),
            "--key".to_owned(),
            key_file.display().to_string(),
            "--sub".to_owned(),
            format!("www={sub}"),
            "--work".to_owned(),
            "2".to_owned(),
            "--quorum".to_owned(),
            quorum.addr.to_string(),
            "--direct".to_owned(),
            "--state".to_owned(),
            tmp.join("hs.state").display().to_string(),
            "--out".to_owned(),
            out.display().to_string(),
        ])
    };
    let (status, stdout, stderr) = claim(&www);
    assert!(
        status.success(),
        "claim failed ({status})\nstdout: {stdout}\nstderr: {stderr}\nquorum log:\n{}",
        quorum.log()
    );
    let (claimed, attestation) = claim_file(&out, &key);
    assert_eq!(claimed.name.as_str(), "hs-e2e.tor");
    assert_eq!(claimed.onion, onion_of(&service));
    assert_eq!((claimed.serial, claimed.work), (1, 2));
    assert_eq!(attestation.seq, 1);

    // The Quorum and the mirror serve exactly what the claim file holds.
    assert_same_heads(&[&quorum, &mirror], 1, &key);
    for server in [&quorum, &mirror] {
        assert_serves(server, "www.hs-e2e.tor", &claimed, &attestation, &key, &www);
    }
    let server = mirror.addr.to_string();
    let lookup = |name: &str| {
        run_hs([
            "lookup",
            name,
            "--server",
            &server,
            "--direct",
            "--quorum-key",
            &key,
        ])
    };
    let (status, stdout, stderr) = lookup("www.hs-e2e.tor");
    assert!(status.success(), "lookup failed: {stderr}");
    assert_eq!(stdout, format!("www.hs-e2e.tor -> {www}\n"));
    let (status, stdout, stderr) = lookup("hs-e2e.tor");
    assert!(status.success(), "lookup failed: {stderr}");
    assert_eq!(stdout, format!("hs-e2e.tor -> {}\n", onion_of(&service)));

    let file = out.display().to_string();
    let (status, stdout, stderr) = run_hs(["verify", &file, "--quorum-key", &key]);
    assert!(status.success(), "verify failed: {stderr}");
    assert!(
        stdout.starts_with("valid, attested at seq 1"),
        "verify said {stdout:?}"
    );
    let stranger = SigningKey::from_seed(&[33; 32]).public().to_base64();
    let refused = run_hs(["verify", &file, "--quorum-key", &stranger]);
    assert_one_line_failure(
        "verify against an untrusted key",
        &refused,
        &["claim.json", "not a trusted Quorum key"],
    );

    // Claiming again updates: the serial book gives serial 2, and the
    // mirror's answer for the subdomain follows.
    let moved = onion_of(&owner(34));
    let (status, _, stderr) = claim(&moved);
    assert!(status.success(), "second claim failed: {stderr}");
    let (updated, attestation) = claim_file(&out, &key);
    assert_eq!(updated.serial, 2);
    assert_eq!(attestation.seq, 2);
    mirror.wait_head(2, REPLICATE_LIMIT);
    let (status, stdout, stderr) = lookup("WWW.hs-e2e.tor");
    assert!(status.success(), "lookup failed: {stderr}");
    assert_eq!(stdout, format!("www.hs-e2e.tor -> {moved}\n"));
}
