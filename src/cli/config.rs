//! Config files (`--config FILE`): finding `--config` on a command line
//! the way argh will read it, parsing the file's `flag-name = value` lines
//! against a program's [`Flag`] table, folding them in front of the
//! command line so that an explicit flag wins, and remembering each value's
//! `FILE:LINE` so that an error about it names the line; then argh's
//! parsing, with a usage error on one line ([`USAGE_EXIT`]). The format is
//! described in the module documentation of `cli`.

use super::config_error::{ConfigError, LineProblem};
use super::flags::{Flag, FlagKind, CONFIG_FLAG};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

/// Where `--config` is accepted: on the program itself or after one
/// subcommand, and the flags a file may set there.
#[derive(Clone, Copy, Debug)]
pub struct ConfigScope {
    /// The subcommand (`claim`), or `None` for the program's own flags.
    pub subcommand: Option<&'static str>,
    /// Every flag accepted there, except `--config` itself.
    pub flags: &'static [Flag],
}

/// Where a value taken from a config file came from, so that an error
/// about it can name the file and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The flag's name without `--`.
    pub name: String,
    /// Positional arguments are named without `--` in errors.
    pub positional: bool,
    /// The value as written in the file (after unquoting).
    pub value: String,
    /// `FILE:LINE`.
    pub at: String,
}

/// The command line after a config file was folded into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expanded {
    /// The arguments to hand to argh.
    pub args: Vec<String>,
    /// Where each argument taken from the file came from.
    pub origins: Vec<Origin>,
}

/// One `name = value` line of a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The flag it sets.
    pub flag: Flag,
    /// Its value, unquoted.
    pub value: String,
    /// Its line number, from 1.
    pub line: usize,
}

/// Exit status of a usage error: a bad flag or a bad config file.
pub const USAGE_EXIT: i32 = 2;

static ORIGINS: OnceLock<Vec<Origin>> = OnceLock::new();

/// Parses the command line like `argh::from_env`, with a usage error on
/// one line as every other error is, but first folds in the file named by
/// `--config` when the command line is in one of `scopes`. A bad or
/// unreadable file ends the program with `PROGRAM: FILE:LINE: what is
/// wrong` and exit status [`USAGE_EXIT`].
pub fn parse_args_with_config<T: argh::TopLevelCommand>(
    program: &str,
    scopes: &[ConfigScope],
) -> T {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match expand_config(&args, scopes, |path| std::fs::read(path)) {
        Ok(expanded) => {
            let _ = ORIGINS.set(expanded.origins);
            parse_or_exit(program, &expanded.args)
        }
        Err(e) => {
            eprintln!("{program}: {e}");
            std::process::exit(USAGE_EXIT);
        }
    }
}

/// Parses `args` like `argh::from_env`, but reports a usage error on one
/// line, as every other error is.
fn parse_or_exit<T: argh::TopLevelCommand>(program: &str, args: &[String]) -> T {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match T::from_args(&[program], &args) {
        Ok(parsed) => parsed,
        Err(exit) if exit.status.is_ok() => {
            println!("{}", exit.output);
            std::process::exit(0);
        }
        Err(exit) => {
            let reason: Vec<&str> = exit
                .output
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect();
            eprintln!("{program}: {}", with_origin(&reason.join("; ")));
            std::process::exit(USAGE_EXIT);
        }
    }
}

/// Folds the config file named on the command line `args` (if any) into
/// it, for the first of `scopes` that the command line is in. `read` reads
/// a file (`std::fs::read` outside tests). Without `--config`, or with
/// `--help`, the arguments come back unchanged.
pub fn expand_config(
    args: &[String],
    scopes: &[ConfigScope],
    read: impl FnOnce(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Expanded, ConfigError> {
    let unchanged = || Expanded {
        args: args.to_vec(),
        origins: Vec::new(),
    };
    let Some((skip, flags)) = scopes.iter().find_map(|scope| match scope.subcommand {
        None => Some((0, scope.flags)),
        Some(sub) if args.first().map(String::as_str) == Some(sub) => Some((1, scope.flags)),
        Some(_) => None,
    }) else {
        return Ok(unchanged());
    };
    let (head, rest) = args.split_at(skip);
    let given = scan(rest, flags)?;
    let Some(file) = given.config.filter(|_| !given.help) else {
        return Ok(unchanged());
    };
    let bytes = read(Path::new(&file)).map_err(|error| ConfigError::Unreadable {
        file: file.clone(),
        error,
    })?;
    let entries = parse_config(&file, &bytes, flags)?;
    let mut expanded = Expanded {
        args: head.to_vec(),
        origins: Vec::new(),
    };
    let mut positionals = Vec::new();
    for entry in entries {
        let name = entry.flag.name;
        let at = format!("{file}:{}", entry.line);
        let tokens = match entry.flag.kind {
            FlagKind::Positional if given.positional => continue,
            _ if given.flags.contains(name) => continue,
            FlagKind::Switch if entry.value == "false" => continue,
            FlagKind::Switch => vec![format!("--{name}")],
            FlagKind::Single | FlagKind::Repeated => {
                vec![format!("--{name}"), entry.value.clone()]
            }
            FlagKind::Positional => {
                positionals.push(entry.value.clone());
                Vec::new()
            }
        };
        expanded.args.extend(tokens);
        expanded.origins.push(Origin {
            name: name.to_owned(),
            positional: entry.flag.kind == FlagKind::Positional,
            value: entry.value,
            at,
        });
    }
    expanded.args.extend(positionals);
    expanded.args.extend_from_slice(rest);
    Ok(expanded)
}

/// What a command line says, as far as config files care.
#[derive(Default)]
struct Given {
    config: Option<String>,
    flags: BTreeSet<&'static str>,
    positional: bool,
    help: bool,
}

/// Reads a command line (after any subcommand) the way argh will: which
/// flags it gives, whether it has a positional argument, and its config
/// file. Unknown flags are left for argh to refuse.
fn scan(args: &[String], flags: &[Flag]) -> Result<Given, ConfigError> {
    let mut given = Given::default();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        if arg == "--" {
            given.positional |= i < args.len();
            break;
        }
        if arg == "--help" || arg == "help" {
            given.help = true;
        } else if arg == "--config" {
            let file = args.get(i).ok_or(ConfigError::MissingFile)?;
            if given.config.is_some() {
                return Err(ConfigError::GivenTwice);
            }
            given.config = Some(file.clone());
            i += 1;
        } else if let Some(name) = arg.strip_prefix("--") {
            if let Some(flag) = flags
                .iter()
                .find(|f| f.name == name && f.kind != FlagKind::Positional)
            {
                given.flags.insert(flag.name);
                if flag.takes_value() {
                    i += 1;
                }
            }
        } else if !arg.starts_with('-') || arg == "-" {
            given.positional = true;
        }
    }
    Ok(given)
}

/// Parses the text of config file `file` against `flags`. Errors read
/// `FILE:LINE: what is wrong`.
pub fn parse_config(
    file: &str,
    bytes: &[u8],
    flags: &[Flag],
) -> Result<Vec<ConfigEntry>, ConfigError> {
    let mut entries: Vec<ConfigEntry> = Vec::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let at = |problem| ConfigError::Line {
            file: file.to_owned(),
            line,
            problem,
        };
        let text = std::str::from_utf8(raw).map_err(|_| at(LineProblem::NotUtf8))?;
        let text = text.strip_suffix('\r').unwrap_or(text).trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let (name, value) = text
            .split_once('=')
            .ok_or_else(|| at(LineProblem::NoEquals(text.to_owned())))?;
        let name = name.trim();
        let value = unquote(value.trim());
        if name == CONFIG_FLAG {
            return Err(at(LineProblem::ConfigInFile));
        }
        if let Some(bare) = name.strip_prefix("--") {
            return Err(at(LineProblem::Dashed {
                name: bare.to_owned(),
                value: value.to_owned(),
            }));
        }
        let flag = flags
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| match name {
                "" => at(LineProblem::NoName(text.to_owned())),
                _ => at(LineProblem::UnknownKey(name.to_owned())),
            })?;
        if !flag.in_files {
            return Err(at(LineProblem::CommandLineOnly(name.to_owned())));
        }
        match flag.kind {
            FlagKind::Switch if !matches!(value, "true" | "false") => {
                return Err(at(LineProblem::NotASwitchValue {
                    name: name.to_owned(),
                    value: value.to_owned(),
                }));
            }
            FlagKind::Single | FlagKind::Repeated | FlagKind::Positional if value.is_empty() => {
                return Err(at(LineProblem::NoValue(name.to_owned())));
            }
            FlagKind::Positional if value.starts_with('-') => {
                return Err(at(LineProblem::LeadingDash {
                    name: name.to_owned(),
                    value: value.to_owned(),
                }));
            }
            _ => {}
        }
        if flag.kind != FlagKind::Repeated {
            if let Some(first) = entries.iter().find(|e| e.flag.name == name) {
                return Err(at(LineProblem::SetTwice {
                    name: name.to_owned(),
                    first: first.line,
                }));
            }
        }
        entries.push(ConfigEntry {
            flag: *flag,
            value: value.to_owned(),
            line,
        });
    }
    Ok(entries)
}

/// `"text"` without its quotes; anything else as it is.
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// Puts `FILE:LINE: ` in front of `message` when it is about a value that
/// came from a config file: it starts with that flag (`--listen "x": ...`,
/// or `name "x": ...` for a positional) or with the value itself (a path:
/// `/etc/x: cannot read it`), or quotes the flag the way argh does
/// (`'--min-work'`). When the flag came from several lines, the line whose
/// value the message mentions is named.
pub fn locate(message: &str, origins: &[Origin]) -> Option<String> {
    let about = |o: &&Origin| {
        let flag = if o.positional {
            o.name.clone()
        } else {
            format!("--{}", o.name)
        };
        let starts = message
            .strip_prefix(&flag)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', ':']));
        let names_value = message
            .strip_prefix(o.value.as_str())
            .is_some_and(|rest| rest.starts_with(": "));
        starts || names_value || message.contains(&format!("'{flag}'"))
    };
    let candidates: Vec<&Origin> = origins.iter().filter(about).collect();
    let origin = candidates
        .iter()
        .find(|o| message.contains(o.value.as_str()))
        .or(candidates.first())?;
    Some(format!("{}: {message}", origin.at))
}

/// `message` with the config file's line in front when it is about one.
pub(super) fn with_origin(message: &str) -> String {
    ORIGINS
        .get()
        .and_then(|origins| locate(message, origins))
        .unwrap_or_else(|| message.to_owned())
}
