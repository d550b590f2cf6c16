//! Talking to a local `tor`: its SOCKS port today, its control port with
//! the client daemon.

pub mod control;
pub mod socks;
