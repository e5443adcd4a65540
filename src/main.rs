//! The `configsnap` binary: parse flags (exit 64 on a usage error, before any I/O), set up
//! logging, run.

use clap::Parser;
use configsnap::cli::{Args, EXIT_USAGE};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() { ExitCode::from(EXIT_USAGE) } else { ExitCode::SUCCESS };
        }
    };
    let config = match args.into_config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("configsnap: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    configsnap::telemetry::init_with_level(config.log_format, config.log_level);
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
            tracing::error!(%error, "configsnap stopped");
            eprintln!("configsnap: {error}");
            ExitCode::FAILURE
        }
    }
}
