//! [`ControlConnection`]: the socket's write side, the reader thread's
//! channels, and sending one command at a time and waiting for its reply.
//! The authentication exchange (`handshake`) and the configuration and
//! stream commands (`commands`) are further `impl` blocks of the same type,
//! each in its own file; this one holds the state, opening and closing, and
//! PROTOCOLINFO, whose answer it keeps: Tor answers it only once before
//! authentication.

use super::auth::ProtocolInfo;
use super::error::ControlError;
use super::event::Event;
use super::reply::Reply;
use super::socket::{read_loop, Socket};
use super::{Auth, ControlAddr, DEFAULT_REPLY_TIMEOUT};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::Mutex;
use std::io::{self, Write};
use std::thread::JoinHandle;
use std::time::Duration;

/// A control connection: commands from any thread, one at a time; events on
/// a channel (see [`ControlConnection::events`]).
#[derive(Debug)]
pub struct ControlConnection {
    socket: Socket,
    writer: Mutex<Socket>,
    replies: Receiver<Reply>,
    events: Receiver<Event>,
    reader: Option<JoinHandle<()>>,
    reply_timeout: Duration,
    protocol_info: Mutex<Option<ProtocolInfo>>,
}

impl ControlConnection {
    /// Connects to `addr` without authenticating.
    pub fn connect(
        addr: &ControlAddr,
        timeout: Duration,
    ) -> Result<ControlConnection, ControlError> {
        let socket =
            Socket::connect(addr, timeout).map_err(|source| ControlError::NotListening {
                addr: addr.to_string(),
                source,
            })?;
        socket.set_write_timeout(timeout)?;
        let (reply_tx, replies) = crossbeam_channel::unbounded();
        let (event_tx, events) = crossbeam_channel::unbounded();
        let read_half = socket.try_clone()?;
        let reader = std::thread::Builder::new()
            .name("tor-control".to_owned())
            .spawn(move || read_loop(read_half, reply_tx, event_tx))?;
        Ok(ControlConnection {
            writer: Mutex::new(socket.try_clone()?),
            socket,
            replies,
            events,
            reader: Some(reader),
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
            protocol_info: Mutex::new(None),
        })
    }

    /// Connects to `addr` and authenticates with `auth`.
    pub fn open(
        addr: &ControlAddr,
        auth: &Auth,
        timeout: Duration,
    ) -> Result<ControlConnection, ControlError> {
        let connection = ControlConnection::connect(addr, timeout)?;
        connection.authenticate(auth)?;
        Ok(connection)
    }

    /// The event channel. Events queue without bound until read; the channel
    /// disconnects when the connection ends.
    pub fn events(&self) -> Receiver<Event> {
        self.events.clone()
    }

    /// Sends one command line (no CRLF) and returns Tor's reply, whatever
    /// its status. A timeout shuts the connection down, since a late reply
    /// would be taken for the next command's.
    pub fn command(&self, line: &str) -> Result<Reply, ControlError> {
        if line.contains(['\r', '\n']) {
            return Err(ControlError::BadArgument(
                "a command is one line".to_owned(),
            ));
        }
        let verb = line.split(' ').next().unwrap_or("").to_owned();
        let mut writer = self.writer.lock();
        // A reply left over from an earlier, abandoned command is stale.
        while self.replies.try_recv().is_ok() {}
        if let Err(e) = writer.write_all(format!("{line}\r\n").as_bytes()) {
            return Err(closed_or(e));
        }
        match self.replies.recv_timeout(self.reply_timeout) {
            Ok(reply) => Ok(reply),
            Err(RecvTimeoutError::Timeout) => {
                self.socket.shutdown();
                Err(ControlError::Timeout { command: verb })
            }
            Err(RecvTimeoutError::Disconnected) => Err(ControlError::Closed),
        }
    }

    /// Sends a command and fails unless Tor answers 2xx.
    pub(super) fn checked(&self, line: &str) -> Result<Reply, ControlError> {
        let reply = self.command(line)?;
        if reply.is_ok() {
            return Ok(reply);
        }
        Err(ControlError::Rejected {
            command: line.split(' ').next().unwrap_or("").to_owned(),
            code: reply.code(),
            message: reply.message().to_owned(),
        })
    }

    /// `PROTOCOLINFO 1`. Tor answers it only once before authentication,
    /// so the answer is kept and returned again on later calls.
    pub fn protocol_info(&self) -> Result<ProtocolInfo, ControlError> {
        let mut cached = self.protocol_info.lock();
        if let Some(info) = cached.as_ref() {
            return Ok(info.clone());
        }
        let reply = self.checked("PROTOCOLINFO 1")?;
        let info = ProtocolInfo::from_reply(&reply)?;
        *cached = Some(info.clone());
        Ok(info)
    }
}

impl Drop for ControlConnection {
    fn drop(&mut self) {
        self.socket.shutdown();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A write error after Tor hung up is [`ControlError::Closed`].
fn closed_or(e: io::Error) -> ControlError {
    match e.kind() {
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => ControlError::Closed,
        _ => ControlError::Io(e),
    }
}
