//! Answers under witnesses: heads with two trusted cosignatures that
//! clients accept, stale with one witness left; lookups that keep working
//! on fresh cosignatures while the Quorum is away; forged and untrusted
//! cosignatures refused; a busy mirror that reaches the newest cosigned
//! head.

use crate::network::{
    lookup, put_accepted, reply_cosignatures, trust_flags, wait_found, wait_lookup, Network,
};
use crate::LIMIT;
use onions::cosign::Cosignature;
use onions::lookup::{Policy, Resolution};
use onions::wire::{Code, Reply, Request};
use std::time::{Duration, Instant};
use testkit::servers::{owner, record, Client, Server};
use testkit::TempDir;

/// Starts a network whose witnesses cosign every second (straight to the
/// mirror too with `cosign_to_mirror`), puts example.tor, and waits until
/// the mirror answers it as a client requiring two witnesses and heads at
/// most `max_head_age` s old accepts; returns the network and that policy.
fn cosigned_example(tmp: &TempDir, cosign_to_mirror: bool, max_head_age: u64) -> (Network, Policy) {
    let net = Network::start(tmp, &["--cosign-interval", "1"], cosign_to_mirror);
    put_accepted(&mut net.quorum.client(), 1, "example.tor");
    let policy = net.policy(2, max_head_age);
    wait_found(net.mirror.addr, "example.tor", &policy, "a cosigned answer");
    (net, policy)
}

#[test]
fn answers_carry_two_cosignatures_and_go_stale_with_one_witness_left() {
    let tmp = TempDir::new("witnesses");
    let (mut net, policy) = cosigned_example(&tmp, false, 600);
    let reply = Client::connect(net.mirror.addr).lookup("example.tor");
    let (head, cosigs) = reply_cosignatures(&reply);
    assert!(head.seq >= 1);
    assert!(cosigs.len() >= 2, "{reply}");
    let absent = lookup(net.mirror.addr, "nobody.tor", &policy);
    assert!(matches!(absent, Ok(Resolution::Absent(_))), "{absent:?}");

    let strict = net.policy(3, 600);
    wait_found(
        net.mirror.addr,
        "example.tor",
        &strict,
        "three cosignatures",
    );
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

    put_accepted(&mut net.quorum.client(), 2, "other.tor");
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
    let (mut net, policy) = cosigned_example(&tmp, true, 4);

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
    put_accepted(&mut net.quorum.client(), 2, "other.tor");
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
    let found = wait_found(busy.addr, &last, &policy, "the busy mirror's newest answer");
    assert!(found.head().seq >= newest.seq);
}
