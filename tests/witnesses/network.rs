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
use testkit::liar::{Liar, Plan};
use testkit::servers::{owner, print_key, record, witness_key, Client, Server};
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

/// The state directories of three witnesses under `tmp` and their keys,
/// made before any server starts, and a Quorum (a head every second)
/// trusting those keys: how every network with witnesses here begins.
pub(crate) fn witnessed_quorum(tmp: &TempDir) -> (Vec<PathBuf>, Vec<String>, Server) {
    let states: Vec<PathBuf> = (0..3).map(|i| tmp.join(format!("witness{i}"))).collect();
    let keys: Vec<String> = states
        .iter()
        .map(|s| witness_key(&witness_key_file(s), s))
        .collect();
    let trust = trust_flags(&keys);
    let mut quorum_flags = vec!["--head-interval", "1"];
    quorum_flags.extend(trust.iter().map(String::as_str));
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &quorum_flags);
    (states, keys, quorum)
}

/// Starts witness `i` (on 127.0.0.1{1+i}) with its state in `state`, a
/// mirror of `upstream` trusting `quorum_key`, given its witness key and
/// then `flags`.
pub(crate) fn start_witness(
    i: usize,
    state: &Path,
    upstream: SocketAddr,
    quorum_key: &str,
    flags: &[String],
) -> Server {
    let key_file = witness_key_file(state).display().to_string();
    let mut all = vec!["--witness-key", key_file.as_str()];
    all.extend(flags.iter().map(String::as_str));
    let ip = format!("127.0.0.{}", 11 + i);
    Server::mirror(&ip, state, upstream, quorum_key, &all)
}

/// The flags of a mirror that trusts the witnesses of `trust` (as
/// [`trust_flags`] makes them) and collects two of their cosignatures.
pub(crate) fn collecting_flags(trust: &[String]) -> Vec<&str> {
    let mut flags: Vec<&str> = trust.iter().map(String::as_str).collect();
    flags.extend(["--witnesses", "2"]);
    flags
}

/// A lying upstream on 127.0.0.4 holding the key of `quorum` and relaying
/// it, lying as `plan` says: the Quorum gone bad that witnesses must catch.
pub(crate) fn liar_under(tmp: &TempDir, quorum: &Server, plan: Plan) -> Liar {
    let key_file = quorum.state.join(onions::server::QUORUM_KEY_FILE);
    Liar::upstream(
        "127.0.0.4",
        &tmp.join("liar.log"),
        quorum.addr,
        &key_file,
        plan,
    )
}

/// Puts the first record of `name`, by the key of `seed`, on `client` and
/// checks that it is accepted.
pub(crate) fn put_accepted(client: &mut Client, seed: u8, name: &str) {
    let reply = client.put(&record(&owner(seed), name, 1, 0, &[]));
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
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
        let (states, witness_keys, quorum) = witnessed_quorum(tmp);
        let trust = trust_flags(&witness_keys);
        let quorum_key = print_key(&quorum.state);
        let mirror_port = testkit::free_port_on("127.0.0.20");
        let mirror_addr = format!("127.0.0.20:{mirror_port}");
        let witnesses: Vec<Server> = states
            .iter()
            .enumerate()
            .map(|(i, state)| {
                let mut flags = trust.clone();
                flags.extend(["--witnesses".into(), "2".into()]);
                if cosign_to_mirror {
                    flags.extend(["--cosign-to".into(), quorum.addr.to_string()]);
                    flags.extend(["--cosign-to".into(), mirror_addr.clone()]);
                }
                flags.extend(extra_witness.iter().map(|s| s.to_string()));
                start_witness(i, state, quorum.addr, &quorum_key, &flags)
            })
            .collect();
        let mirror = Server::mirror_at(
            mirror_addr.parse().unwrap(),
            &tmp.join("mirror"),
            witnesses[0].addr,
            &quorum_key,
            &collecting_flags(&trust),
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

/// Waits (bounded) until a lookup of `name` at `server`, checked with
/// `policy`, is a live answer, and returns it.
pub(crate) fn wait_found(
    server: SocketAddr,
    name: &str,
    policy: &Policy,
    what: &str,
) -> Resolution {
    wait_lookup(server, name, policy, what, |r| {
        matches!(r, Ok(Resolution::Found(_)))
    })
    .expect("a live answer")
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
