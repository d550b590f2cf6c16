//! Logging for the long-running programs: flexi_logger to stderr (which
//! systemd's journal collects), one line per event, UTC timestamps.
//!
//! The level comes from a flag, else `RUST_LOG`, else `info`.

use flexi_logger::{DeferredNow, FlexiLoggerError, Logger, LoggerHandle};
use std::fmt;

/// Why logging cannot start.
#[derive(Debug)]
pub enum LoggingError {
    /// The level (flag or `RUST_LOG`) does not parse.
    Level(FlexiLoggerError),
    /// The logger cannot start.
    Start(FlexiLoggerError),
}

impl fmt::Display for LoggingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoggingError::Level(e) => write!(f, "bad log level: {e}"),
            LoggingError::Start(e) => write!(f, "cannot start logging: {e}"),
        }
    }
}

impl std::error::Error for LoggingError {}

/// Starts the logger; keep the handle alive for the program's life.
pub fn start(level: Option<&str>) -> Result<LoggerHandle, LoggingError> {
    let logger = match level {
        Some(level) => Logger::try_with_str(level),
        None => Logger::try_with_env_or_str("info"),
    }
    .map_err(LoggingError::Level)?;
    logger
        .log_to_stderr()
        .format(line_format)
        .start()
        .map_err(LoggingError::Start)
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
