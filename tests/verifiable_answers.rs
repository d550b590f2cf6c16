//! Protocol version 2 as a person meets it: every answer proven against a
//! signed head, heads that every mirror checks, and liars (real processes,
//! see testkit/src/liar/) that are caught.
//!
//! - `onions-hs lookup` shows the head and whether the proof held, and
//!   refuses every forgery a lying mirror makes; with `--witness-key` it
//!   requires cosignatures and shows how many and how fresh;
//! - `onions-hs evidence` convicts the key behind valid evidence, offline,
//!   and refuses a tampered file;
//! - a record that expires leaves the next head's root alike at the Quorum
//!   and at every mirror of a chain;
//! - an upstream that pushes a head whose root does not match its records
//!   raises the audit alarm at every mirror below it; each keeps answering
//!   with its last good head, and `status` shows the alarm.

use onions::attest::Attestation;
use onions::evidence::{Attested, EvidenceFile, OwnershipEvidence, Rule};
use onions::keys::SigningKey;
use onions::merkle::LeafKey;
use onions::name::RegisteredName;
use onions::wire::{AuditState, Reply};
use std::time::{Duration, Instant};
use testkit::liar::{Forgery, Liar, Plan};
use testkit::servers::{onion_of, owner, print_key, record, short_lived, witness_key, Server};
use testkit::{assert_one_line_failure, run_hs, TempDir};

/// How long a mirror may take to replicate and match a head.
const REPLICATE_LIMIT: Duration = Duration::from_secs(30);

/// Seeds of the owners of example.tor, its www, and other.tor.
const EXAMPLE: u8 = 1;
const WWW: u8 = 2;
const OTHER: u8 = 3;

/// A Quorum (signing a head every second) and a mirror, holding
/// example.tor (with www) and other.tor.
fn registry(tmp: &TempDir) -> (Server, Server, String) {
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--head-interval", "1"]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    let mut client = quorum.client();
    for r in [
        record(
            &owner(EXAMPLE),
            "example.tor",
            1,
            0,
            &[("www", &owner(WWW))],
        ),
        record(&owner(OTHER), "other.tor", 1, 0, &[]),
    ] {
        let reply = client.put(&r);
        assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    }
    mirror.wait_head(2, REPLICATE_LIMIT);
    (quorum, mirror, key)
}

/// `onions-hs lookup NAME` on `server`, directly, trusting `key`.
fn hs_lookup(name: &str, server: &str, key: &str) -> (bool, String, String) {
    let (status, out, err) = run_hs([
        "lookup",
        name,
        "--server",
        server,
        "--direct",
        "--quorum-key",
        key,
    ]);
    (status.success(), out, err)
}

#[test]
fn onions_hs_lookup_shows_the_head_and_the_proof() {
    let tmp = TempDir::new("hs-lookup");
    let (_quorum, mirror, key) = registry(&tmp);
    let server = mirror.addr.to_string();
    let (ok, out, err) = hs_lookup("www.example.tor", &server, &key);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!("www.example.tor -> {}", onion_of(&owner(WWW)))
    );
    assert!(err.contains("head seq 2 time"), "{err}");
    assert!(err.contains("proof of presence holds"), "{err}");
    let (ok, out, err) = hs_lookup("nobody.tor", &server, &key);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("nobody.tor is not registered"), "{err}");
    assert!(err.contains("proof of absence holds"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn onions_hs_lookup_refuses_every_forgery() {
    let tmp = TempDir::new("hs-forgeries");
    let (_quorum, mirror, key) = registry(&tmp);
    let forgeries = [
        (Forgery::Deny, "absence proof"),
        (Forgery::DenyOtherRoot, "absence proof"),
        (Forgery::Foreign, "not a trusted Quorum key"),
        (Forgery::SwapOnion, "attestation is for a different record"),
        (Forgery::OtherName, "record for other.tor"),
        (Forgery::StripProof, "\"proof\""),
    ];
    let liar = Liar::mirror(
        "127.0.0.3",
        &tmp.join("liar.log"),
        mirror.addr,
        "other.tor",
        &[],
        &forgeries.map(|(f, _)| f),
    );
    for (forgery, why) in forgeries {
        let (ok, out, err) = hs_lookup("example.tor", &liar.addr.to_string(), &key);
        assert!(!ok, "{forgery:?} was believed: {out}");
        assert!(out.is_empty(), "{forgery:?}: {out}");
        assert!(err.contains(why), "{forgery:?} refused for {why:?}: {err}");
        assert!(!err.contains(&onion_of(&owner(0xa7)).to_string()), "{err}");
    }
    assert_eq!(liar.lies(), forgeries.len());
}

#[test]
fn onions_hs_lookup_requires_cosignatures_and_shows_them() {
    let tmp = TempDir::new("hs-witness");
    let state = tmp.join("witness");
    let key_file = tmp.join("witness.key");
    let witness = witness_key(&key_file, &state);
    let quorum = Server::quorum(
        "127.0.0.1",
        &tmp.join("quorum"),
        &["--head-interval", "1", "--trust-witness", &witness],
    );
    let key = print_key(&quorum.state);
    let file = key_file.display().to_string();
    let _witness = Server::mirror(
        "127.0.0.2",
        &state,
        quorum.addr,
        &key,
        &["--witness-key", &file, "--cosign-interval", "1"],
    );
    let server = quorum.addr.to_string();
    let lookup = |extra: &[&str]| {
        let mut args = vec![
            "lookup",
            "nobody.tor",
            "--server",
            &server,
            "--direct",
            "--quorum-key",
            &key,
            "--witness-key",
            &witness,
        ];
        args.extend_from_slice(extra);
        run_hs(args)
    };
    let deadline = Instant::now() + REPLICATE_LIMIT;
    let (_, _, err) = loop {
        let result = lookup(&[]);
        if result.2.contains("proof of absence holds") || Instant::now() > deadline {
            break result;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        err.contains("cosigned by 1 trusted witnesses (1 required), fresh as of"),
        "{err}"
    );
    let stranger = owner(0x77).public().to_base64();
    let short = lookup(&["--witness-key", &stranger, "--witnesses", "2"]);
    assert_one_line_failure(
        "one cosignature of two required",
        &short,
        &["1 valid cosignatures", "2 are required", "--witnesses"],
    );
    let too_many = lookup(&["--witnesses", "2"]);
    assert_one_line_failure(
        "more required than keys",
        &too_many,
        &["--witnesses 2: only 1 --witness-key"],
    );
}

/// Name-taken evidence against the key with `seed`: example.tor attested
/// to one onion, then to another while the first was live.
fn name_taken(seed: u8) -> OwnershipEvidence {
    let quorum = SigningKey::from_seed(&[seed; 32]);
    let attested = |seq: u64, owner_seed: u8| {
        let r = record(&owner(owner_seed), "example.tor", 1, 0, &[]);
        let attestation = Attestation::sign(r.id(), seq, r.issued + seq, &quorum);
        Attested {
            seq,
            record: r,
            attestation,
        }
    };
    let (earlier, later) = (attested(1, EXAMPLE), attested(2, OTHER));
    assert_eq!(
        OwnershipEvidence::check(&earlier, &later),
        Some(Rule::NameTaken)
    );
    OwnershipEvidence::new(Rule::NameTaken, earlier, later)
}

#[test]
fn onions_hs_evidence_convicts_the_key_offline() {
    let tmp = TempDir::new("hs-evidence");
    let evidence = EvidenceFile::Ownership(Box::new(name_taken(9)));
    let state = tmp.join("state");
    std::fs::create_dir(&state).unwrap();
    let file = onions::evidence::write_file(&state, &evidence).unwrap();
    let (status, out, err) = run_hs(["evidence", file.to_str().unwrap()]);
    assert!(status.success(), "{err}");
    let convicted = SigningKey::from_seed(&[9; 32]).public().to_base64();
    assert!(
        out.starts_with("valid ownership evidence: Quorum key ") && out.contains(&convicted),
        "{out}"
    );
    assert!(out.contains("name_taken") && out.contains("seq 1"), "{out}");

    let mut value = evidence.to_value();
    value["records"][1]["attestation"]["accepted"] = 1.into();
    let tampered = tmp.join("tampered.json");
    std::fs::write(&tampered, value.to_string()).unwrap();
    let refused = run_hs(["evidence", tampered.to_str().unwrap()]);
    assert_one_line_failure(
        "tampered evidence",
        &refused,
        &["not valid evidence", "does not verify"],
    );
}

#[test]
fn a_stale_head_is_refused_as_behind() {
    let tmp = TempDir::new("hs-stale");
    let (_quorum, mirror, key) = registry(&tmp);
    let liar = Liar::mirror(
        "127.0.0.3",
        &tmp.join("liar.log"),
        mirror.addr,
        "other.tor",
        &["example.tor"],
        &[Forgery::Replay],
    );
    std::thread::sleep(Duration::from_secs(3));
    let (status, out, err) = run_hs([
        "lookup",
        "example.tor",
        "--server",
        &liar.addr.to_string(),
        "--direct",
        "--quorum-key",
        &key,
        "--max-head-age",
        "2",
    ]);
    assert!(!status.success(), "{out}");
    assert!(err.contains("the server is behind"), "{err}");
    let (ok, _, err) = hs_lookup("example.tor", &mirror.addr.to_string(), &key);
    assert!(ok, "the honest mirror's head is fresh: {err}");
}

#[test]
fn an_expired_record_leaves_every_head_alike() {
    let tmp = TempDir::new("expiry");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--head-interval", "1"]);
    let key = print_key(&quorum.state);
    let m1 = Server::mirror("127.0.0.2", &tmp.join("m1"), quorum.addr, &key, &[]);
    let m2 = Server::mirror("127.0.0.3", &tmp.join("m2"), m1.addr, &key, &[]);
    let mut client = quorum.client();
    let lasting = record(&owner(OTHER), "lasting.tor", 1, 0, &[]);
    let brief = short_lived(&owner(EXAMPLE), "brief.tor", 4);
    for r in [&lasting, &brief] {
        let reply = client.put(r);
        assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    }
    let before = m2.wait_head(2, REPLICATE_LIMIT);
    assert_eq!(before.size, 2);
    let after_expiry = |server: &Server| loop {
        let head = server.wait_head(2, REPLICATE_LIMIT);
        if head.time >= brief.expires {
            return head;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let heads: Vec<_> = [&quorum, &m1, &m2]
        .iter()
        .map(|s| after_expiry(s))
        .collect();
    for (server, head) in [&quorum, &m1, &m2].iter().zip(&heads) {
        assert_eq!(head.size, 1, "{}: {head:?}", server.addr);
        assert_eq!(head.root, heads[0].root, "{}: roots agree", server.addr);
        let reply = server.client().lookup("brief.tor");
        let Reply::NotFound { head, proof, .. } = reply else {
            panic!("{}: brief.tor still answered: {reply}", server.addr);
        };
        let name = RegisteredName::parse("brief.tor").unwrap();
        proof
            .verify_absence(&LeafKey::of(&name), &head.root)
            .unwrap();
    }
    for mirror in [&m1, &m2] {
        let audit = mirror.status().audit.expect("a mirror audits");
        assert_eq!(audit.state, AuditState::Ok, "{}", mirror.addr);
        assert_eq!(audit.mismatches, 0);
    }
}

#[test]
fn a_head_that_does_not_match_raises_the_alarm_below_it() {
    let tmp = TempDir::new("audit");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--head-interval", "1"]);
    let key = print_key(&quorum.state);
    let key_file = quorum.state.join(onions::server::QUORUM_KEY_FILE);
    let liar = Liar::upstream(
        "127.0.0.4",
        &tmp.join("liar.log"),
        quorum.addr,
        &key_file,
        Plan::FalseRoot(3),
    );
    let m1 = Server::mirror("127.0.0.2", &tmp.join("m1"), liar.addr, &key, &[]);
    let m2 = Server::mirror("127.0.0.3", &tmp.join("m2"), m1.addr, &key, &[]);
    let mut client = quorum.client();
    for (seed, name) in [(EXAMPLE, "example.tor"), (OTHER, "other.tor")] {
        let reply = client.put(&record(&owner(seed), name, 1, 0, &[]));
        assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    }
    let good = m2.wait_head(2, REPLICATE_LIMIT);
    assert_eq!(m1.wait_head(2, REPLICATE_LIMIT).root, good.root);

    let reply = client.put(&record(&owner(WWW), "third.tor", 1, 0, &[]));
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    for mirror in [&m1, &m2] {
        mirror.wait_seq(3, REPLICATE_LIMIT);
        let audit = wait_alarm(mirror);
        let mismatch = audit.last_mismatch.expect("the head that did not match");
        assert!(mismatch.head.seq >= 3);
        assert_ne!(mismatch.root, mismatch.head.root, "the root it computed");
        assert_eq!(mismatch.size, 3);
        let current = audit.matched.expect("the last head that matched");
        assert_eq!((current.seq, current.root), (2, good.root));
        let lines =
            testkit::servers::log_lines_with(mirror, &["ERROR", "AUDIT ALARM", "states root"]);
        assert!(!lines.is_empty(), "{}", mirror.log());
        // Answers go on against the last good head, with proofs.
        let Reply::Found {
            head,
            proof,
            record,
            attestation,
            ..
        } = mirror.client().lookup("example.tor")
        else {
            panic!("{}: example.tor not answered", mirror.addr);
        };
        assert_eq!(head.seq, 2);
        let name = RegisteredName::parse("example.tor").unwrap();
        proof
            .verify_presence(
                &LeafKey::of(&name),
                &record.id(),
                attestation.seq,
                &head.root,
            )
            .unwrap();
        let Reply::NotFound { head, .. } = mirror.client().lookup("third.tor") else {
            panic!(
                "{}: third.tor answered before a good head covers it",
                mirror.addr
            );
        };
        assert_eq!(head.seq, 2);
    }
    assert!(liar.lies() > 0);
}

/// Waits (bounded) until `mirror`'s audit is in alarm; returns it.
fn wait_alarm(mirror: &Server) -> onions::wire::AuditStatus {
    let deadline = std::time::Instant::now() + REPLICATE_LIMIT;
    loop {
        let audit = mirror.status().audit.expect("a mirror audits");
        if audit.state == AuditState::Alarm {
            return audit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} raised no alarm: {audit:?}\n{}",
            mirror.addr,
            mirror.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

testkit::liar_entry!();
