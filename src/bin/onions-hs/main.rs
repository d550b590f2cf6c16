//! `onions-hs`: the onion-service operator's tool. Claims a `.tor` name with
//! the service's own Tor key, hands it to another onion or gives it up,
//! checks record files, and looks names up.
//!
//! `args` defines the flags; `records` makes and sends records and
//! statements (claim, transfer, release); `lookup` asks servers; `check`
//! checks files offline (verify, evidence).

mod args;
mod check;
mod lookup;
mod records;

use args::{Args, Command, CLAIM_FLAGS};
use onions::cli::{self, ConfigScope};

fn main() {
    let args: Args = cli::parse_args_with_config(
        "onions-hs",
        &[ConfigScope {
            subcommand: Some("claim"),
            flags: CLAIM_FLAGS,
        }],
    );
    cli::run("onions-hs", || match args.command {
        Command::Claim(a) => records::claim(a),
        Command::Transfer(a) => records::transfer(a),
        Command::Release(a) => records::release(a),
        Command::Verify(a) => check::verify(a),
        Command::Lookup(a) => lookup::lookup(a),
        Command::Evidence(a) => check::evidence(a),
    });
}

#[cfg(test)]
mod tests {
    use onions::cli::complete::{check_completions, check_man_page, Hint, Hints};

    /// How the values of onions-hs's flags complete (see
    /// `onions::cli::complete`).
    const HINTS: Hints = &[
        ("config", Hint::File),
        ("key", Hint::File),
        ("out", Hint::File),
        ("state", Hint::File),
        ("transfer", Hint::File),
        ("file", Hint::File),
        ("socks", Hint::Words(&["127.0.0.1:9050", "127.0.0.1:9150"])),
        ("lifetime", Hint::Words(&["30", "7", "1"])),
    ];

    #[test]
    fn the_completions_are_generated_from_the_flags() {
        check_completions::<super::Args>("onions-hs", HINTS)
            .unwrap_or_else(|problems| panic!("{problems:#?}"));
    }

    #[test]
    fn the_man_page_documents_every_flag_and_no_other() {
        check_man_page::<super::Args>("onions-hs")
            .unwrap_or_else(|problems| panic!("{problems:#?}"));
    }

    #[test]
    fn the_config_flag_table_matches_the_flags() {
        onions::cli::check_flag_table::<super::Args>(&["claim"], super::CLAIM_FLAGS)
            .unwrap_or_else(|problems| panic!("{problems:#?}"));
    }
}
