//! The `fdb` command. Exit codes (the table in `fdb --help` and the README): 0 done (verify: the
//! same person; search: identified; check: healthy), 1 a negative answer (verify: different
//! people; search: unknown, low quality included; a photo with no usable face; check: damage;
//! repair: faces lost), 2 an error.

mod cli;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

fn main() -> ExitCode {
    // Asked before parsing, so that argument errors are JSON too.
    let json = std::env::args_os().skip(1).any(|a| a == "--json");
    let args = match cli::args::Cli::try_parse() {
        Ok(args) => args,
        Err(e) if json && !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let message = e.render().to_string();
            let first = message.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
            println!("{}", serde_json::json!({ "error": first, "kind": "arguments", "usage": message }));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if json {
                println!("{}", serde_json::json!({ "error": err.to_string(), "kind": err.kind() }));
            } else {
                eprintln!("fdb: {err}");
            }
            ExitCode::from(2)
        }
    }
}
