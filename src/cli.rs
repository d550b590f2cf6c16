//! Helpers the binaries share for turning flags into typed values and
//! failing the way every onions program fails: one line on stderr naming
//! the value and what is wrong, and a non-zero exit.
//!
//! # Config files
//!
//! `onions-server`, `onions-client` and `onions-hs claim` also read their
//! flags from a file given with `--config FILE`. The format is one
//! `flag-name = value` a line:
//!
//! ```text
//! # The Quorum on this host.
//! role = quorum
//! listen = 127.0.0.1:10053
//! state-dir = /var/lib/onions/quorum
//! ```
//!
//! - The names are the program's long flags without `--`.
//! - A line whose first non-blank character is `#` is a comment; blank
//!   lines are ignored. A `#` anywhere else is part of the value.
//! - The value is everything after the first `=`, with surrounding blanks
//!   removed; a value wrapped in double quotes loses the quotes (so
//!   `contact = "  x "` keeps its blanks). There are no escapes.
//! - A switch takes `true` or `false`.
//! - Flags that may be repeated on the command line (`quorum-key`,
//!   `mirror`, `sub`, `witness-key`) may repeat; any other name may appear
//!   once.
//! - A positional argument (the NAME of `onions-hs claim`) is written
//!   under its name, `name = example.tor`.
//!
//! The file becomes command-line arguments placed before the real ones, and
//! every flag given on the command line replaces what the file says about
//! it: an explicit flag wins, also for repeatable flags (one
//! `--quorum-key` on the command line drops every `quorum-key` line).
//! A switch set to `true` in a file cannot be turned off on the command
//! line; edit the file. Relative paths in values are relative to the
//! working directory, not to the file.

use crate::cosign::Quorate;
use crate::keys::PublicKey;
use crate::transport::{Route, DEFAULT_SOCKS};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

/// The flag that names a config file. It is not in any [`Flag`] table and
/// cannot be set inside a config file.
pub const CONFIG_FLAG: &str = "config";

/// Exit status of a usage error: a bad flag or a bad config file.
pub const USAGE_EXIT: i32 = 2;

/// Runs a program's body; on error prints `PROGRAM: error` and exits 1.
///
/// When the error starts with a flag (`--listen "x": ...`) whose value came
/// from the config file, the file and line are put in front of it:
/// `PROGRAM: /etc/onions/mirror.conf:12: --listen "x": ...`.
pub fn run(program: &str, body: impl FnOnce() -> Result<(), String>) {
    if let Err(e) = crate::keys::init()
        .map_err(str::to_owned)
        .and_then(|()| body())
    {
        eprintln!("{program}: {}", with_origin(&e));
        std::process::exit(1);
    }
}

/// Parses the command line like `argh::from_env`, but reports a usage
/// error on one line, as every other error is.
pub fn parse_args<T: argh::TopLevelCommand>(program: &str) -> T {
    let args: Vec<String> = std::env::args().skip(1).collect();
    parse_or_exit(program, &args)
}

/// How a flag takes its value, which is what a config file needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagKind {
    /// `--flag` with no value; `flag = true` or `flag = false` in a file.
    Switch,
    /// `--flag VALUE`, at most once.
    Single,
    /// `--flag VALUE`, any number of times.
    Repeated,
    /// A positional argument; `flag = VALUE` in a file.
    Positional,
}

/// One flag a program takes, for reading config files: its long name
/// without `--`, how it takes a value, and whether a file may set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flag {
    /// The long name without `--`, like `state-dir`.
    pub name: &'static str,
    /// How it takes its value.
    pub kind: FlagKind,
    /// False for flags that change what the program does rather than how
    /// (`--print-key`, `--release`): a file may not set them.
    pub in_files: bool,
}

impl Flag {
    /// A switch (`--flag`).
    pub const fn switch(name: &'static str) -> Flag {
        Flag {
            name,
            kind: FlagKind::Switch,
            in_files: true,
        }
    }

    /// An option given at most once (`--flag VALUE`).
    pub const fn single(name: &'static str) -> Flag {
        Flag {
            name,
            kind: FlagKind::Single,
            in_files: true,
        }
    }

    /// An option that may repeat (`--flag VALUE ...`).
    pub const fn repeated(name: &'static str) -> Flag {
        Flag {
            name,
            kind: FlagKind::Repeated,
            in_files: true,
        }
    }

    /// A positional argument, named `name` in files.
    pub const fn positional(name: &'static str) -> Flag {
        Flag {
            name,
            kind: FlagKind::Positional,
            in_files: true,
        }
    }

    /// The same flag, refused in config files.
    pub const fn command_line_only(self) -> Flag {
        Flag {
            in_files: false,
            ..self
        }
    }

    /// True if the flag takes a value after it on the command line.
    fn takes_value(&self) -> bool {
        matches!(self.kind, FlagKind::Single | FlagKind::Repeated)
    }
}

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

static ORIGINS: OnceLock<Vec<Origin>> = OnceLock::new();

/// Like [`parse_args`], but first folds in the file named by `--config`
/// when the command line is in one of `scopes`. A bad or unreadable file
/// ends the program with `PROGRAM: FILE:LINE: what is wrong` and exit
/// status [`USAGE_EXIT`].
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

/// Folds the config file named on the command line `args` (if any) into
/// it, for the first of `scopes` that the command line is in. `read` reads
/// a file (`std::fs::read` outside tests). Without `--config`, or with
/// `--help`, the arguments come back unchanged.
pub fn expand_config(
    args: &[String],
    scopes: &[ConfigScope],
    read: impl FnOnce(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Expanded, String> {
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
    let bytes = read(Path::new(&file)).map_err(|e| format!("{file}: cannot read: {e}"))?;
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
fn scan(args: &[String], flags: &[Flag]) -> Result<Given, String> {
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
            let file = args
                .get(i)
                .ok_or("--config needs a FILE (flag-name = value lines)")?;
            if given.config.is_some() {
                return Err("--config is given twice; give one file".into());
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
pub fn parse_config(file: &str, bytes: &[u8], flags: &[Flag]) -> Result<Vec<ConfigEntry>, String> {
    let mut entries: Vec<ConfigEntry> = Vec::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let at = |what: String| format!("{file}:{line}: {what}");
        let text = std::str::from_utf8(raw).map_err(|_| at("not UTF-8 text".into()))?;
        let text = text.strip_suffix('\r').unwrap_or(text).trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let (name, value) = text.split_once('=').ok_or_else(|| {
            at(format!(
                "expected \"flag-name = value\", got {text:?} (comments start with #)"
            ))
        })?;
        let name = name.trim();
        let value = unquote(value.trim());
        if name == CONFIG_FLAG {
            return Err(at("config cannot be set in a config file".into()));
        }
        if let Some(bare) = name.strip_prefix("--") {
            return Err(at(format!(
                "write the flag name without --: {bare} = {value}"
            )));
        }
        let flag = flags
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| match name {
                "" => at(format!("no flag name before = in {text:?}")),
                _ => at(format!(
                    "unknown key {name:?}; keys are the long flags (without --) that --help lists"
                )),
            })?;
        if !flag.in_files {
            return Err(at(format!(
                "{name} is for the command line only, not for config files"
            )));
        }
        match flag.kind {
            FlagKind::Switch if !matches!(value, "true" | "false") => {
                return Err(at(format!(
                    "{name} = {value:?}: a switch takes true or false"
                )));
            }
            FlagKind::Single | FlagKind::Repeated | FlagKind::Positional if value.is_empty() => {
                return Err(at(format!("{name} has no value")));
            }
            FlagKind::Positional if value.starts_with('-') => {
                return Err(at(format!("{name} = {value:?}: cannot start with -")));
            }
            _ => {}
        }
        if flag.kind != FlagKind::Repeated {
            if let Some(first) = entries.iter().find(|e| e.flag.name == name) {
                return Err(at(format!(
                    "{name} is set twice (first on line {}); only repeatable flags may repeat",
                    first.line
                )));
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
fn with_origin(message: &str) -> String {
    ORIGINS
        .get()
        .and_then(|origins| locate(message, origins))
        .unwrap_or_else(|| message.to_owned())
}

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

/// Checks a binary's [`Flag`] table against what argh accepts, as argh's
/// usage line for `command` (the subcommand path, empty for the program)
/// shows it: the same names, the same kinds, and `--config`. For the
/// binaries' own tests; returns every mismatch.
pub fn check_flag_table<T: argh::TopLevelCommand>(
    command: &[&str],
    flags: &[Flag],
) -> Result<(), Vec<String>> {
    let mut args = command.to_vec();
    args.push("--help");
    let help = match T::from_args(&["program"], &args) {
        Err(exit) if exit.status.is_ok() => exit.output,
        _ => return Err(vec!["--help did not print help".into()]),
    };
    let Some(usage) = help.lines().find_map(|l| l.strip_prefix("Usage: ")) else {
        return Err(vec!["no Usage: line in --help".into()]);
    };
    let mut seen: Vec<(String, FlagKind)> = Vec::new();
    let words: Vec<&str> = usage
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '[' || c == ']'))
        .collect();
    let mut i = command.len() + 1;
    while let Some(word) = words.get(i) {
        i += 1;
        if *word == "--" {
            continue;
        }
        // argh's placeholder for a subcommand: its flags have a table of
        // their own (or none).
        if *word == "<command>" {
            break;
        }
        if let Some(name) = word.strip_prefix("--") {
            let kind = match words.get(i) {
                Some(v) if v.starts_with('<') && v.ends_with("...>") => FlagKind::Repeated,
                Some(v) if v.starts_with('<') => FlagKind::Single,
                _ => FlagKind::Switch,
            };
            if kind != FlagKind::Switch {
                i += 1;
            }
            seen.push((name.to_owned(), kind));
        } else if let Some(name) = word.strip_prefix('<').and_then(|w| w.strip_suffix('>')) {
            seen.push((name.to_owned(), FlagKind::Positional));
        }
    }
    let mut problems = Vec::new();
    if !seen.contains(&(CONFIG_FLAG.to_owned(), FlagKind::Single)) {
        problems.push("argh has no --config option".into());
    }
    for (name, kind) in &seen {
        if name != CONFIG_FLAG && !flags.iter().any(|f| f.name == name && f.kind == *kind) {
            problems.push(format!("{name} ({kind:?}) is not in the flag table"));
        }
    }
    for flag in flags {
        if !seen.iter().any(|(n, k)| n == flag.name && *k == flag.kind) {
            problems.push(format!(
                "{} ({:?}) in the flag table is not what argh takes",
                flag.name, flag.kind
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Chooses Tor's SOCKS port (the default) or a direct connection.
pub fn route(socks: Option<&str>, direct: bool) -> Result<Route, String> {
    match (socks, direct) {
        (Some(_), true) => Err("--socks and --direct exclude each other".into()),
        (_, true) => Ok(Route::Direct),
        (socks, false) => {
            let text = socks.unwrap_or(DEFAULT_SOCKS);
            let addr: SocketAddr = text
                .parse()
                .map_err(|_| format!("--socks {text:?}: expected IP:PORT of Tor's SOCKS port"))?;
            Ok(Route::Socks(addr))
        }
    }
}

/// Parses every `--quorum-key`.
pub fn quorum_keys(texts: &[String]) -> Result<Vec<PublicKey>, String> {
    public_keys("quorum-key", texts, "onions-server --print-key")
}

/// Parses the trusted witness keys given with `--FLAG` (`--witness-key` at
/// a client, `--trust-witness` at a server) and `--witnesses K`, which
/// defaults to a majority of them ([`Quorate::majority`]). K may not exceed
/// the keys given: a client could never be satisfied.
pub fn witness_policy(
    flag: &str,
    texts: &[String],
    needed: Option<usize>,
) -> Result<Quorate, String> {
    let trusted = public_keys(
        flag,
        texts,
        "onions-server --witness-key FILE --print-key at the witness",
    )?;
    let needed = needed.unwrap_or_else(|| Quorate::majority(trusted.len()));
    if needed > 0 && trusted.is_empty() {
        return Err(format!(
            "--witnesses {needed}: no --{flag} is given; give the key of each witness to trust, or leave --witnesses out"
        ));
    }
    if needed > trusted.len() {
        return Err(format!(
            "--witnesses {needed}: only {} --{flag} keys are given; give more keys or a lower --witnesses",
            trusted.len()
        ));
    }
    Ok(Quorate { trusted, needed })
}

/// Parses every `--FLAG` as an ed25519 public key in Base64; a bad one is
/// named with where the right value comes from (`hint`).
fn public_keys(flag: &str, texts: &[String], hint: &str) -> Result<Vec<PublicKey>, String> {
    texts
        .iter()
        .map(|t| {
            PublicKey::from_base64(t).ok_or_else(|| {
                format!("--{flag} {t:?}: expected Base64 of a 32-byte ed25519 key ({hint})")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[
        Flag::single("listen"),
        Flag::single("state-dir"),
        Flag::repeated("quorum-key"),
        Flag::switch("direct"),
        Flag::switch("print-key").command_line_only(),
    ];

    const CLAIM: &[Flag] = &[
        Flag::positional("name"),
        Flag::single("key"),
        Flag::repeated("sub"),
        Flag::switch("dry-run"),
    ];

    const PROGRAM: &[ConfigScope] = &[ConfigScope {
        subcommand: None,
        flags: FLAGS,
    }];

    const SUBCOMMAND: &[ConfigScope] = &[ConfigScope {
        subcommand: Some("claim"),
        flags: CLAIM,
    }];

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn expand(args: &[&str], scopes: &[ConfigScope], file: &str) -> Result<Expanded, String> {
        let bytes = file.as_bytes().to_vec();
        expand_config(&strings(args), scopes, move |path| {
            assert_eq!(path, Path::new("my.conf"));
            Ok(bytes)
        })
    }

    fn args_of(args: &[&str], scopes: &[ConfigScope], file: &str) -> Vec<String> {
        expand(args, scopes, file).unwrap().args
    }

    fn error_of(file: &str) -> String {
        parse_config("my.conf", file.as_bytes(), FLAGS).unwrap_err()
    }

    #[test]
    fn file_lines_become_flags_before_the_command_line() {
        let file =
            "# a comment\n\n  listen = 127.0.0.1:10054  \nstate-dir=/var/lib/x\r\ndirect = true\n";
        assert_eq!(
            args_of(&["--config", "my.conf", "--quorum-key", "K"], PROGRAM, file),
            strings(&[
                "--listen",
                "127.0.0.1:10054",
                "--state-dir",
                "/var/lib/x",
                "--direct",
                "--config",
                "my.conf",
                "--quorum-key",
                "K"
            ])
        );
    }

    #[test]
    fn an_explicit_flag_wins() {
        let file = "listen = 127.0.0.1:1\nstate-dir = /a\n";
        assert_eq!(
            args_of(
                &["--listen", "127.0.0.2:2", "--config", "my.conf"],
                PROGRAM,
                file
            ),
            strings(&[
                "--state-dir",
                "/a",
                "--listen",
                "127.0.0.2:2",
                "--config",
                "my.conf"
            ])
        );
    }

    #[test]
    fn one_repeatable_flag_on_the_command_line_drops_all_of_the_file() {
        let file = "quorum-key = A\nquorum-key = B\nlisten = x\n";
        assert_eq!(
            args_of(&["--config", "my.conf", "--quorum-key", "C"], PROGRAM, file),
            strings(&["--listen", "x", "--config", "my.conf", "--quorum-key", "C"])
        );
        assert_eq!(
            args_of(&["--config", "my.conf"], PROGRAM, file),
            strings(&[
                "--quorum-key",
                "A",
                "--quorum-key",
                "B",
                "--listen",
                "x",
                "--config",
                "my.conf"
            ])
        );
    }

    #[test]
    fn a_value_that_looks_like_a_flag_is_not_taken_for_one() {
        // `--state-dir --listen` gives state-dir the value "--listen", so
        // the file's listen still applies.
        let file = "listen = x\n";
        assert_eq!(
            args_of(
                &["--state-dir", "--listen", "--config", "my.conf"],
                PROGRAM,
                file
            ),
            strings(&[
                "--listen",
                "x",
                "--state-dir",
                "--listen",
                "--config",
                "my.conf"
            ])
        );
    }

    #[test]
    fn false_switches_are_left_out_and_quotes_are_removed() {
        let file = "direct = false\nstate-dir = \" spaced # not a comment \"\n";
        assert_eq!(
            args_of(&["--config", "my.conf"], PROGRAM, file),
            strings(&[
                "--state-dir",
                " spaced # not a comment ",
                "--config",
                "my.conf"
            ])
        );
    }

    #[test]
    fn a_subcommand_takes_the_file_after_its_name_and_positionals_last() {
        let file = "name = example.tor\nkey = /k\nsub = www=a.onion\ndry-run = true\n";
        assert_eq!(
            args_of(&["claim", "--config", "my.conf"], SUBCOMMAND, file),
            strings(&[
                "claim",
                "--key",
                "/k",
                "--sub",
                "www=a.onion",
                "--dry-run",
                "example.tor",
                "--config",
                "my.conf"
            ])
        );
        // A positional on the command line wins over the file's.
        assert_eq!(
            args_of(
                &["claim", "other.tor", "--config", "my.conf"],
                SUBCOMMAND,
                file
            ),
            strings(&[
                "claim",
                "--key",
                "/k",
                "--sub",
                "www=a.onion",
                "--dry-run",
                "other.tor",
                "--config",
                "my.conf"
            ])
        );
        // Other subcommands are left alone (argh refuses their --config).
        assert_eq!(
            args_of(
                &["verify", "f.json", "--config", "my.conf"],
                SUBCOMMAND,
                file
            ),
            strings(&["verify", "f.json", "--config", "my.conf"])
        );
    }

    #[test]
    fn no_config_or_help_leaves_the_command_line_alone() {
        let unreadable = |_: &Path| -> std::io::Result<Vec<u8>> {
            Err(std::io::Error::other("must not be read"))
        };
        for args in [
            &["--listen", "x"][..],
            &["--config", "my.conf", "--help"],
            &["help", "--config", "my.conf"],
        ] {
            let expanded = expand_config(&strings(args), PROGRAM, unreadable).unwrap();
            assert_eq!(expanded.args, strings(args));
            assert!(expanded.origins.is_empty());
        }
    }

    #[test]
    fn command_line_mistakes_about_config() {
        assert_eq!(
            expand(&["--config"], PROGRAM, "").unwrap_err(),
            "--config needs a FILE (flag-name = value lines)"
        );
        assert_eq!(
            expand(&["--config", "a", "--config", "b"], PROGRAM, "").unwrap_err(),
            "--config is given twice; give one file"
        );
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let error = expand_config(&strings(&["--config", "/no/such.conf"]), PROGRAM, |p| {
            std::fs::read(p)
        })
        .unwrap_err();
        assert!(error.starts_with("/no/such.conf: cannot read: "), "{error}");
    }

    #[test]
    fn bad_files_name_file_line_and_what_is_wrong() {
        assert_eq!(
            error_of("# ok\nlisten 127.0.0.1\n"),
            "my.conf:2: expected \"flag-name = value\", got \"listen 127.0.0.1\" (comments start with #)"
        );
        assert_eq!(
            error_of("\n\nlistne = x\n"),
            "my.conf:3: unknown key \"listne\"; keys are the long flags (without --) that --help lists"
        );
        assert_eq!(
            error_of("--listen = x\n"),
            "my.conf:1: write the flag name without --: listen = x"
        );
        assert_eq!(
            error_of(" = x\n"),
            "my.conf:1: no flag name before = in \"= x\""
        );
        assert_eq!(error_of("listen =\n"), "my.conf:1: listen has no value");
        assert_eq!(
            error_of("direct = yes\n"),
            "my.conf:1: direct = \"yes\": a switch takes true or false"
        );
        assert_eq!(
            error_of("listen = a\n# x\nlisten = b\n"),
            "my.conf:3: listen is set twice (first on line 1); only repeatable flags may repeat"
        );
        assert_eq!(
            error_of("print-key = true\n"),
            "my.conf:1: print-key is for the command line only, not for config files"
        );
        assert_eq!(
            error_of("config = other.conf\n"),
            "my.conf:1: config cannot be set in a config file"
        );
        assert_eq!(
            parse_config("my.conf", b"listen = ok\nstate-dir = \xff\n", FLAGS).unwrap_err(),
            "my.conf:2: not UTF-8 text"
        );
        assert_eq!(
            parse_config("my.conf", b"name = -x\n", CLAIM).unwrap_err(),
            "my.conf:1: name = \"-x\": cannot start with -"
        );
    }

    #[test]
    fn witnesses_default_to_a_majority_of_the_keys_given() {
        crate::keys::init().unwrap();
        let keys: Vec<String> = (1..=3u8)
            .map(|n| {
                crate::keys::SigningKey::from_seed(&[n; 32])
                    .public()
                    .to_base64()
            })
            .collect();
        let policy = witness_policy("witness-key", &keys, None).unwrap();
        assert_eq!((policy.trusted.len(), policy.needed), (3, 2));
        assert_eq!(
            witness_policy("witness-key", &keys, Some(3))
                .unwrap()
                .needed,
            3
        );
        assert_eq!(
            witness_policy("witness-key", &keys, Some(0))
                .unwrap()
                .needed,
            0
        );
        assert!(witness_policy("witness-key", &[], None).unwrap().is_off());
    }

    #[test]
    fn witness_mistakes_are_one_line_that_says_what_to_do() {
        let keys = vec![crate::keys::SigningKey::from_seed(&[1; 32])
            .public()
            .to_base64()];
        assert_eq!(
            witness_policy("witness-key", &keys, Some(2)).unwrap_err(),
            "--witnesses 2: only 1 --witness-key keys are given; give more keys or a lower --witnesses"
        );
        assert_eq!(
            witness_policy("witness-key", &[], Some(1)).unwrap_err(),
            "--witnesses 1: no --witness-key is given; give the key of each witness to trust, or leave --witnesses out"
        );
        assert_eq!(
            witness_policy("trust-witness", &["AAA".into()], None).unwrap_err(),
            "--trust-witness \"AAA\": expected Base64 of a 32-byte ed25519 key (onions-server --witness-key FILE --print-key at the witness)"
        );
    }

    #[test]
    fn errors_about_file_values_name_the_line() {
        let expanded = expand(
            &["--config", "my.conf"],
            PROGRAM,
            "listen = bad\nquorum-key = AAA\nquorum-key = BBB\n",
        )
        .unwrap();
        let origins = &expanded.origins;
        assert_eq!(
            locate("--listen \"bad\": expected an IPv4 address", origins).as_deref(),
            Some("my.conf:1: --listen \"bad\": expected an IPv4 address")
        );
        assert_eq!(
            locate("--quorum-key \"BBB\": expected Base64", origins).as_deref(),
            Some("my.conf:3: --quorum-key \"BBB\": expected Base64")
        );
        assert_eq!(
            locate(
                "Error parsing option '--listen' with value 'bad': nope",
                origins
            )
            .as_deref(),
            Some("my.conf:1: Error parsing option '--listen' with value 'bad': nope")
        );
        assert_eq!(
            locate("bad: cannot read it", origins).as_deref(),
            Some("my.conf:1: bad: cannot read it")
        );
        assert_eq!(locate("bad things happened", origins), None);
        assert_eq!(locate("--listen-more is unrelated", origins), None);
        assert_eq!(locate("--state-dir \"x\": missing", origins), None);
        let claim = expand(
            &["claim", "--config", "my.conf"],
            SUBCOMMAND,
            "name = a.b\n",
        )
        .unwrap();
        assert_eq!(
            locate("name \"a.b\": not a .tor name", &claim.origins).as_deref(),
            Some("my.conf:1: name \"a.b\": not a .tor name")
        );
    }
}
