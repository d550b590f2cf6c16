//! Unit tests of config files (scanning, parsing, folding, naming the line
//! of a bad value) and of the witness policy flags.

use super::*;
use std::path::Path;

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
    .map_err(|e| e.to_string())
}

/// The command line `args` (words split at spaces) becomes with `file`
/// as my.conf.
fn expanded(args: &str, scopes: &[ConfigScope], file: &str) -> Vec<String> {
    let args: Vec<&str> = args.split(' ').collect();
    expand(&args, scopes, file).unwrap().args
}

/// The words of `text`, split at spaces.
fn words(text: &str) -> Vec<String> {
    strings(&text.split(' ').collect::<Vec<_>>())
}

fn error_of(file: &str) -> String {
    parse_config("my.conf", file.as_bytes(), FLAGS)
        .unwrap_err()
        .to_string()
}

#[test]
fn file_lines_become_flags_before_the_command_line() {
    let file =
        "# a comment\n\n  listen = 127.0.0.1:10054  \nstate-dir=/var/lib/x\r\ndirect = true\n";
    let from_file = "--listen 127.0.0.1:10054 --state-dir /var/lib/x --direct";
    assert_eq!(
        expanded("--config my.conf --quorum-key K", PROGRAM, file),
        words(&format!("{from_file} --config my.conf --quorum-key K"))
    );
}

#[test]
fn an_explicit_flag_wins() {
    let file = "listen = 127.0.0.1:1\nstate-dir = /a\n";
    assert_eq!(
        expanded("--listen 127.0.0.2:2 --config my.conf", PROGRAM, file),
        words("--state-dir /a --listen 127.0.0.2:2 --config my.conf")
    );
}

#[test]
fn one_repeatable_flag_on_the_command_line_drops_all_of_the_file() {
    let file = "quorum-key = A\nquorum-key = B\nlisten = x\n";
    assert_eq!(
        expanded("--config my.conf --quorum-key C", PROGRAM, file),
        words("--listen x --config my.conf --quorum-key C")
    );
    assert_eq!(
        expanded("--config my.conf", PROGRAM, file),
        words("--quorum-key A --quorum-key B --listen x --config my.conf")
    );
}

#[test]
fn a_value_that_looks_like_a_flag_is_not_taken_for_one() {
    // `--state-dir --listen` gives state-dir the value "--listen", so
    // the file's listen still applies.
    let file = "listen = x\n";
    assert_eq!(
        expanded("--state-dir --listen --config my.conf", PROGRAM, file),
        words("--listen x --state-dir --listen --config my.conf")
    );
}

#[test]
fn false_switches_are_left_out_and_quotes_are_removed() {
    let file = "direct = false\nstate-dir = \" spaced # not a comment \"\n";
    assert_eq!(
        expanded("--config my.conf", PROGRAM, file),
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
        expanded("claim --config my.conf", SUBCOMMAND, file),
        words("claim --key /k --sub www=a.onion --dry-run example.tor --config my.conf")
    );
    // A positional on the command line wins over the file's.
    assert_eq!(
        expanded("claim other.tor --config my.conf", SUBCOMMAND, file),
        words("claim --key /k --sub www=a.onion --dry-run other.tor --config my.conf")
    );
    // Other subcommands are left alone (argh refuses their --config).
    assert_eq!(
        expanded("verify f.json --config my.conf", SUBCOMMAND, file),
        words("verify f.json --config my.conf")
    );
}

#[test]
fn no_config_or_help_leaves_the_command_line_alone() {
    let unreadable =
        |_: &Path| -> std::io::Result<Vec<u8>> { Err(std::io::Error::other("must not be read")) };
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
    assert!(
        matches!(&error, ConfigError::Unreadable { file, .. } if file == "/no/such.conf"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("/no/such.conf: cannot read: "),
        "{error}"
    );
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
        parse_config("my.conf", b"listen = ok\nstate-dir = \xff\n", FLAGS)
            .unwrap_err()
            .to_string(),
        "my.conf:2: not UTF-8 text"
    );
    assert!(matches!(
        parse_config("my.conf", b"listen = ok\nlisten = again\n", FLAGS),
        Err(ConfigError::Line {
            line: 2,
            problem: LineProblem::SetTwice { first: 1, .. },
            ..
        })
    ));
    assert_eq!(
        parse_config("my.conf", b"name = -x\n", CLAIM)
            .unwrap_err()
            .to_string(),
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
        witness_policy("witness-key", &keys, Some(2))
            .unwrap_err()
            .to_string(),
        "--witnesses 2: only 1 --witness-key keys are given; give more keys or a lower --witnesses"
    );
    assert_eq!(
            witness_policy("witness-key", &[], Some(1)).unwrap_err().to_string(),
            "--witnesses 1: no --witness-key is given; give the key of each witness to trust, or leave --witnesses out"
        );
    assert_eq!(
            witness_policy("trust-witness", &["AAA".into()], None).unwrap_err().to_string(),
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
