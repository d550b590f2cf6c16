//! The flag tables: [`Flag`] and [`FlagKind`] tell the config file reader
//! what a program takes (a switch, a value, a repeatable value, a
//! positional argument) and what a file may set. Each binary writes its
//! table by hand next to its argh struct, and [`check_flag_table`] is the
//! test that the two never drift apart. [`CONFIG_FLAG`], the flag that
//! names the file, is in no table.

/// The flag that names a config file. It is not in any [`Flag`] table and
/// cannot be set inside a config file.
pub const CONFIG_FLAG: &str = "config";

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
    pub(super) fn takes_value(&self) -> bool {
        matches!(self.kind, FlagKind::Single | FlagKind::Repeated)
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
