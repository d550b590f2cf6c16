//! The network the tests here start (a Quorum, three witnesses and a
//! mirror collecting two cosignatures), the policy of a client requiring k
//! of the witnesses, and lookups checked with it.

use crate::LIMIT;
use onions::cosign::{Cosignature, Quorate};
use onions::head::SignedHead;
use onions::lookup::{check_reply, LookupError, Policy, Resolution};
use onions::name::LookupName;
use onions::verify::Verifier;
use onions::wire::Reply;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testkit::servers::{print_key, witness_key, Client, Server};
use testkit::TempDir;

/// The witness key file of the witness whose state is `state`.
pub(crate) fn witness_key_file(state: &Path) -> PathBuf {
    state.with_extension("witness_key")
}

/// A Quorum, three witnesses under it, and a mirror under the first
/// witness collecting two cosignatures.
pub(crate) struct Network {
    pub(crate) quorum: Server,
    pub(crate) witnesses: Vec<Server>,
    pub(crate) mirror: Server,
    pub(crate) quorum_key: String,
    pub(crate) witness_keys: Vec<String>,
}

/// `--trust-witness` for every key.
pub(crate) fn trust_flags(keys: &[String]) -> Vec<String> {
    keys.iter()
        .flat_map(|k| ["--trust-witness".to_owned(), k.clone()])
        .collect()
}

impl Network {
    /// Starts it; `extra_witness` flags go to every witness (after the
    /// shared ones), `cosign_to_mirror` also sends cosignatures straight
    /// to the mirror.
    pub(crate) fn start(tmp: &TempDir, extra_witness: &[&str], cosign_to_mirror: bool) -> Network {
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
    pub(crate) fn logs(&self) -> String {
        let mut all = format!("--- quorum\n{}", self.quorum.log());
        for (i, w) in self.witnesses.iter().enumerate() {
            all.push_str(&format!("--- witness {i}\n{}", w.log()));
        }
        all.push_str(&format!("--- mirror\n{}", self.mirror.log()));
        all
    }

    /// What a client requiring `needed` of the three witnesses checks.
    pub(crate) fn policy(&self, needed: usize, max_head_age: u64) -> Policy {
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
pub(crate) fn lookup(
    server: SocketAddr,
    name: &str,
    policy: &Policy,
) -> Result<Resolution, LookupError> {
    let reply = Client::connect(server).lookup(name);
    let name = LookupName::from_user(name).unwrap();
    check_reply(reply, &name, policy, onions::clock::now())
}

/// Waits (bounded) until `check` holds for a lookup of `name` at `server`.
pub(crate) fn wait_lookup(
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
pub(crate) fn reply_cosignatures(reply: &Reply) -> (SignedHead, Vec<Cosignature>) {
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
