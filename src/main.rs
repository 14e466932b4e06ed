//! The `imgopt` binary: parse, run, print the error chain once, exit.

use std::io::{IsTerminal, Write};

use imgopt::error::{exit_code_for, is_broken_pipe, ExitCode};
use tracing_subscriber::EnvFilter;

fn main() {
    let code = match imgopt::cli::parse() {
        Ok(options) => {
            init_tracing(options.verbosity);
            finish(run(options))
        }
        Err(error) => finish(Err(error)),
    };
    std::process::exit(code.code());
}

fn run(options: imgopt::cli::Options) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(imgopt::app::run(options));
    // Do not wait for blocking work still under way (packing a large
    // context when Ctrl-C came): its output is an unlinked temporary
    // file, and the user asked to stop.
    runtime.shutdown_background();
    result
}

/// Prints an error with its causes, once, and picks the exit code.
fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::Success,
        Err(error) => {
            // Best effort: a closed or full stderr must not panic.
            let _ = writeln!(std::io::stderr(), "error: {error:#}");
            exit_code_for(&error)
        }
    }
}

/// `-vv` turns on debug tracing for imgopt; `IMGOPT_LOG` takes a full
/// filter (e.g. `IMGOPT_LOG=bollard=trace`), as `RUST_LOG` would.
fn init_tracing(verbosity: u8) {
    let default = match verbosity {
        0 | 1 => "warn",
        2 => "imgopt=debug,warn",
        _ => "imgopt=trace,bollard=debug,info",
    };
    let filter = EnvFilter::try_from_env("IMGOPT_LOG")
        .unwrap_or_else(|_| EnvFilter::new(default))
        // bollard traces request bodies, which carry containers' env
        // (verify's database URLs): never below debug, whatever asked.
        .add_directive("bollard=debug".parse().expect("a valid directive"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .without_time()
        .init();
}
