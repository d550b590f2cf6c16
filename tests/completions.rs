//! The completion scripts in `completions/` (generated from the flags by
//! `scripts/completions`; the binaries' own tests fail when they drift),
//! run in real shells: bash completes flags, subcommands, file names and
//! suggested values; zsh parses each script; fish completes the same flags
//! and values.

use std::path::PathBuf;
use std::process::Command;

fn script(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("completions")
        .join(file)
}

/// Runs `shell -c code` and returns its standard output; the shell must
/// exit 0.
fn run(shell: &str, code: &str) -> String {
    let out = Command::new(shell)
        .arg("-c")
        .arg(code)
        .output()
        .unwrap_or_else(|e| panic!("{shell} (scripts/setup installs it): {e}"));
    assert!(
        out.status.success(),
        "{shell} -c {code:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What bash's completion function of `program` offers for the words of
/// `line` (the last one being completed), without bash-completion.
fn bash_offers(program: &str, line: &[&str]) -> Vec<String> {
    let words: Vec<String> = line.iter().map(|w| format!("'{w}'")).collect();
    let code = format!(
        "source {}; COMP_WORDS=({}); COMP_CWORD={}; _{}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script(&format!("{program}.bash")).display(),
        words.join(" "),
        line.len() - 1,
        program.replace('-', "_")
    );
    run("bash", &code).lines().map(str::to_owned).collect()
}

/// What fish offers for the command line `line`.
fn fish_offers(program: &str, line: &str) -> Vec<String> {
    let code = format!(
        "source {}; complete -C '{line}'",
        script(&format!("{program}.fish")).display()
    );
    run("fish", &code)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn bash_completes_subcommands_flags_values_and_files() {
    let offers = bash_offers("onions-hs", &["onions-hs", ""]);
    for want in ["claim", "transfer", "release", "lookup", "--help"] {
        assert!(offers.contains(&want.to_owned()), "{want}: {offers:?}");
    }
    let offers = bash_offers("onions-hs", &["onions-hs", "claim", "--tr"]);
    assert_eq!(offers, ["--transfer"]);
    let offers = bash_offers("onions-hs", &["onions-hs", "transfer", "--"]);
    assert!(offers.contains(&"--to".to_owned()), "{offers:?}");
    assert!(
        !offers.contains(&"--sub".to_owned()),
        "claim's flag: {offers:?}"
    );
    let offers = bash_offers("onions-server", &["onions-server", "--role", ""]);
    assert_eq!(offers, ["quorum", "mirror"]);
    let offers = bash_offers("onions-server", &["onions-server", "status", "--j"]);
    assert_eq!(offers, ["--json"]);
    let cargo = script("../Cargo.to").display().to_string();
    let offers = bash_offers("onions-hs", &["onions-hs", "verify", &cargo]);
    assert_eq!(offers, [script("../Cargo.toml").display().to_string()]);
    let offers = bash_offers("onions-client", &["onions-client", "--log-level", "d"]);
    assert_eq!(offers, ["debug"]);
}

#[test]
fn zsh_parses_every_script() {
    for program in ["onions-server", "onions-client", "onions-hs"] {
        let file = script(&format!("_{program}"));
        run("zsh", &format!("zsh -n {}", file.display()));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with(&format!("#compdef {program}\n")), "{text}");
    }
}

#[test]
fn fish_completes_flags_and_values() {
    let offers = fish_offers("onions-hs", "onions-hs release --cool");
    assert_eq!(offers, ["--cooldown"]);
    let offers = fish_offers("onions-hs", "onions-hs ");
    assert!(offers.contains(&"transfer".to_owned()), "{offers:?}");
    let offers = fish_offers("onions-server", "onions-server --role ");
    assert_eq!(offers, ["mirror", "quorum"], "fish sorts them");
    let offers = fish_offers("onions-client", "onions-client --rel");
    assert_eq!(offers, ["--release"]);
}
