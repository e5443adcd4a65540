//! The `configsnap` binary: parse flags and check what they name (exit 64 on a usage error,
//! with one line, before anything is created on disk), set up logging, run.

use clap::Parser;
use configsnap::cli::{Args, EXIT_USAGE};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) if error.use_stderr() => {
            eprintln!("configsnap: {} (see --help)", one_line(&error.to_string()));
            return ExitCode::from(EXIT_USAGE);
        }
        Err(help_or_version) => {
            let _ = help_or_version.print();
            return ExitCode::SUCCESS;
        }
    };
    let config = match args.into_config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("configsnap: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(error) = configsnap::cli::preflight::check(&config) {
        eprintln!("configsnap: {error}");
        return ExitCode::from(EXIT_USAGE);
    }
    configsnap::telemetry::init_with_level(config.admin.log_format, config.admin.log_level);
    // One async thread is plenty for a sidecar; blocking file work has its own pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .thread_keep_alive(std::time::Duration::from_secs(10))
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("configsnap: failed to start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(configsnap::run::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = error.exit_code();
            // A configuration error is one line for the operator; anything else is also logged.
            if code != EXIT_USAGE {
                tracing::error!(%error, "configsnap stopped");
            }
            eprintln!("configsnap: {error}");
            ExitCode::from(code)
        }
    }
}

/// clap's multi-line usage error as one line: its message and details, without the usage
/// block and the `--help` hint.
fn one_line(rendered: &str) -> String {
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .collect();
    let joined = parts.join(" ");
    joined.strip_prefix("error: ").unwrap_or(&joined).to_owned()
}
