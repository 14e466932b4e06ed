//! The `imgopt` binary: parse, run, print the error chain once, exit.

use std::io::{IsTerminal, Write};

use imgopt::error::{exit_code_for, is_broken_pipe, ExitCode};
use tracing::Level;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::prelude::*;
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
/// filter (e.g. `IMGOPT_LOG=imgopt=trace,hyper=debug`), as `RUST_LOG`
/// would. bollard's debug and trace output stays off (see below).
fn init_tracing(verbosity: u8) {
    let default = match verbosity {
        0 | 1 => "warn",
        2 => "imgopt=debug,warn",
        _ => "imgopt=trace,info",
    };
    let filter = EnvFilter::try_from_env("IMGOPT_LOG")
        .unwrap_or_else(|_| EnvFilter::new(default));
    // bollard logs request and response bodies at debug and trace, and
    // they carry containers' environment (verify's database URLs): only
    // its info and above pass, whatever the filter asks for.
    let no_bodies = filter_fn(|meta| {
        !(*meta.level() > Level::INFO && meta.target().starts_with("bollard"))
    });
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(|| BestEffort(std::io::stderr()))
        .with_ansi(colour)
        .without_time()
        .with_filter(filter)
        .with_filter(no_bodies);
    tracing_subscriber::registry().with(layer).init();
}

/// A writer that drops what it cannot write: a log line is never worth a
/// panic or a failed command when stderr is closed or full.
struct BestEffort<W>(W);

impl<W: Write> Write for BestEffort<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}
