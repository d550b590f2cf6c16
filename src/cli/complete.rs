//! One definition per flag: each binary's argh struct says a flag's name,
//! type, default and help text once, and everything else a person sees of
//! the flags comes from it or is checked against it. [`describe`] reads
//! the definition back from argh's own `--help` output for a program and
//! each of its subcommands; [`script`] writes the bash, zsh and fish
//! completions from that; [`check_completions`] is the test that the
//! committed scripts in `completions/` are exactly what [`script`] writes
//! (`scripts/completions` rewrites them); [`check_man_page`] is the test
//! that the man page documents every flag and no other. The config-file
//! tables ([`super::Flag`]) are checked against the same definition by
//! [`super::check_flag_table`].
//!
//! The one thing argh does not know, what a flag's value looks like for
//! completion (a file, a directory, one of a few words), is a small
//! [`Hint`] table next to each argh struct.

use super::flags::FlagKind;
use std::fmt::Write as _;
use std::path::PathBuf;

/// What a flag's value is, for completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// A file name.
    File,
    /// A directory name.
    Dir,
    /// One of these words (or a typical value, like `127.0.0.1:9050`).
    Words(&'static [&'static str]),
}

/// A program's hints: flag name (without `--`), or the name of a
/// positional argument, to [`Hint`]. A flag that takes a value and has no
/// hint completes nothing; a positional argument is completed only as a
/// file.
pub type Hints = &'static [(&'static str, Hint)];

/// One flag as argh defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagSpec {
    /// The long name without `--`.
    pub name: String,
    /// Switch, value, repeated value.
    pub kind: FlagKind,
    /// argh's help text, on one line.
    pub help: String,
}

/// A program or one of its subcommands, as argh defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Subcommand names from the program down; empty for the program.
    pub path: Vec<String>,
    /// The first sentence of its description.
    pub about: String,
    /// Its flags, `--help` left out, in argh's order.
    pub flags: Vec<FlagSpec>,
    /// Its positional arguments' names, in order.
    pub positionals: Vec<String>,
    /// Its subcommands' names.
    pub subcommands: Vec<String>,
}

/// The shells completions are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    /// bash, with or without bash-completion.
    Bash,
    /// zsh (`_arguments`).
    Zsh,
    /// fish.
    Fish,
}

impl Shell {
    /// Every shell, in the order the files are checked.
    pub const ALL: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

    /// The file in `completions/` that holds `program`'s script.
    pub fn file_name(self, program: &str) -> String {
        match self {
            Shell::Bash => format!("{program}.bash"),
            Shell::Zsh => format!("_{program}"),
            Shell::Fish => format!("{program}.fish"),
        }
    }
}

/// Reads `T`'s definition back from argh: the program and every
/// subcommand, depth first.
pub fn describe<T: argh::TopLevelCommand>() -> Result<Vec<CommandSpec>, String> {
    let mut out = Vec::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = match T::from_args(&["program"], &args) {
            Err(exit) if exit.status.is_ok() => exit.output,
            _ => return Err(format!("{} --help did not print help", path.join(" "))),
        };
        let spec = parse_help(&path, &help)?;
        for sub in spec.subcommands.iter().rev() {
            todo.push([path.clone(), vec![sub.clone()]].concat());
        }
        out.push(spec);
    }
    Ok(out)
}

/// Parses one `--help` text of argh.
fn parse_help(path: &[String], help: &str) -> Result<CommandSpec, String> {
    let usage = help
        .lines()
        .find_map(|l| l.strip_prefix("Usage: "))
        .ok_or("no Usage: line in --help")?;
    let kinds = usage_kinds(usage, path.len());
    let sections = sections(help);
    let text = |name: &str| sections.iter().find(|(n, _)| n == name).map(|(_, e)| e);
    let flags = text("Options")
        .into_iter()
        .flatten()
        .filter(|(name, _)| name.starts_with("--") && name != "--help,")
        .map(|(name, help)| {
            let name = name.trim_start_matches("--").to_owned();
            let kind = kinds
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(FlagKind::Switch, |(_, k)| *k);
            FlagSpec {
                name,
                kind,
                help: help.clone(),
            }
        })
        .collect();
    let positionals = text("Positional Arguments")
        .into_iter()
        .flatten()
        .map(|(name, _)| name.clone())
        .collect();
    let subcommands = text("Commands")
        .into_iter()
        .flatten()
        .map(|(name, _)| name.clone())
        .collect();
    let about = help
        .split("\n\n")
        .nth(1)
        .map(|p| first_sentence(&p.split_whitespace().collect::<Vec<_>>().join(" ")))
        .unwrap_or_default();
    Ok(CommandSpec {
        path: path.to_vec(),
        about,
        flags,
        positionals,
        subcommands,
    })
}

/// Flag kinds as the usage line shows them: `--f`, `--f <f>`, `--f <f...>`.
fn usage_kinds(usage: &str, depth: usize) -> Vec<(String, FlagKind)> {
    let words: Vec<&str> = usage
        .split_whitespace()
        .skip(depth + 1)
        .map(|w| w.trim_matches(|c| c == '[' || c == ']'))
        .collect();
    let mut kinds = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let Some(name) = word.strip_prefix("--").filter(|n| !n.is_empty()) else {
            continue;
        };
        let kind = match words.get(i + 1) {
            Some(v) if v.starts_with('<') && v.ends_with("...>") => FlagKind::Repeated,
            Some(v) if v.starts_with('<') && *v != "<command>" => FlagKind::Single,
            _ => FlagKind::Switch,
        };
        kinds.push((name.to_owned(), kind));
    }
    kinds
}

/// The `Name:` sections of a help text, each as (entry, its text joined on
/// one line).
fn sections(help: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in help.lines() {
        if let Some(title) = line.strip_suffix(':').filter(|t| !t.starts_with(' ')) {
            out.push((title.to_owned(), Vec::new()));
            continue;
        }
        let Some((_, entries)) = out.last_mut() else {
            continue;
        };
        let body = line.trim_start();
        if body.is_empty() {
            continue;
        }
        let indent = line.len() - body.len();
        match entries.last_mut() {
            Some((_, text)) if indent > 2 => {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(body);
            }
            _ => {
                let (name, text) = split_entry(body);
                entries.push((name, text));
            }
        }
    }
    out
}

/// Splits `--flag   help text` after its first word (argh leaves a single
/// blank after a long name).
fn split_entry(body: &str) -> (String, String) {
    match body.split_once(' ') {
        Some((name, text)) => (name.to_owned(), text.trim().to_owned()),
        None => (body.to_owned(), String::new()),
    }
}

fn first_sentence(text: &str) -> String {
    match text.find(". ") {
        Some(at) => text[..at].to_owned(),
        None => text.trim_end_matches('.').to_owned(),
    }
}

/// The completion script for `program` in `shell`.
pub fn script(shell: Shell, program: &str, commands: &[CommandSpec], hints: Hints) -> String {
    match shell {
        Shell::Bash => bash(program, commands, hints),
        Shell::Zsh => zsh(program, commands, hints),
        Shell::Fish => fish(program, commands, hints),
    }
}

fn hint_of(hints: Hints, name: &str) -> Option<Hint> {
    hints.iter().find(|(n, _)| *n == name).map(|(_, h)| *h)
}

/// The subcommands (one level) and the program itself.
fn top(commands: &[CommandSpec]) -> &CommandSpec {
    commands
        .iter()
        .find(|c| c.path.is_empty())
        .expect("describe lists the program")
}

fn header(program: &str, shell: &str) -> String {
    format!(
        "# {shell} completion for {program}. Generated from {program}'s flags by\n\
         # scripts/completions; do not edit (a test fails when it drifts).\n"
    )
}

fn bash(program: &str, commands: &[CommandSpec], hints: Hints) -> String {
    let func = format!("_{}", program.replace('-', "_"));
    let mut out = header(program, "bash");
    let _ = write!(
        out,
        "\n{func}()\n{{\n    local cur prev words cword\n    if declare -F _init_completion >/dev/null; then\n        _init_completion -n : || return\n    else\n        cur=${{COMP_WORDS[COMP_CWORD]}}\n        prev=${{COMP_WORDS[COMP_CWORD-1]}}\n        words=(\"${{COMP_WORDS[@]}}\")\n        cword=$COMP_CWORD\n    fi\n"
    );
    let subs = &top(commands).subcommands;
    if !subs.is_empty() {
        let _ = write!(
            out,
            "\n    local command=\"\" i\n    for ((i = 1; i < cword; i++)); do\n        case ${{words[i]}} in\n            {})\n                command=${{words[i]}}\n                break ;;\n        esac\n    done\n",
            subs.join(" | ")
        );
    }
    out.push_str("\n    case $prev in\n");
    for (pattern, action) in bash_value_cases(commands, hints) {
        let _ = write!(out, "        {pattern})\n{action}            return ;;\n");
    }
    out.push_str("    esac\n\n");
    if subs.is_empty() {
        let words = bash_words(top(commands), &[]);
        let _ = writeln!(
            out,
            "    mapfile -t COMPREPLY < <(compgen -W '{words}' -- \"$cur\")"
        );
    } else {
        out.push_str("    case $command in\n");
        for command in commands {
            let label = command.path.last().map_or("\"\"", String::as_str);
            let extra: Vec<String> = if command.path.is_empty() {
                command.subcommands.clone()
            } else {
                Vec::new()
            };
            let words = bash_words(command, &extra);
            let _ = writeln!(out, "        {label})");
            if takes_file(command, hints) {
                out.push_str("            if [[ $cur != -* ]]; then\n                mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n                return\n            fi\n");
            }
            let _ = writeln!(
                out,
                "            mapfile -t COMPREPLY < <(compgen -W '{words}' -- \"$cur\") ;;"
            );
        }
        out.push_str("    esac\n");
    }
    let _ = write!(out, "}}\ncomplete -F {func} {program}\n");
    out
}

/// `case $prev` arms: flags whose value is completed, then the other
/// value-taking flags (nothing to complete).
fn bash_value_cases(commands: &[CommandSpec], hints: Hints) -> Vec<(String, String)> {
    let mut names: Vec<&FlagSpec> = Vec::new();
    for flag in commands.iter().flat_map(|c| &c.flags) {
        if flag.kind != FlagKind::Switch && !names.iter().any(|f| f.name == flag.name) {
            names.push(flag);
        }
    }
    let mut cases: Vec<(Vec<String>, String)> = Vec::new();
    let mut plain = Vec::new();
    for flag in names {
        let action = match hint_of(hints, &flag.name) {
            None => {
                plain.push(format!("--{}", flag.name));
                continue;
            }
            Some(Hint::File) => "            mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n".to_owned(),
            Some(Hint::Dir) => "            mapfile -t COMPREPLY < <(compgen -d -- \"$cur\")\n".to_owned(),
            Some(Hint::Words(words)) => format!(
                "            mapfile -t COMPREPLY < <(compgen -W '{}' -- \"$cur\")\n            declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions \"$cur\"\n",
                words.join(" ")
            ),
        };
        match cases.iter_mut().find(|(_, a)| *a == action) {
            Some((patterns, _)) => patterns.push(format!("--{}", flag.name)),
            None => cases.push((vec![format!("--{}", flag.name)], action)),
        }
    }
    if !plain.is_empty() {
        cases.push((plain, String::new()));
    }
    cases
        .into_iter()
        .map(|(patterns, action)| (patterns.join(" | "), action))
        .collect()
}

/// True when the command's first positional argument is a file.
fn takes_file(command: &CommandSpec, hints: Hints) -> bool {
    command
        .positionals
        .first()
        .is_some_and(|p| hint_of(hints, p) == Some(Hint::File))
}

fn bash_words(command: &CommandSpec, extra: &[String]) -> String {
    let mut words: Vec<String> = extra.to_vec();
    words.extend(command.flags.iter().map(|f| format!("--{}", f.name)));
    words.push("--help".into());
    words.join(" ")
}

/// Text inside a zsh `'...[help]'` spec.
fn zsh_text(text: &str) -> String {
    text.replace('\'', "'\\''")
        .replace('[', "\\[")
        .replace(']', "\\]")
        .replace(':', "\\:")
}

fn zsh_flag(flag: &FlagSpec, hints: Hints) -> String {
    let repeat = if flag.kind == FlagKind::Repeated {
        "*"
    } else {
        ""
    };
    let value = match (flag.kind, hint_of(hints, &flag.name)) {
        (FlagKind::Switch, _) => String::new(),
        (_, Some(Hint::File)) => format!(":{}:_files", flag.name),
        (_, Some(Hint::Dir)) => format!(":{}:_files -/", flag.name),
        (_, Some(Hint::Words(words))) => format!(":{}:({})", flag.name, words.join(" ")),
        (_, None) => format!(":{}: ", flag.name),
    };
    format!(
        "'{repeat}--{}[{}]{}'",
        flag.name,
        zsh_text(&flag.help),
        zsh_text_value(&value)
    )
}

/// A zsh value spec keeps its colons; only quotes need escaping.
fn zsh_text_value(value: &str) -> String {
    value.replace('\'', "'\\''")
}

fn zsh(program: &str, commands: &[CommandSpec], hints: Hints) -> String {
    let func = format!("_{}", program.replace('-', "_"));
    let mut out = format!("#compdef {program}\n{}", header(program, "zsh"));
    let root = top(commands);
    let specs =
        |c: &CommandSpec| -> Vec<String> { c.flags.iter().map(|f| zsh_flag(f, hints)).collect() };
    let _ = write!(
        out,
        "\n{func}() {{\n    local line state\n    _arguments -C \\\n"
    );
    for spec in specs(root) {
        let _ = writeln!(out, "        {spec} \\");
    }
    if root.subcommands.is_empty() {
        out.push_str("        '--help[display usage information]'\n}\n");
    } else {
        out.push_str("        '--help[display usage information]' \\\n        '1: :->command' \\\n        '*:: :->args'\n    case $state in\n        command)\n            local -a commands\n            commands=(\n");
        for command in commands.iter().filter(|c| c.path.len() == 1) {
            let _ = writeln!(
                out,
                "                '{}:{}'",
                command.path[0],
                zsh_text(&command.about)
            );
        }
        out.push_str("            )\n            _describe command commands ;;\n        args)\n            case $line[1] in\n");
        for command in commands.iter().filter(|c| c.path.len() == 1) {
            let _ = write!(
                out,
                "                {})\n                    _arguments \\\n",
                command.path[0]
            );
            for spec in specs(command) {
                let _ = writeln!(out, "                        {spec} \\");
            }
            if takes_file(command, hints) {
                let _ = writeln!(
                    out,
                    "                        '1:{}:_files' \\",
                    command.positionals[0]
                );
            }
            out.push_str("                        '--help[display usage information]' ;;\n");
        }
        out.push_str("            esac ;;\n    esac\n}\n");
    }
    let _ = writeln!(out, "\n{func} \"$@\"");
    out
}

/// Text inside a fish `'...'` string.
fn fish_text(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

fn fish(program: &str, commands: &[CommandSpec], hints: Hints) -> String {
    let mut out = header(program, "fish");
    let root = top(commands);
    let subs = root.subcommands.join(" ");
    for command in commands {
        let condition = match command.path.first() {
            None if subs.is_empty() => String::new(),
            None => " -n 'not __fish_seen_subcommand_from ".to_owned() + &subs + "'",
            Some(sub) => format!(" -n '__fish_seen_subcommand_from {sub}'"),
        };
        if takes_file(command, hints) {
            let _ = writeln!(out, "complete -c {program}{condition} -F");
        }
        if command.path.len() == 1 {
            let _ = writeln!(
                out,
                "complete -c {program} -f -n 'not __fish_seen_subcommand_from {subs}' -a {} -d '{}'",
                command.path[0],
                fish_text(&command.about)
            );
        }
        for flag in &command.flags {
            let value = match (flag.kind, hint_of(hints, &flag.name)) {
                (FlagKind::Switch, _) => String::new(),
                (_, Some(Hint::File)) => " -r -F".into(),
                (_, Some(Hint::Dir)) => " -r -a '(__fish_complete_directories)'".into(),
                (_, Some(Hint::Words(words))) => format!(" -x -a '{}'", words.join(" ")),
                (_, None) => " -x".into(),
            };
            let _ = writeln!(
                out,
                "complete -c {program}{condition} -l {}{value} -d '{}'",
                flag.name,
                fish_text(&flag.help)
            );
        }
    }
    out
}

/// Where the project's completion scripts are kept.
fn completions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("completions")
}

/// The environment variable that makes [`check_completions`] write the
/// scripts instead of comparing them (`scripts/completions` sets it).
pub const WRITE_COMPLETIONS: &str = "ONIONS_WRITE_COMPLETIONS";

/// Checks that `completions/` holds exactly the scripts [`script`] writes
/// for `T`, in every shell; with [`WRITE_COMPLETIONS`] set, writes them.
/// For the binaries' own tests.
pub fn check_completions<T: argh::TopLevelCommand>(
    program: &str,
    hints: Hints,
) -> Result<(), Vec<String>> {
    let commands = describe::<T>().map_err(|e| vec![e])?;
    let mut problems = unknown_hints(&commands, hints);
    for shell in Shell::ALL {
        let path = completions_dir().join(shell.file_name(program));
        let want = script(shell, program, &commands, hints);
        if std::env::var_os(WRITE_COMPLETIONS).is_some() {
            if let Err(e) = std::fs::write(&path, &want) {
                problems.push(format!("{}: {e}", path.display()));
            }
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(have) if have == want => {}
            Ok(_) => problems.push(format!(
                "{} differs from what the flags give: run scripts/completions",
                path.display()
            )),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Hints for flags (or positional arguments) the program does not have.
fn unknown_hints(commands: &[CommandSpec], hints: Hints) -> Vec<String> {
    let known = |name: &str| {
        commands.iter().any(|c| {
            c.flags.iter().any(|f| f.name == name) || c.positionals.iter().any(|p| p == name)
        })
    };
    hints
        .iter()
        .filter(|(name, _)| !known(name))
        .map(|(name, _)| format!("a hint for --{name}, which no command takes"))
        .collect()
}

/// Checks that `man/PROGRAM.1` names every flag of `T` (as `\-\-name`) and
/// documents, as an option item (`.TP` then `.B`/`.BI \-\-name`), no flag
/// `T` lacks. For the binaries' own tests.
pub fn check_man_page<T: argh::TopLevelCommand>(program: &str) -> Result<(), Vec<String>> {
    let commands = describe::<T>().map_err(|e| vec![e])?;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("man")
        .join(format!("{program}.1"));
    let page =
        std::fs::read_to_string(&path).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    let known = |name: &str| {
        commands
            .iter()
            .flat_map(|c| &c.flags)
            .any(|f| f.name == name)
    };
    let mut problems = Vec::new();
    for flag in commands.iter().flat_map(|c| &c.flags) {
        let spelled = format!("\\-\\-{}", flag.name.replace('-', "\\-"));
        if !page.contains(&spelled) {
            problems.push(format!("--{} is not in {}", flag.name, path.display()));
        }
    }
    let lines: Vec<&str> = page.lines().collect();
    for pair in lines.windows(2) {
        if pair[0] != ".TP" {
            continue;
        }
        let Some(rest) = pair[1]
            .strip_prefix(".BI \\-\\-")
            .or_else(|| pair[1].strip_prefix(".B \\-\\-"))
        else {
            continue;
        };
        let name = rest
            .split([' ', '"'])
            .next()
            .unwrap_or_default()
            .replace("\\-", "-");
        if !known(&name) {
            problems.push(format!(
                "{} documents --{name}, which {program} does not take",
                path.display()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELP: &str =
        "Usage: prog claim [--config <config>] --key <key> [--sub <sub...>] [--direct] [--] <name>

Make a record for NAME. Then send it.

Positional Arguments:
  name              the registered name

Options:
  --config          read flags from FILE
  --key             the service's key, from its
                    HiddenServiceDir
  --sub             a subdomain (repeatable)
  --direct          connect directly
  --help, help      display usage information
";

    #[test]
    fn help_text_gives_names_kinds_and_joined_help() {
        let spec = parse_help(&["claim".into()], HELP).unwrap();
        assert_eq!(spec.about, "Make a record for NAME");
        let got: Vec<(&str, FlagKind, &str)> = spec
            .flags
            .iter()
            .map(|f| (f.name.as_str(), f.kind, f.help.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("config", FlagKind::Single, "read flags from FILE"),
                (
                    "key",
                    FlagKind::Single,
                    "the service's key, from its HiddenServiceDir"
                ),
                ("sub", FlagKind::Repeated, "a subdomain (repeatable)"),
                ("direct", FlagKind::Switch, "connect directly"),
            ]
        );
    }

    #[test]
    fn scripts_quote_what_their_shell_needs() {
        let spec = parse_help(&[], &HELP.replace("prog claim", "prog")).unwrap();
        let hints: Hints = &[("key", Hint::File)];
        let zsh = script(Shell::Zsh, "prog", std::slice::from_ref(&spec), hints);
        assert!(
            zsh.contains("'--key[the service'\\''s key, from its HiddenServiceDir]:key:_files'"),
            "{zsh}"
        );
        assert!(
            zsh.contains("'*--sub[a subdomain (repeatable)]:sub: '"),
            "{zsh}"
        );
        let fish = script(Shell::Fish, "prog", std::slice::from_ref(&spec), hints);
        assert!(
            fish.contains("complete -c prog -l key -r -F -d 'the service\\'s key"),
            "{fish}"
        );
        let bash = script(Shell::Bash, "prog", &[spec], hints);
        assert!(
            bash.contains("--config --key --sub --direct --help"),
            "{bash}"
        );
        assert!(
            bash.contains("--key)\n            mapfile -t COMPREPLY < <(compgen -f"),
            "{bash}"
        );
    }
}
