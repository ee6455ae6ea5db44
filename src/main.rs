//! The `fdb` command. Exit codes: 0 success (for verify: same person), 1 a partial failure
//! (for verify: different people), 2 an error.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::args::Cli::parse();
    let json = args.json;
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if json {
                println!("{}", serde_json::json!({ "error": err.to_string() }));
            } else {
                eprintln!("fdb: {err}");
            }
            ExitCode::from(2)
        }
    }
}
