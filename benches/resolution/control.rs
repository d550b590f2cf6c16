//! The benchmark's own control connection to the client tor, with which
//! it turns `__LeaveStreamsUnattached` off for the fetches Tor attaches
//! itself (as with no daemon).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

/// The benchmark's own control connection to the client tor (cookie
/// authentication), to turn `__LeaveStreamsUnattached` off and on around
/// a fetch.
pub struct Control {
    reader: Mutex<BufReader<TcpStream>>,
}

impl Control {
    /// Connects to tor's control port `addr` and authenticates with the
    /// cookie file `cookie`.
    pub fn open(addr: &str, cookie: &str) -> Control {
        let addr: SocketAddr = addr
            .parse()
            .unwrap_or_else(|e| panic!("TORNET_CONTROL={addr:?}: {e}"));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("tor's control port {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set a read timeout");
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        let control = Control {
            reader: Mutex::new(BufReader::new(stream)),
        };
        let bytes = std::fs::read(cookie).unwrap_or_else(|e| panic!("{cookie}: {e}"));
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        control.command(&format!("AUTHENTICATE {hex}"));
        control
    }

    /// Sends `line`; panics unless Tor answers `250 OK`.
    fn command(&self, line: &str) {
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("tor control: {e}"));
        let mut reply = String::new();
        (&mut *reader)
            .take(4096)
            .read_line(&mut reply)
            .unwrap_or_else(|e| panic!("tor control: no reply to {line:?}: {e}"));
        let verb = line.split(' ').next().unwrap_or(line);
        assert!(
            reply.starts_with("250 OK"),
            "tor control: {verb} answered {reply:?}"
        );
    }

    /// Sets `__LeaveStreamsUnattached` to `on`.
    pub fn leave_streams_unattached(&self, on: bool) {
        self.command(&format!(
            "SETCONF __LeaveStreamsUnattached={}",
            if on { 1 } else { 0 }
        ));
    }
}
