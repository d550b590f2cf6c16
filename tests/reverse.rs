//! Reverse lookups (PROTOCOL.md §12.5) with real servers on 127.0.0.x:
//! which names point at an onion, as owner or by a subdomain, answered by
//! the Quorum and by a mirror against their current heads, capped at 16
//! with `more`, bounded in what they read (`--max-reverse-leads`), and
//! forgotten once the record that pointed moves on; and
//! `onions-hs lookup --onion`, which shows a name only after a verified
//! lookup of it holds the onion, so a lying server (a real process, see
//! testkit's liars) cannot make it show one.

use onions::name::RegisteredName;
use onions::onion::OnionAddress;
use onions::wire::{Code, Reply, MAX_REVERSE_NAMES};
use serde_json::json;
use std::process::ExitStatus;
use std::time::Duration;
use testkit::liar::{Forgery, Liar};
use testkit::servers::{owner, print_key, record, Client, Server};
use testkit::{assert_one_line_failure, free_port_on, run_hs, TempDir};

testkit::liar_entry!();

/// How long a mirror may take to replicate and match a head.
const REPLICATE_LIMIT: Duration = Duration::from_secs(30);

/// Seeds of the owners and services: example.tor's owner, the service
/// that is www of example.tor and mirror of other.tor and owns third.tor,
/// other.tor's owner, a service no name points at.
const EXAMPLE: u8 = 1;
const SHARED: u8 = 2;
const OTHER: u8 = 3;
const NOBODY: u8 = 9;

/// The address of the key with `seed`.
fn onion(seed: u8) -> OnionAddress {
    OnionAddress::from_key(owner(seed).public())
}

/// Puts `records` at `server` (the Quorum), each accepted.
fn claim(server: &Server, records: &[onions::record::Record]) {
    let mut client = server.client();
    for r in records {
        let reply = client.put(r);
        assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    }
}

/// A Quorum (signing a head every second) and a mirror of it, trusting
/// its key, holding example.tor (www to SHARED), other.tor (mirror to
/// SHARED) and third.tor (owned by SHARED), all at seq 3.
fn registry(tmp: &TempDir) -> (Server, Server, String) {
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--head-interval", "1"]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    claim(
        &quorum,
        &[
            record(
                &owner(EXAMPLE),
                "example.tor",
                1,
                0,
                &[("www", &owner(SHARED))],
            ),
            record(
                &owner(OTHER),
                "other.tor",
                1,
                0,
                &[("mirror", &owner(SHARED))],
            ),
            record(&owner(SHARED), "third.tor", 1, 0, &[]),
        ],
    );
    mirror.wait_head(3, REPLICATE_LIMIT);
    (quorum, mirror, key)
}

/// The names `server` lists for `onion`, and its `more`.
fn listed(server: &Server, onion: &OnionAddress) -> (Vec<String>, bool) {
    match server.client().reverse(onion) {
        Reply::Names {
            onion: echoed,
            names,
            more,
            ..
        } => {
            assert_eq!(echoed, *onion);
            (names.iter().map(|n| n.to_string()).collect(), more)
        }
        other => panic!("{} answered reverse with {other}", server.addr),
    }
}

/// `onions-hs lookup --onion ONION` at `server`, directly, trusting `key`.
fn hs_reverse(onion: &str, server: &str, key: &str) -> (ExitStatus, String, String) {
    run_hs([
        "lookup",
        "--onion",
        onion,
        "--server",
        server,
        "--direct",
        "--quorum-key",
        key,
    ])
}

/// The lines `onions-hs lookup --onion` printed, after checking it
/// succeeded.
fn shown(result: &(ExitStatus, String, String)) -> Vec<&str> {
    let (status, out, err) = result;
    assert!(status.success(), "{status}: {err}");
    out.lines().collect()
}

#[test]
fn owners_and_subdomains_are_answered_at_the_quorum_and_at_a_mirror() {
    let tmp = TempDir::new("reverse-answers");
    let (quorum, mirror, key) = registry(&tmp);
    for server in [&quorum, &mirror] {
        assert_eq!(
            listed(server, &onion(EXAMPLE)),
            (vec!["example.tor".into()], false)
        );
        let shared = ["example.tor", "other.tor", "third.tor"].map(String::from);
        assert_eq!(listed(server, &onion(SHARED)), (shared.to_vec(), false));
        assert_eq!(listed(server, &onion(NOBODY)), (vec![], false));

        let at = server.addr.to_string();
        let result = hs_reverse(&onion(EXAMPLE).to_string(), &at, &key);
        assert_eq!(shown(&result), ["example.tor"]);
        assert!(result.2.contains("proof of presence holds"), "{}", result.2);
        let result = hs_reverse(&onion(SHARED).to_string(), &at, &key);
        assert_eq!(
            shown(&result),
            ["www.example.tor", "mirror.other.tor", "third.tor"]
        );
        let upper = onion(OTHER).to_string().to_uppercase();
        assert_eq!(shown(&hs_reverse(&upper, &at, &key)), ["other.tor"]);

        let none = hs_reverse(&onion(NOBODY).to_string(), &at, &key);
        assert_eq!(none.0.code(), Some(1), "{none:?}");
        let line = assert_one_line_failure(
            "an onion no name points at",
            &none,
            &["no name points at", &onion(NOBODY).to_string()],
        );
        assert!(!line.contains("refused"), "{line}");
    }
}

#[test]
fn an_invalid_onion_is_a_bad_request_and_a_server_without_a_head_says_so() {
    let tmp = TempDir::new("reverse-refusals");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let address = onion(EXAMPLE).to_string();
    let typo = format!("b{}", &address[1..]);
    let typo = if typo == address {
        format!("c{}", &address[1..])
    } else {
        typo
    };
    let mut client = quorum.client();
    for bad in [json!(typo), json!("example.tor"), json!(7)] {
        let reply = client.request_json(&json!({"type": "reverse", "id": 4, "onion": bad}));
        let Reply::Error(err) = reply else {
            panic!("{bad} answered with {reply}");
        };
        assert_eq!(err.code, Code::BadRequest, "{bad}");
        assert!(err.message.contains("onion"), "{err}");
    }
    let reply = client.request_json(&json!({"type": "reverse", "id": 5}));
    assert!(matches!(reply, Reply::Error(e) if e.code == Code::BadRequest));
    let refused = hs_reverse(&typo, &quorum.addr.to_string(), &key);
    assert_one_line_failure("a typo in --onion", &refused, &["--onion", "checksum"]);

    let nowhere = format!("127.0.0.1:{}", free_port_on("127.0.0.1"));
    let headless = Server::mirror_of("127.0.0.2", &tmp.join("mirror"), &nowhere, &key, &[]);
    let reply = headless.client().reverse(&onion(EXAMPLE));
    assert!(
        matches!(&reply, Reply::Error(e) if e.code == Code::NoHead),
        "{reply}"
    );
    let result = hs_reverse(&address, &headless.addr.to_string(), &key);
    assert_one_line_failure("a mirror without a head", &result, &["no_head"]);
}

#[test]
fn sixteen_names_at_most_and_more_when_there_are() {
    let tmp = TempDir::new("reverse-cap");
    let (quorum, mirror, key) = registry(&tmp);
    let many: Vec<_> = (0..MAX_REVERSE_NAMES + 2)
        .map(|i| {
            let name = format!("n{i:02}.tor");
            record(&owner(20), &name, 1, 0, &[("www", &owner(NOBODY))])
        })
        .collect();
    claim(&quorum, &many);
    mirror.wait_head(3 + many.len() as u64, REPLICATE_LIMIT);
    let first: Vec<String> = (0..MAX_REVERSE_NAMES)
        .map(|i| format!("n{i:02}.tor"))
        .collect();
    for server in [&quorum, &mirror] {
        assert_eq!(listed(server, &onion(NOBODY)), (first.clone(), true));
        let (names, more) = listed(server, &onion(20));
        assert_eq!((names.len(), more), (MAX_REVERSE_NAMES, true));
    }
    let result = hs_reverse(&onion(NOBODY).to_string(), &mirror.addr.to_string(), &key);
    let want: Vec<String> = first.iter().map(|n| format!("www.{n}")).collect();
    assert_eq!(shown(&result), want);
    assert!(result.2.contains("more than the 16"), "{}", result.2);
}

#[test]
fn past_max_reverse_leads_names_come_from_the_leads_read_and_it_is_logged() {
    let tmp = TempDir::new("reverse-leads");
    let args = ["--head-interval", "1", "--max-reverse-leads", "4"];
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &args);
    let every: Vec<String> = (0..6).map(|i| format!("m{i}.tor")).collect();
    let many: Vec<_> = every
        .iter()
        .map(|name| record(&owner(20), name, 1, 0, &[("www", &owner(NOBODY))]))
        .collect();
    claim(&quorum, &many);
    quorum.wait_head(many.len() as u64, REPLICATE_LIMIT);
    let (names, more) = listed(&quorum, &onion(NOBODY));
    assert_eq!((names.len(), more), (4, true), "{names:?}");
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    assert!(names.iter().all(|n| every.contains(n)), "{names:?}");
    let warned =
        testkit::servers::log_lines_with(&quorum, &["more than 4 leads", "--max-reverse-leads"]);
    assert_eq!(warned.len(), 1, "{}", quorum.log());
}

#[test]
fn a_moved_subdomain_is_no_longer_answered_also_after_a_restart() {
    let tmp = TempDir::new("reverse-moved");
    let (quorum, mut mirror, key) = registry(&tmp);
    claim(
        &quorum,
        &[record(
            &owner(EXAMPLE),
            "example.tor",
            2,
            0,
            &[("www", &owner(NOBODY))],
        )],
    );
    mirror.wait_head(4, REPLICATE_LIMIT);
    let check = |mirror: &Server| {
        for server in [&quorum, mirror] {
            let shared = ["other.tor", "third.tor"].map(String::from);
            assert_eq!(listed(server, &onion(SHARED)), (shared.to_vec(), false));
            assert_eq!(
                listed(server, &onion(NOBODY)),
                (vec!["example.tor".into()], false)
            );
            let at = server.addr.to_string();
            let result = hs_reverse(&onion(SHARED).to_string(), &at, &key);
            assert_eq!(shown(&result), ["mirror.other.tor", "third.tor"]);
            let result = hs_reverse(&onion(NOBODY).to_string(), &at, &key);
            assert_eq!(shown(&result), ["www.example.tor"]);
        }
    };
    check(&mirror);
    mirror.terminate();
    mirror.restart();
    mirror.wait_head(4, REPLICATE_LIMIT);
    check(&mirror);
}

#[test]
fn a_lying_server_cannot_make_onions_hs_show_a_name() {
    let tmp = TempDir::new("reverse-liar");
    let (_quorum, mirror, key) = registry(&tmp);
    let liar = Liar::reverse_mirror(
        "127.0.0.3",
        &tmp.join("liar.log"),
        mirror.addr,
        &["other.tor", "ghost.tor"],
        &[Forgery::Genuine],
    );
    let at = liar.addr.to_string();
    let result = hs_reverse(&onion(EXAMPLE).to_string(), &at, &key);
    assert_eq!(shown(&result), ["example.tor"]);
    for refused in ["refused other.tor", "refused ghost.tor"] {
        assert!(result.2.contains(refused), "{}", result.2);
    }
    let (status, out, err) = hs_reverse(&onion(NOBODY).to_string(), &at, &key);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("refused other.tor"), "{err}");
    assert!(err.contains("no name points at"), "{err}");
    assert!(liar.lies() >= 2);

    let attacker = onion(0xa7);
    let forger = Liar::reverse_mirror(
        "127.0.0.4",
        &tmp.join("forger.log"),
        mirror.addr,
        &["example.tor"],
        &[Forgery::Foreign],
    );
    let (status, out, err) = hs_reverse(&attacker.to_string(), &forger.addr.to_string(), &key);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(out.is_empty(), "a forged record was shown: {out}");
    assert!(err.contains("not a trusted Quorum key"), "{err}");
    let mut client = Client::connect(forger.addr);
    let Reply::Names { names, .. } = client.reverse(&attacker) else {
        panic!("the forger lists names");
    };
    assert_eq!(names, [RegisteredName::parse("example.tor").unwrap()]);
}
