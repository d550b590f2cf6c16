//! What is wrong with `--config` or with the file it names, as values a
//! caller can tell apart; their text names the file and line, as the
//! programs print it.

use std::fmt;
use std::io;

/// Why a config file was not folded into a command line.
#[derive(Debug)]
pub enum ConfigError {
    /// `--config` ends the command line without a file.
    MissingFile,
    /// `--config` is given twice.
    GivenTwice,
    /// The file cannot be read.
    Unreadable {
        /// The file as given.
        file: String,
        /// Why reading it failed.
        error: io::Error,
    },
    /// A line of the file is wrong.
    Line {
        /// The file as given.
        file: String,
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
}

/// What is wrong with one line of a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineProblem {
    /// The line is not UTF-8.
    NotUtf8,
    /// The line has no `=`.
    NoEquals(String),
    /// The line sets `config`, which only the command line may.
    ConfigInFile,
    /// The flag is written with its `--`.
    Dashed {
        /// The flag's name without `--`.
        name: String,
        /// The value given.
        value: String,
    },
    /// Nothing stands before `=`.
    NoName(String),
    /// No flag has this name.
    UnknownKey(String),
    /// The flag may only be given on the command line.
    CommandLineOnly(String),
    /// A switch set to something other than `true` or `false`.
    NotASwitchValue {
        /// The switch.
        name: String,
        /// The value given.
        value: String,
    },
    /// A flag that takes a value has none.
    NoValue(String),
    /// A positional value starts with `-`, which would read as a flag.
    LeadingDash {
        /// The positional argument's name.
        name: String,
        /// The value given.
        value: String,
    },
    /// A flag that may not repeat is set again.
    SetTwice {
        /// The flag.
        name: String,
        /// The line that set it first.
        first: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MissingFile => {
                write!(f, "--config needs a FILE (flag-name = value lines)")
            }
            ConfigError::GivenTwice => write!(f, "--config is given twice; give one file"),
            ConfigError::Unreadable { file, error } => write!(f, "{file}: cannot read: {error}"),
            ConfigError::Line {
                file,
                line,
                problem,
            } => write!(f, "{file}:{line}: {problem}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineProblem::NotUtf8 => write!(f, "not UTF-8 text"),
            LineProblem::NoEquals(text) => write!(
                f,
                "expected \"flag-name = value\", got {text:?} (comments start with #)"
            ),
            LineProblem::ConfigInFile => write!(f, "config cannot be set in a config file"),
            LineProblem::Dashed { name, value } => {
                write!(f, "write the flag name without --: {name} = {value}")
            }
            LineProblem::NoName(text) => write!(f, "no flag name before = in {text:?}"),
            LineProblem::UnknownKey(name) => write!(
                f,
                "unknown key {name:?}; keys are the long flags (without --) that --help lists"
            ),
            LineProblem::CommandLineOnly(name) => {
                write!(
                    f,
                    "{name} is for the command line only, not for config files"
                )
            }
            LineProblem::NotASwitchValue { name, value } => {
                write!(f, "{name} = {value:?}: a switch takes true or false")
            }
            LineProblem::NoValue(name) => write!(f, "{name} has no value"),
            LineProblem::LeadingDash { name, value } => {
                write!(f, "{name} = {value:?}: cannot start with -")
            }
            LineProblem::SetTwice { name, first } => write!(
                f,
                "{name} is set twice (first on line {first}); only repeatable flags may repeat"
            ),
        }
    }
}
