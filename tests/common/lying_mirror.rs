//! A mirror that lies: it answers every lookup with a forged answer, so
//! tests can show a client never follows one. It speaks the real protocol
//! over a real socket; only its answers are false.
//!
//! Forgeries, in turn: a record for the name asked, pointing to the
//! attacker's service, signed by the attacker and attested by the
//! attacker's own "Quorum" key; a genuine record (copied from an honest
//! server) with its address swapped; and a genuine, correctly attested
//! record of another name.

use onions::attest::Attestation;
use onions::keys::SigningKey;
use onions::name::LookupName;
use onions::record::{Claim, Record};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A running lying mirror; stops when dropped.
pub struct LyingMirror {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Lookups it has answered.
    pub lies: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LyingMirror {
    /// Starts one on `ip`; `genuine` is a real found reply (record and
    /// attestation) of some other name, to replay.
    pub fn start(ip: &str, port: u16, genuine: Value) -> LyingMirror {
        onions::keys::init().expect("libsodium starts");
        let listener = TcpListener::bind((ip, port)).expect("bind the lying mirror");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let lies = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (lies.clone(), stop.clone());
        let thread = std::thread::spawn(move || serve(&listener, &genuine, &l, &s));
        LyingMirror {
            addr,
            lies,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for LyingMirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: &TcpListener, genuine: &Value, lies: &AtomicUsize, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => answer(stream, genuine, lies),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn answer(stream: TcpStream, genuine: &Value, lies: &AtomicUsize) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
        let request: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        line.clear();
        let Some(name) = request["name"]
            .as_str()
            .and_then(|n| LookupName::from_user(n).ok())
        else {
            continue;
        };
        let n = lies.fetch_add(1, Ordering::SeqCst);
        let reply = forge(n % 3, &name, &request["id"], genuine);
        let mut bytes = serde_json::to_vec(&reply).unwrap();
        bytes.push(b'\n');
        if reader.get_mut().write_all(&bytes).is_err() {
            return;
        }
    }
}

/// One of the three forgeries.
fn forge(kind: usize, name: &LookupName, id: &Value, genuine: &Value) -> Value {
    match kind {
        0 => {
            let attacker = SigningKey::from_seed(&[0xa7; 32]);
            let fake_quorum = SigningKey::from_seed(&[0xa8; 32]);
            let issued = onions::clock::now();
            let claim = Claim {
                name: name.registered(),
                subdomains: Default::default(),
                contact: "attacker".into(),
                serial: 9,
                issued,
                expires: issued + 86_400,
                work: 0,
            };
            let mut record = Record::from_claim(claim, &attacker);
            record.sign_with(&attacker);
            let attestation = Attestation::sign(record.id(), 1, issued, &fake_quorum);
            json!({"type": "found", "id": id, "record": record.to_value(), "attestation": attestation.to_value()})
        }
        1 => {
            let mut record = genuine["record"].clone();
            record["onion"] = json!(onions::onion::OnionAddress::from_key(
                SigningKey::from_seed(&[0xa7; 32]).public()
            )
            .to_string());
            json!({"type": "found", "id": id, "record": record, "attestation": genuine["attestation"]})
        }
        _ => {
            json!({"type": "found", "id": id, "record": genuine["record"], "attestation": genuine["attestation"]})
        }
    }
}
