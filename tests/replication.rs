//! Replication, end to end, with real `onions-server` processes: a Quorum on
//! 127.0.0.1, a mirror of it on 127.0.0.2 and a mirror of that mirror on
//! 127.0.0.3, over real sockets and real state directories.
//!
//! The story: an operator puts a record to the Quorum and gets an
//! attestation that verifies against the Quorum's printed key. The record
//! travels down the chain, and every server answers lookups of the name and
//! of its subdomains with the very same record and attestation, which a
//! client verifies as protocol.md §9 demands. An update (same key, higher
//! serial) replaces it everywhere. A mirror that starts late catches up with
//! the newest record of every name and nothing superseded. A mirror told to
//! trust the wrong key refuses everything and says why, while the Quorum
//! carries on. A late mirror of a Quorum holding hundreds of records (some
//! superseded) ends with the same live set. A record that expires leaves
//! the live set on every server: lookups stop finding it, a mirror started
//! afterwards never gets it, `status` stops counting it, and another key may
//! claim the name. Finally the operator's own tool, `onions-hs`, claims a
//! name, looks its subdomain up on a mirror and verifies the claim file.

mod common;

use common::servers::{attested_seq, owner, print_key, record, wait_until, Client, Server};
use common::{assert_one_line_failure, run_hs, TempDir};
use onions::attest::Attestation;
use onions::keys::{PublicKey, SigningKey};
use onions::lookup::{check_found, LookupError};
use onions::name::LookupName;
use onions::onion::OnionAddress;
use onions::record::Record;
use onions::verify::Verifier;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

/// How long replication may take to reach a server.
const REPLICATE_LIMIT: Duration = Duration::from_secs(20);

/// A client's verifier trusting only `key` (Base64), with no work minimum.
fn verifier(key: &str) -> Verifier {
    Verifier {
        min_work: 0,
        trusted: vec![PublicKey::from_base64(key).expect("a Base64 Quorum key")],
        max_skew: None,
    }
}

/// The v3 address of a service key.
fn onion_of(key: &SigningKey) -> OnionAddress {
    OnionAddress::from_key(key.public())
}

/// Looks `name` up on `server` and checks that the answer is `found` with
/// exactly `record` and `attestation`, that it verifies against `key`, and
/// that the name points at `target`.
fn assert_serves(
    server: &Server,
    name: &str,
    record: &Record,
    attestation: &Value,
    key: &str,
    target: &OnionAddress,
) {
    let reply = server.client().lookup(name);
    assert_eq!(
        reply["type"], "found",
        "lookup {name} on {}: {reply}",
        server.addr
    );
    assert_eq!(reply["id"], 2, "lookup {name} on {}: {reply}", server.addr);
    assert_eq!(
        reply["record"],
        record.to_value(),
        "lookup {name} on {} answered another record",
        server.addr
    );
    assert_eq!(
        &reply["attestation"], attestation,
        "lookup {name} on {} answered another attestation",
        server.addr
    );
    let lookup_name = LookupName::parse(name).unwrap();
    let answer = check_found(&reply, &lookup_name, &verifier(key), onions::clock::now())
        .unwrap_or_else(|e| panic!("lookup {name} on {} does not verify: {e}", server.addr));
    assert_eq!(
        &answer.target, target,
        "lookup {name} on {} points elsewhere",
        server.addr
    );
    assert_eq!(answer.record, *record);
}

/// Checks every field protocol §8 requires of a status reply.
fn assert_status(
    server: &Server,
    role: &str,
    head: u64,
    records: u64,
    subscribers: u64,
    key: &str,
    upstream: Option<SocketAddr>,
) {
    let status = server.status();
    let at = server.addr;
    assert_eq!(status["type"], "status", "{at}: {status}");
    assert_eq!(status["id"], "s", "{at}: {status}");
    assert_eq!(status["role"], role, "{at}: {status}");
    assert_eq!(
        status["version"],
        env!("CARGO_PKG_VERSION"),
        "{at}: {status}"
    );
    assert_eq!(status["head"], head, "{at}: {status}");
    assert_eq!(status["records"], records, "{at}: {status}");
    assert_eq!(status["subscribers"], subscribers, "{at}: {status}");
    assert_eq!(status["min_work"], 0, "{at}: {status}");
    assert_eq!(status["quorum_keys"], json!([key]), "{at}: {status}");
    match upstream {
        Some(addr) => assert_eq!(
            status["upstream"],
            json!({"addr": addr.to_string(), "connected": true}),
            "{at}: {status}"
        ),
        None => assert!(
            status.get("upstream").is_none(),
            "{at}: the Quorum has no upstream: {status}"
        ),
    }
}

/// Waits until `server` reports `field` equal to `value` in its status.
fn wait_status(server: &Server, field: &str, value: Value) {
    wait_until(
        &format!("{} to report {field} = {value}", server.addr),
        REPLICATE_LIMIT,
        || server.status()[field] == value,
    );
}

/// Waits until a mirror's upstream session is up.
fn wait_connected(mirror: &Server) {
    wait_until(
        &format!("mirror {} to connect upstream", mirror.addr),
        REPLICATE_LIMIT,
        || mirror.status()["upstream"]["connected"] == true,
    );
}

#[test]
fn a_put_reaches_a_mirror_and_a_mirror_of_the_mirror() {
    let tmp = TempDir::new("replication-chain");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    let second = Server::mirror("127.0.0.3", &tmp.join("second"), mirror.addr, &key, &[]);
    wait_connected(&mirror);
    wait_connected(&second);
    wait_status(&quorum, "subscribers", json!(1));
    wait_status(&mirror, "subscribers", json!(1));
    assert_status(&quorum, "quorum", 0, 0, 1, &key, None);
    assert_status(&mirror, "mirror", 0, 0, 1, &key, Some(quorum.addr));
    assert_status(&second, "mirror", 0, 0, 0, &key, Some(mirror.addr));

    // The claim: the owner's key, two subdomains (one of two labels).
    let (service, www, deep) = (owner(1), owner(2), owner(3));
    let first = record(
        &service,
        "chain.tor",
        1,
        0,
        &[("www", &www), ("a.b", &deep)],
    );
    let accepted = quorum.client().put(&first);
    assert_eq!(accepted["type"], "accepted", "{accepted}");
    assert_eq!(accepted["id"], 1, "{accepted}");
    assert_eq!(attested_seq(&accepted, &first, &key), 1);
    let attestation = Attestation::from_value(&accepted["attestation"]).unwrap();
    assert_eq!(attestation.quorum.to_base64(), key);
    verifier(&key)
        .check_answer(&first, &attestation, onions::clock::now())
        .expect("the Quorum's attestation verifies with its printed key");

    mirror.wait_head(1, REPLICATE_LIMIT);
    second.wait_head(1, REPLICATE_LIMIT);
    for server in [&quorum, &mirror, &second] {
        let a = &accepted["attestation"];
        assert_serves(server, "chain.tor", &first, a, &key, &onion_of(&service));
        assert_serves(server, "www.chain.tor", &first, a, &key, &onion_of(&www));
        assert_serves(server, "a.b.chain.tor", &first, a, &key, &onion_of(&deep));
    }
    assert_status(&quorum, "quorum", 1, 1, 1, &key, None);
    assert_status(&mirror, "mirror", 1, 1, 1, &key, Some(quorum.addr));
    assert_status(&second, "mirror", 1, 1, 0, &key, Some(mirror.addr));

    // The same answer does not verify for a client trusting another key.
    let stranger = SigningKey::from_seed(&[99; 32]).public().to_base64();
    let reply = second.client().lookup("chain.tor");
    let refused = check_found(
        &reply,
        &LookupName::parse("chain.tor").unwrap(),
        &verifier(&stranger),
        onions::clock::now(),
    );
    assert!(
        matches!(refused, Err(LookupError::Forged(_))),
        "an answer attested by an untrusted key must be refused: {refused:?}"
    );

    // An update by the same key with a higher serial replaces it everywhere.
    let newer_www = owner(4);
    let update = record(&service, "chain.tor", 2, 0, &[("www", &newer_www)]);
    let accepted = quorum.client().put(&update);
    assert_eq!(accepted["type"], "accepted", "{accepted}");
    assert_eq!(attested_seq(&accepted, &update, &key), 2);
    mirror.wait_head(2, REPLICATE_LIMIT);
    second.wait_head(2, REPLICATE_LIMIT);
    for server in [&quorum, &mirror, &second] {
        let a = &accepted["attestation"];
        assert_serves(server, "chain.tor", &update, a, &key, &onion_of(&service));
        assert_serves(
            server,
            "www.chain.tor",
            &update,
            a,
            &key,
            &onion_of(&newer_www),
        );
        // The dropped subdomain: the live record no longer has it.
        let reply = server.client().lookup("a.b.chain.tor");
        assert_eq!(reply["record"]["serial"], 2, "{reply}");
        let gone = check_found(
            &reply,
            &LookupName::parse("a.b.chain.tor").unwrap(),
            &verifier(&key),
            onions::clock::now(),
        );
        assert!(
            matches!(gone, Err(LookupError::NoSubdomain(_))),
            "{}: a.b.chain.tor should be gone after the update: {gone:?}",
            server.addr
        );
    }
    // One live record per name: the update replaced the first.
    assert_status(&quorum, "quorum", 2, 1, 1, &key, None);
    assert_status(&mirror, "mirror", 2, 1, 1, &key, Some(quorum.addr));
    assert_status(&second, "mirror", 2, 1, 0, &key, Some(mirror.addr));
}

/// Reads pushes from a subscriber connection until one with `seq` arrives;
/// returns every push read, in order.
fn pushes_until(client: &mut Client, seq: u64) -> Vec<Value> {
    let mut pushes = Vec::new();
    loop {
        let push = client
            .read()
            .unwrap_or_else(|| panic!("the subscription closed before seq {seq}: {pushes:?}"));
        if push["type"] == "heartbeat" {
            continue;
        }
        assert_eq!(push["type"], "record", "{push}");
        let this = push["seq"].as_u64().expect("a push has a seq");
        pushes.push(push);
        if this >= seq {
            return pushes;
        }
    }
}

#[test]
fn a_late_mirror_catches_up_with_the_newest_record_of_every_name() {
    let tmp = TempDir::new("replication-catch-up");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);

    // Six puts for three names; three of them are superseded.
    let (a, b, c) = (owner(11), owner(12), owner(13));
    let puts = [
        record(&a, "alpha.tor", 1, 0, &[]),
        record(&b, "beta.tor", 1, 0, &[]),
        record(&a, "alpha.tor", 2, 0, &[("www", &b)]),
        record(&c, "gamma.tor", 1, 0, &[("mail", &a)]),
        record(&b, "beta.tor", 2, 0, &[("www", &c)]),
        record(&a, "alpha.tor", 3, 0, &[("www", &c)]),
    ];
    let mut attestations = Vec::new();
    for (i, rec) in puts.iter().enumerate() {
        let reply = quorum.client().put(rec);
        assert_eq!(reply["type"], "accepted", "put {i}: {reply}");
        assert_eq!(attested_seq(&reply, rec, &key), i as u64 + 1);
        attestations.push(reply["attestation"].clone());
    }
    let status = quorum.status();
    assert_eq!(status["head"], 6, "{status}");
    assert_eq!(status["records"], 3, "{status}");
    // The live set, by seq: gamma (4), beta (5), alpha (6).
    let live = [3usize, 4, 5];

    // A subscriber from seq 1 is sent only the live records, in seq order,
    // then what is accepted next and nothing in between.
    let mut sub = quorum.client();
    let subscribed = sub.request(&json!({"type": "subscribe", "id": "sub", "from": 1}));
    assert_eq!(
        subscribed,
        json!({"type": "subscribed", "id": "sub", "head": 6})
    );
    let pushed = pushes_until(&mut sub, 6);
    assert_eq!(
        pushed.iter().map(|p| p["seq"].clone()).collect::<Vec<_>>(),
        vec![json!(4), json!(5), json!(6)],
        "superseded records must not be pushed: {pushed:?}"
    );
    for (push, &i) in pushed.iter().zip(&live) {
        assert_eq!(push["record"], puts[i].to_value(), "{push}");
        assert_eq!(push["attestation"], attestations[i], "{push}");
    }
    let delta = record(&c, "delta.tor", 1, 0, &[]);
    let reply = quorum.client().put(&delta);
    assert_eq!(attested_seq(&reply, &delta, &key), 7);
    let next = pushes_until(&mut sub, 7);
    assert_eq!(next.len(), 1, "only seq 7 follows seq 6: {next:?}");
    assert_eq!(next[0]["record"], delta.to_value());
    assert_eq!(next[0]["attestation"], reply["attestation"]);
    drop(sub);

    // A mirror started now, and a mirror of it, catch up with all of it.
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    let second = Server::mirror("127.0.0.3", &tmp.join("second"), mirror.addr, &key, &[]);
    mirror.wait_head(7, REPLICATE_LIMIT);
    second.wait_head(7, REPLICATE_LIMIT);
    let quorum_records = quorum.status()["records"].clone();
    assert_eq!(quorum_records, 4);
    for server in [&mirror, &second] {
        let status = server.status();
        assert_eq!(
            status["records"], quorum_records,
            "{}: {status}",
            server.addr
        );
        assert_eq!(status["head"], 7, "{}: {status}", server.addr);
    }
    for server in [&quorum, &mirror, &second] {
        assert_serves(
            server,
            "alpha.tor",
            &puts[5],
            &attestations[5],
            &key,
            &onion_of(&a),
        );
        assert_serves(
            server,
            "www.alpha.tor",
            &puts[5],
            &attestations[5],
            &key,
            &onion_of(&c),
        );
        assert_serves(
            server,
            "www.beta.tor",
            &puts[4],
            &attestations[4],
            &key,
            &onion_of(&c),
        );
        assert_serves(
            server,
            "mail.gamma.tor",
            &puts[3],
            &attestations[3],
            &key,
            &onion_of(&a),
        );
        assert_serves(
            server,
            "delta.tor",
            &delta,
            &reply["attestation"],
            &key,
            &onion_of(&c),
        );
    }
    // The raw subscriber is gone; the mirror is the Quorum's one subscriber.
    wait_status(&quorum, "subscribers", json!(1));
    wait_status(&mirror, "subscribers", json!(1));
}

#[test]
fn a_mirror_trusting_the_wrong_key_applies_nothing() {
    let tmp = TempDir::new("replication-wrong-key");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let first = record(&owner(21), "trusted.tor", 1, 0, &[]);
    let reply = quorum.client().put(&first);
    assert_eq!(attested_seq(&reply, &first, &key), 1);

    let wrong = SigningKey::from_seed(&[22; 32]).public().to_base64();
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &wrong, &[]);
    wait_until(
        "the mirror to log why it refuses the Quorum's records",
        REPLICATE_LIMIT,
        || {
            let log = mirror.log();
            log.contains("not a trusted Quorum key") && log.contains(&key)
        },
    );
    let status = mirror.status();
    assert_eq!(status["head"], 0, "{status}");
    assert_eq!(status["records"], 0, "{status}");
    assert_eq!(status["quorum_keys"], json!([wrong]), "{status}");
    let lookup = mirror.client().lookup("trusted.tor");
    assert_eq!(lookup["type"], "error", "{lookup}");
    assert_eq!(lookup["code"], "not_found", "{lookup}");

    // The Quorum carries on: it accepts and answers as before.
    let second = record(&owner(23), "carry-on.tor", 1, 0, &[]);
    let reply = quorum.client().put(&second);
    assert_eq!(attested_seq(&reply, &second, &key), 2);
    let found = quorum.client().lookup("carry-on.tor");
    assert_eq!(found["type"], "found", "{found}");
    assert_eq!(found["record"], second.to_value());
    // And the mirror still has nothing, now that more was offered.
    wait_until(
        "the mirror to refuse again after reconnecting",
        REPLICATE_LIMIT,
        || mirror.log().matches("not a trusted Quorum key").count() >= 2,
    );
    let status = mirror.status();
    assert_eq!(status["head"], 0, "{status}");
    assert_eq!(status["records"], 0, "{status}");
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
    let document: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let claimed = Record::from_value(&document["record"]).expect("the claim file's record");
    assert_eq!(claimed.name.as_str(), "hs-e2e.tor");
    assert_eq!(claimed.onion, onion_of(&service));
    assert_eq!((claimed.serial, claimed.work), (1, 2));
    assert_eq!(attested_seq(&document, &claimed, &key), 1);

    // The Quorum and the mirror serve exactly what the claim file holds.
    mirror.wait_head(1, REPLICATE_LIMIT);
    for server in [&quorum, &mirror] {
        assert_serves(
            server,
            "www.hs-e2e.tor",
            &claimed,
            &document["attestation"],
            &key,
            &www,
        );
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
    let document: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let updated = Record::from_value(&document["record"]).unwrap();
    assert_eq!(updated.serial, 2);
    assert_eq!(attested_seq(&document, &updated, &key), 2);
    mirror.wait_head(2, REPLICATE_LIMIT);
    let (status, stdout, stderr) = lookup("WWW.hs-e2e.tor");
    assert!(status.success(), "lookup failed: {stderr}");
    assert_eq!(stdout, format!("www.hs-e2e.tor -> {moved}\n"));
}

/// A record for `name` by `key` that expires `secs` seconds from now.
fn short_lived(key: &SigningKey, name: &str, secs: u64) -> Record {
    let issued = onions::clock::now();
    let claim = onions::record::Claim {
        name: onions::name::RegisteredName::parse(name).unwrap(),
        subdomains: Default::default(),
        contact: String::new(),
        serial: 1,
        issued,
        expires: issued + secs,
        work: 0,
    };
    onions::operator::finish_record(claim, key, 1, Duration::from_millis(50), &mut |_| {}).unwrap()
}

#[test]
fn an_expired_record_leaves_the_live_set_everywhere() {
    let tmp = TempDir::new("replication-expiry");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    let brief = short_lived(&owner(41), "brief.tor", 3);
    let lasting = record(&owner(42), "lasting.tor", 1, 0, &[]);
    assert_eq!(attested_seq(&quorum.client().put(&brief), &brief, &key), 1);
    assert_eq!(
        attested_seq(&quorum.client().put(&lasting), &lasting, &key),
        2
    );
    mirror.wait_head(2, REPLICATE_LIMIT);

    // Once it expires, no server answers with it.
    wait_until("brief.tor to expire", Duration::from_secs(10), || {
        onions::clock::now() > brief.expires
    });
    for server in [&quorum, &mirror] {
        let reply = server.client().lookup("brief.tor");
        assert_eq!(reply["code"], "not_found", "{}: {reply}", server.addr);
        assert_eq!(server.client().lookup("lasting.tor")["type"], "found");
    }
    // A mirror that starts now catches up with the live set only.
    let late = Server::mirror("127.0.0.3", &tmp.join("late"), quorum.addr, &key, &[]);
    late.wait_head(2, REPLICATE_LIMIT);
    assert_eq!(late.client().lookup("brief.tor")["code"], "not_found");
    assert_eq!(late.client().lookup("lasting.tor")["type"], "found");
    // `records` is the live count (protocol §8), and expired records leave
    // the live set (§6): one live record, on every server alike.
    let counts: Vec<(SocketAddr, Value)> = [&quorum, &mirror, &late]
        .iter()
        .map(|s| (s.addr, s.status()["records"].clone()))
        .collect();

    // The name is free again: another key may claim it, everywhere.
    let rival = record(&owner(43), "brief.tor", 1, 0, &[]);
    assert_eq!(attested_seq(&quorum.client().put(&rival), &rival, &key), 3);
    mirror.wait_head(3, REPLICATE_LIMIT);
    late.wait_head(3, REPLICATE_LIMIT);
    for server in [&quorum, &mirror, &late] {
        let a = &quorum.client().lookup("brief.tor")["attestation"];
        assert_serves(server, "brief.tor", &rival, a, &key, &onion_of(&owner(43)));
    }

    assert!(
        counts.iter().all(|(_, records)| *records == 1),
        "status records must count only live records once brief.tor expired \
         (Quorum, mirror, late mirror): {counts:?}"
    );
}

#[test]
fn a_late_mirror_catches_up_with_hundreds_of_records() {
    const NAMES: u64 = 200;
    let tmp = TempDir::new("replication-many");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let addr = quorum.addr;
    // Four operators put 50 names each, in parallel; every fifth name is
    // then updated once, so 40 records are superseded.
    std::thread::scope(|scope| {
        for part in 0..4u64 {
            scope.spawn(move || {
                let service = owner(50 + part as u8);
                let mut client = Client::connect(addr);
                for i in (part..NAMES).step_by(4) {
                    let name = format!("n{i}.tor");
                    let rec = record(&service, &name, 1, 0, &[]);
                    assert_eq!(client.put(&rec)["type"], "accepted", "{name}");
                    if i % 5 == 0 {
                        let rec = record(&service, &name, 2, 0, &[("www", &service)]);
                        assert_eq!(client.put(&rec)["type"], "accepted", "{name} update");
                    }
                }
            });
        }
    });
    let head = NAMES + NAMES / 5;
    let status = quorum.status();
    assert_eq!(status["head"], head, "{status}");
    assert_eq!(status["records"], NAMES, "{status}");

    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    let second = Server::mirror("127.0.0.3", &tmp.join("second"), mirror.addr, &key, &[]);
    mirror.wait_head(head, REPLICATE_LIMIT);
    second.wait_head(head, REPLICATE_LIMIT);
    for server in [&mirror, &second] {
        let status = server.status();
        assert_eq!(status["records"], NAMES, "{}: {status}", server.addr);
        assert_eq!(status["head"], head, "{}: {status}", server.addr);
    }
    // Every name answers the same on all three, and the updated ones with
    // their second serial.
    for i in (0..NAMES).step_by(7) {
        let name = format!("n{i}.tor");
        let at_quorum = quorum.client().lookup(&name);
        assert_eq!(at_quorum["type"], "found", "{at_quorum}");
        let serial = if i % 5 == 0 { 2 } else { 1 };
        assert_eq!(at_quorum["record"]["serial"], serial, "{at_quorum}");
        for server in [&mirror, &second] {
            assert_eq!(server.client().lookup(&name), at_quorum, "{name}");
        }
    }
}
