//! Logging for the long-running programs: flexi_logger to stderr (which
//! systemd's journal collects), one line per event, UTC timestamps.
//!
//! The level comes from a flag, else `RUST_LOG`, else `info`.

use flexi_logger::{DeferredNow, Logger, LoggerHandle};

/// Starts the logger; keep the handle alive for the program's life.
pub fn start(level: Option<&str>) -> Result<LoggerHandle, String> {
    let logger = match level {
        Some(level) => Logger::try_with_str(level),
        None => Logger::try_with_env_or_str("info"),
    }
    .map_err(|e| format!("bad log level: {e}"))?;
    logger
        .log_to_stderr()
        .format(line_format)
        .start()
        .map_err(|e| format!("cannot start logging: {e}"))
}

fn line_format(
    w: &mut dyn std::io::Write,
    now: &mut DeferredNow,
    record: &log::Record,
) -> std::io::Result<()> {
    write!(
        w,
        "{} {:<5} {}",
        now.now_utc_owned().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        record.level(),
        record.args()
    )
}
