//! SIGTERM and SIGINT: a flag the long-running programs poll, so that a
//! stop request lets in-flight work finish (and the client hand streams
//! back to Tor) instead of killing the process mid-write, and a sleep
//! that such a request cuts short.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the handler for SIGTERM and SIGINT.
pub fn install() -> std::io::Result<()> {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; sigaction is given a zeroed, valid struct.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// True once a stop was requested.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Requests a stop from inside the program (a fatal error elsewhere).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// How often a sleep checks for a stop request.
const SLEEP_SLICE: Duration = Duration::from_millis(50);

/// Sleeps for `total`, or until a stop is requested, whichever comes
/// first (checked every 50 ms).
pub fn sleep_unless_stopped(total: Duration) {
    let until = Instant::now() + total;
    while !stop_requested() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(SLEEP_SLICE.min(left));
    }
}
