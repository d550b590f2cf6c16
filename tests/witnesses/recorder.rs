//! A recorder of cosignatures: what a witness sent, kept outside the
//! witness.

use onions::cosign::Cosignature;
use onions::head::SignedHead;
use onions::wire::{Reply, Request};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

/// Records every `cosign` request it gets and answers `cosigned`: what a
/// witness sent, kept outside the witness.
pub(crate) struct Recorder {
    pub(crate) addr: SocketAddr,
    pub(crate) seen: Arc<Mutex<Vec<(SignedHead, Cosignature)>>>,
}

impl Recorder {
    pub(crate) fn start() -> Recorder {
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
