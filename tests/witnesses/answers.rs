//! Answers under witnesses: heads with two trusted cosignatures that
//! clients accept, stale with one witness left; lookups that keep working
//! on fresh cosignatures while the Quorum is away; forged and untrusted
//! cosignatures refused; a busy mirror that reaches the newest cosigned
//! head.

use crate::network::{lookup, reply_cosignatures, trust_flags, wait_lookup, Network};
use crate::LIMIT;
use onions::cosign::Cosignature;
use onions::lookup::Resolution;
use onions::wire::{Code, Reply, Request};
use std::time::{Duration, Instant};
use testkit::servers::{owner, record, Client, Server};
use testkit::TempDir;

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
