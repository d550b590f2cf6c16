//! Witnesses (PROTOCOL.md §11) on 127.0.0.x: a Quorum, three witnesses
//! and a mirror that collects two cosignatures, clients that require two.
//!
//! - answers carry heads with two trusted cosignatures and clients accept
//!   them; with one witness left, answers go stale and clients say why;
//! - with the Quorum stopped for longer than the head age limit, lookups
//!   keep working on the witnesses' fresh cosignatures; a put waits for it;
//! - a Quorum that hands a live name to another key: the witness refuses to
//!   cosign and writes evidence that `onions-hs evidence` accepts;
//! - a witness killed with SIGKILL while heads stream in never cosigns two
//!   conflicting heads (every cosignature it ever sent is recorded);
//! - an equivocating Quorum (a liar with its key showing one witness a
//!   split view): the minority head never gathers two cosignatures, no
//!   client accepts an answer under it, and evidence files appear where
//!   both heads were seen.

use onions::cosign::{Cosignature, Quorate};
use onions::head::SignedHead;
use onions::lookup::{check_reply, LookupError, Policy, Resolution};
use onions::name::LookupName;
use onions::verify::Verifier;
use onions::wire::{Code, Reply, Request};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::liar::{Liar, Plan};
use testkit::servers::{owner, print_key, record, witness_key, Client, Server};
use testkit::{run_hs, TempDir};

/// How long replication and cosigning may take.
const LIMIT: Duration = Duration::from_secs(30);

testkit::liar_entry!();

/// The witness key file of the witness whose state is `state`.
fn witness_key_file(state: &Path) -> PathBuf {
    state.with_extension("witness_key")
}

/// A Quorum, three witnesses under it, and a mirror under the first
/// witness collecting two cosignatures.
struct Network {
    quorum: Server,
    witnesses: Vec<Server>,
    mirror: Server,
    quorum_key: String,
    witness_keys: Vec<String>,
}

/// `--trust-witness` for every key.
fn trust_flags(keys: &[String]) -> Vec<String> {
    keys.iter()
        .flat_map(|k| ["--trust-witness".to_owned(), k.clone()])
        .collect()
}

impl Network {
    /// Starts it; `extra_witness` flags go to every witness (after the
    /// shared ones), `cosign_to_mirror` also sends cosignatures straight
    /// to the mirror.
    fn start(tmp: &TempDir, extra_witness: &[&str], cosign_to_mirror: bool) -> Network {
        let states: Vec<PathBuf> = (0..3).map(|i| tmp.join(format!("witness{i}"))).collect();
        let witness_keys: Vec<String> = states
            .iter()
            .map(|s| witness_key(&witness_key_file(s), s))
            .collect();
        let trust = trust_flags(&witness_keys);
        let mut quorum_flags = vec!["--head-interval", "1"];
        quorum_flags.extend(trust.iter().map(String::as_str));
        let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &quorum_flags);
        let quorum_key = print_key(&quorum.state);
        let mirror_port = testkit::free_port_on("127.0.0.20");
        let mirror_addr = format!("127.0.0.20:{mirror_port}");
        let witnesses: Vec<Server> = states
            .iter()
            .enumerate()
            .map(|(i, state)| {
                let key_file = witness_key_file(state).display().to_string();
                let mut flags: Vec<String> = vec!["--witness-key".into(), key_file];
                flags.extend(trust.iter().cloned());
                flags.extend(["--witnesses".into(), "2".into()]);
                if cosign_to_mirror {
                    flags.extend(["--cosign-to".into(), quorum.addr.to_string()]);
                    flags.extend(["--cosign-to".into(), mirror_addr.clone()]);
                }
                flags.extend(extra_witness.iter().map(|s| s.to_string()));
                let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                Server::mirror(
                    &format!("127.0.0.{}", 11 + i),
                    state,
                    quorum.addr,
                    &quorum_key,
                    &flags,
                )
            })
            .collect();
        let mut mirror_flags: Vec<&str> = trust.iter().map(String::as_str).collect();
        mirror_flags.extend(["--witnesses", "2"]);
        let mirror = Server::mirror_at(
            mirror_addr.parse().unwrap(),
            &tmp.join("mirror"),
            witnesses[0].addr,
            &quorum_key,
            &mirror_flags,
        );
        Network {
            quorum,
            witnesses,
            mirror,
            quorum_key,
            witness_keys,
        }
    }

    /// Every server's log, for failure messages.
    fn logs(&self) -> String {
        let mut all = format!("--- quorum\n{}", self.quorum.log());
        for (i, w) in self.witnesses.iter().enumerate() {
            all.push_str(&format!("--- witness {i}\n{}", w.log()));
        }
        all.push_str(&format!("--- mirror\n{}", self.mirror.log()));
        all
    }

    /// What a client requiring `needed` of the three witnesses checks.
    fn policy(&self, needed: usize, max_head_age: u64) -> Policy {
        Policy {
            verifier: Verifier {
                min_work: 0,
                trusted: onions::cli::quorum_keys(std::slice::from_ref(&self.quorum_key)).unwrap(),
                max_skew: None,
            },
            max_head_age,
            witnesses: Quorate {
                trusted: onions::cli::quorum_keys(&self.witness_keys).unwrap(),
                needed,
            },
        }
    }
}

/// Looks `name` up at `server` and checks the answer with `policy`.
fn lookup(server: SocketAddr, name: &str, policy: &Policy) -> Result<Resolution, LookupError> {
    let reply = Client::connect(server).lookup(name);
    let name = LookupName::from_user(name).unwrap();
    check_reply(reply, &name, policy, onions::clock::now())
}

/// Waits (bounded) until `check` holds for a lookup of `name` at `server`.
fn wait_lookup(
    server: SocketAddr,
    name: &str,
    policy: &Policy,
    what: &str,
    mut check: impl FnMut(&Result<Resolution, LookupError>) -> bool,
) -> Result<Resolution, LookupError> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let result = lookup(server, name, policy);
        if check(&result) {
            return result;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: last answer from {server}: {result:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The cosignatures in a lookup's reply.
fn reply_cosignatures(reply: &Reply) -> (SignedHead, Vec<Cosignature>) {
    match reply {
        Reply::Found {
            head, cosignatures, ..
        }
        | Reply::NotFound {
            head, cosignatures, ..
        } => (head.clone(), cosignatures.clone()),
        other => panic!("not an answer: {other}"),
    }
}

#[test]
fn answers_carry_two_cosignatures_and_go_stale_with_one_witness_left() {
    let tmp = TempDir::new("witnesses");
    let mut net = Network::start(&tmp, &["--cosign-interval", "1"], false);
    let reply = net
        .quorum
        .client()
        .put(&record(&owner(1), "example.tor", 1, 0, &[]));
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");

    let policy = net.policy(2, 600);
    let found = wait_lookup(
        net.mirror.addr,
        "example.tor",
        &policy,
        "a cosigned answer",
        |r| matches!(r, Ok(Resolution::Found(_))),
    );
    assert!(found.is_ok());
    let reply = Client::connect(net.mirror.addr).lookup("example.tor");
    let (head, cosigs) = reply_cosignatures(&reply);
    assert!(head.seq >= 1);
    assert!(cosigs.len() >= 2, "{reply}");
    let absent = lookup(net.mirror.addr, "nobody.tor", &policy);
    assert!(matches!(absent, Ok(Resolution::Absent(_))), "{absent:?}");

    let strict = net.policy(3, 600);
    let all_three = wait_lookup(
        net.mirror.addr,
        "example.tor",
        &strict,
        "three cosignatures",
        |r| r.is_ok(),
    );
    assert!(all_three.is_ok());
    let status = net.mirror.status();
    let cosign = status
        .cosignatures
        .expect("the mirror collects cosignatures");
    assert_eq!(cosign.needed, 2);
    assert!(cosign.current >= 2, "{cosign:?}");
    let witness = net.witnesses[1]
        .status()
        .cosignatures
        .unwrap()
        .witness
        .unwrap();
    assert!(witness.made >= 1 && witness.alarm.is_none(), "{witness:?}");
    assert_eq!(witness.key, net.witness_keys[1]);

    net.witnesses[1].terminate();
    net.witnesses[2].terminate();
    let short = net.policy(2, 3);
    let refused = wait_lookup(
        net.mirror.addr,
        "example.tor",
        &short,
        "answers go stale with one witness left",
        |r| r.is_err(),
    );
    let err = refused.unwrap_err();
    assert!(
        !err.server_lied(),
        "a mirror short of cosignatures is behind: {err}"
    );
    let text = err.to_string();
    assert!(text.contains("cosign"), "the refusal says why: {text}");

    let reply = net
        .quorum
        .client()
        .put(&record(&owner(2), "other.tor", 1, 0, &[]));
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    std::thread::sleep(Duration::from_secs(2));
    let unserved = lookup(net.mirror.addr, "other.tor", &policy);
    assert!(
        !matches!(unserved, Ok(Resolution::Found(_))),
        "a head with one cosignature is not served: {unserved:?}"
    );
}

#[test]
fn lookups_keep_working_on_witness_cosignatures_while_the_quorum_is_away() {
    let tmp = TempDir::new("witnesses-away");
    let mut net = Network::start(&tmp, &["--cosign-interval", "1"], true);
    let reply = net
        .quorum
        .client()
        .put(&record(&owner(1), "example.tor", 1, 0, &[]));
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    let policy = net.policy(2, 4);
    let before = wait_lookup(
        net.mirror.addr,
        "example.tor",
        &policy,
        "a cosigned answer",
        |r| matches!(r, Ok(Resolution::Found(_))),
    );
    assert!(before.is_ok());

    net.quorum.terminate();
    std::thread::sleep(Duration::from_secs(7));
    let found = lookup(net.mirror.addr, "example.tor", &policy);
    let Ok(Resolution::Found(answer)) = found else {
        panic!("still answered on fresh cosignatures: {found:?}");
    };
    assert!(
        answer.head.time + 6 <= onions::clock::now(),
        "the head itself is older than the age limit"
    );
    assert!(
        Client::try_connect(net.quorum.addr).is_none(),
        "the Quorum is away"
    );

    net.quorum.restart();
    let mut client = net.quorum.client();
    let reply = client.put(&record(&owner(2), "other.tor", 1, 0, &[]));
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    let deadline = Instant::now() + LIMIT;
    loop {
        let after = lookup(net.mirror.addr, "other.tor", &policy);
        if matches!(after, Ok(Resolution::Found(_))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new name is answered once the Quorum is back: {after:?}\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `cosign` request straight to a server: a forged or untrusted
/// cosignature is refused with the right code.
#[test]
fn forged_and_untrusted_cosignatures_are_refused() {
    let tmp = TempDir::new("witnesses-refused");
    let net = Network::start(&tmp, &[], false);
    let head = net.quorum.wait_head(0, LIMIT);
    let stranger = onions::keys::SigningKey::from_seed(&[77; 32]);
    let untrusted = Cosignature::sign(&head, onions::clock::now(), &stranger);
    let reply = net.quorum.client().request(&Request::Cosign {
        id: 1.into(),
        head: head.clone(),
        cosignature: untrusted,
    });
    assert!(
        matches!(&reply, Reply::Error(e) if e.code == Code::BadRequest && e.message.contains("--trust-witness")),
        "{reply}"
    );
    let mut forged = reply_cosignatures(&Client::connect(net.quorum.addr).lookup("x.tor")).1;
    if let Some(first) = forged.first_mut() {
        first.time += 1;
        let reply = net.quorum.client().request(&Request::Cosign {
            id: 2.into(),
            head,
            cosignature: first.clone(),
        });
        assert!(
            matches!(&reply, Reply::Error(e) if e.code == Code::BadSignature),
            "{reply}"
        );
    }
}

/// Records every `cosign` request it gets and answers `cosigned`: what a
/// witness sent, kept outside the witness.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(SignedHead, Cosignature)>>>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.30:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || {
                    let mut out = stream.try_clone().unwrap();
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { return };
                        let Ok(Request::Cosign {
                            id,
                            head,
                            cosignature,
                        }) = Request::parse(line.as_bytes())
                        else {
                            return;
                        };
                        kept.lock().unwrap().push((head, cosignature));
                        let reply = Reply::Cosigned { id, count: 1 }.to_line();
                        if out.write_all(&reply).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Recorder { addr, seen }
    }
}

#[test]
fn a_witness_killed_at_random_never_cosigns_two_conflicting_heads() {
    let tmp = TempDir::new("witnesses-kill");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--head-interval", "1"]);
    let quorum_key = print_key(&quorum.state);
    let recorder = Recorder::start();
    let state = tmp.join("witness");
    let key_file = witness_key_file(&state);
    let key = witness_key(&key_file, &state);
    let mut witness = Server::mirror(
        "127.0.0.11",
        &state,
        quorum.addr,
        &quorum_key,
        &[
            "--witness-key",
            &key_file.display().to_string(),
            "--cosign-to",
            &recorder.addr.to_string(),
            "--cosign-interval",
            "1",
        ],
    );
    let mut client = quorum.client();
    let mut seed = 0u8;
    let mut rng = 0x9e37_79b9_u32;
    for round in 0..6 {
        for _ in 0..5 {
            seed = seed.wrapping_add(1);
            let reply = client.put(&record(&owner(seed), &format!("n{seed}.tor"), 1, 0, &[]));
            assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            std::thread::sleep(Duration::from_millis(u64::from(rng % 40)));
        }
        if round % 2 == 0 {
            witness.kill9();
        } else {
            witness.terminate();
        }
        witness.restart();
    }
    let last = quorum.wait_head(u64::from(seed), LIMIT);
    let deadline = Instant::now() + LIMIT;
    while !recorder
        .seen
        .lock()
        .unwrap()
        .iter()
        .any(|(h, _)| h.seq >= last.seq)
    {
        assert!(
            Instant::now() < deadline,
            "the witness cosigns the newest head"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen = recorder.seen.lock().unwrap().clone();
    assert!(seen.len() >= 6, "cosignatures were sent: {}", seen.len());
    for (head, cosig) in &seen {
        assert_eq!(cosig.witness.to_base64(), key);
        assert!(cosig.holds_for(&head.id()));
    }
    for (i, (a, _)) in seen.iter().enumerate() {
        for (b, _) in &seen[i + 1..] {
            assert!(
                !a.conflicts(b),
                "conflicting heads cosigned: {a:?} and {b:?}"
            );
        }
    }
    let mut times: Vec<(u64, u64)> = Vec::new();
    for (head, cosig) in &seen {
        times.push((cosig.time, head.seq));
    }
    times.sort_unstable();
    assert!(
        times.windows(2).all(|w| w[0].1 <= w[1].1),
        "a later cosignature never names a lower head: {times:?}"
    );
}

/// The evidence files of `kind` in the state directory `state`.
fn evidence_files(state: &Path, kind: &str) -> Vec<PathBuf> {
    let prefix = format!("evidence-{kind}-");
    let Ok(dir) = std::fs::read_dir(state) else {
        return Vec::new();
    };
    dir.flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect()
}

/// Waits (bounded) for an evidence file of `kind` in `state`, and checks
/// it offline with `onions-hs evidence`.
fn wait_evidence(state: &Path, kind: &str, what: &str) {
    let deadline = Instant::now() + LIMIT;
    let file = loop {
        if let Some(file) = evidence_files(state, kind).into_iter().next() {
            break file;
        }
        assert!(Instant::now() < deadline, "no {kind} evidence at {what}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (status, out, err) = run_hs([std::ffi::OsStr::new("evidence"), file.as_os_str()]);
    assert!(status.success(), "{what}: {}: {out}{err}", file.display());
}

#[test]
fn an_equivocating_quorum_never_gets_its_minority_head_believed() {
    let tmp = TempDir::new("witnesses-split");
    let states: Vec<PathBuf> = (0..3).map(|i| tmp.join(format!("witness{i}"))).collect();
    let keys: Vec<String> = states
        .iter()
        .map(|s| witness_key(&witness_key_file(s), s))
        .collect();
    let trust = trust_flags(&keys);
    let mut quorum_flags = vec!["--head-interval", "1"];
    quorum_flags.extend(trust.iter().map(String::as_str));
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &quorum_flags);
    let quorum_key = print_key(&quorum.state);
    let liar = Liar::upstream(
        "127.0.0.4",
        &tmp.join("liar.log"),
        quorum.addr,
        &quorum.state.join(onions::server::QUORUM_KEY_FILE),
        Plan::Split("hidden.tor".into()),
    );
    let witnesses: Vec<Server> = (0..3)
        .map(|i| {
            let mut flags: Vec<String> = vec![
                "--witness-key".into(),
                witness_key_file(&states[i]).display().to_string(),
                "--cosign-to".into(),
                quorum.addr.to_string(),
            ];
            flags.extend(trust.iter().cloned());
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let upstream = if i == 2 { liar.addr } else { quorum.addr };
            Server::mirror(
                &format!("127.0.0.{}", 11 + i),
                &states[i],
                upstream,
                &quorum_key,
                &flags,
            )
        })
        .collect();
    let mut mirror_flags: Vec<&str> = trust.iter().map(String::as_str).collect();
    mirror_flags.extend(["--witnesses", "2"]);
    let honest = Server::mirror(
        "127.0.0.21",
        &tmp.join("honest"),
        witnesses[0].addr,
        &quorum_key,
        &mirror_flags,
    );
    let misled = Server::mirror(
        "127.0.0.22",
        &tmp.join("misled"),
        witnesses[2].addr,
        &quorum_key,
        &mirror_flags,
    );
    let mut client = quorum.client();
    for (seed, name) in [(1, "example.tor"), (2, "hidden.tor")] {
        let reply = client.put(&record(&owner(seed), name, 1, 0, &[]));
        assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    }
    let net = Network {
        quorum,
        witnesses,
        mirror: honest,
        quorum_key,
        witness_keys: keys,
    };
    let policy = net.policy(2, 600);
    let found = wait_lookup(
        net.mirror.addr,
        "hidden.tor",
        &policy,
        "the honest view",
        |r| matches!(r, Ok(Resolution::Found(_))),
    );
    let real = found.unwrap().head().clone();

    for (state, what) in [
        (&states[2], "the witness shown the split view"),
        (&states[0], "an honest witness"),
        (&tmp.join("misled"), "the mirror under the misled witness"),
    ] {
        wait_evidence(state, "equivocation", what);
    }
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        for server in [net.mirror.addr, misled.addr] {
            let result = lookup(server, "hidden.tor", &policy);
            if let Ok(resolution) = &result {
                let head = resolution.head();
                assert!(
                    !head.conflicts(&real) || head == &real,
                    "an answer under the minority head was accepted: {result:?}"
                );
                assert!(
                    !matches!(resolution, Resolution::Absent(h) if h.seq >= real.seq),
                    "the hidden name was denied under a head covering it: {result:?}"
                );
            }
        }
        let current = misled.current_head();
        assert!(
            current.as_ref().is_none_or(|h| !h.conflicts(&real)),
            "the misled mirror answers with the minority head: {current:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for server in [&net.witnesses[2], &net.witnesses[0]] {
        let audit = server.status().audit.unwrap();
        assert_eq!(audit.state, onions::wire::AuditState::Alarm, "{audit:?}");
        let evidence = audit.evidence.expect("status shows the evidence");
        assert!(evidence.heads.contains(&real), "{evidence:?}");
    }
}

#[test]
fn a_quorum_that_hands_a_live_name_to_another_key_gets_no_cosignature() {
    let tmp = TempDir::new("witnesses-handover");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--head-interval", "1"]);
    let quorum_key = print_key(&quorum.state);
    let liar = Liar::upstream(
        "127.0.0.4",
        &tmp.join("liar.log"),
        quorum.addr,
        &quorum.state.join(onions::server::QUORUM_KEY_FILE),
        Plan::HandOver("example.tor".into()),
    );
    let recorder = Recorder::start();
    let witnesses: Vec<(Server, String)> = (0..3)
        .map(|i| {
            let state = tmp.join(format!("witness{i}"));
            let key_file = witness_key_file(&state);
            let key = witness_key(&key_file, &state);
            let server = Server::mirror(
                &format!("127.0.0.{}", 11 + i),
                &state,
                liar.addr,
                &quorum_key,
                &[
                    "--witness-key",
                    &key_file.display().to_string(),
                    "--cosign-to",
                    &recorder.addr.to_string(),
                ],
            );
            (server, key)
        })
        .collect();
    let reply = quorum
        .client()
        .put(&record(&owner(1), "example.tor", 1, 0, &[]));
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    let handed = quorum.wait_head(1, LIMIT).seq + 1;
    for (witness, key) in &witnesses {
        wait_evidence(&witness.state, "ownership", "a witness");
        let status = witness.status().cosignatures.unwrap().witness.unwrap();
        assert!(
            status
                .alarm
                .as_deref()
                .is_some_and(|a| a.contains("name_taken")),
            "{status:?}"
        );
        let seen = recorder.seen.lock().unwrap().clone();
        assert!(
            seen.iter()
                .all(|(h, c)| c.witness.to_base64() != *key || h.seq < handed),
            "a witness cosigned a head covering the handed-over name"
        );
    }
}

/// A mirror under a witness while heads come faster than it takes them,
/// its book holding only the newest 4 heads' cosignatures: the heads it
/// waits for lose their cosignatures from its book, so it must not wait
/// for them once a newer head has its own, and it reaches the newest
/// cosigned head.
#[test]
fn a_mirror_does_not_wait_for_a_head_whose_cosignatures_are_gone() {
    let tmp = TempDir::new("witnesses-busy");
    let net = Network::start(&tmp, &["--cosigned-heads", "4"], false);
    let mut flags: Vec<String> = trust_flags(&net.witness_keys);
    flags.extend(
        [
            "--witnesses",
            "2",
            "--cosigned-heads",
            "4",
            "--cosign-wait",
            "600",
        ]
        .map(String::from),
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let busy = Server::mirror(
        "127.0.0.23",
        &tmp.join("busy"),
        net.witnesses[0].addr,
        &net.quorum_key,
        &flags,
    );
    let mut clients: Vec<Client> = (0..4).map(|_| net.quorum.client()).collect();
    let mut n = 0u16;
    for round in 0..100 {
        for client in clients.iter_mut() {
            n += 1;
            let rec = record(
                &owner((n % 250) as u8),
                &format!("busy{round}x{n}.tor"),
                1,
                0,
                &[],
            );
            client.send_raw(&testkit::servers::put_request(&rec).to_line());
        }
        for client in clients.iter_mut() {
            let reply = client.read().expect("a reply");
            assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
        }
    }
    let newest = net.quorum.wait_head(u64::from(n), LIMIT);
    let policy = net.policy(2, 600);
    let last = format!("busy99x{n}.tor");
    let found = wait_lookup(
        busy.addr,
        &last,
        &policy,
        "the busy mirror's newest answer",
        |r| matches!(r, Ok(Resolution::Found(_))),
    );
    assert!(found.unwrap().head().seq >= newest.seq);
}
