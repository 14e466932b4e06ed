//! Progress on stderr, kept apart from the results on stdout.
//!
//! On a terminal a long build shows one live status line (a spinner, the
//! elapsed time and the current step). Elsewhere (CI logs, pipes) the same
//! events are plain lines. `-v` adds every line of the build's own output;
//! `-vv` debug tracing is set up separately, in the binary.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::BuildEvent;

/// Reports what a command is doing, on stderr.
pub struct Reporter {
    verbose: bool,
    live: Option<ProgressBar>,
}

impl Reporter {
    /// A reporter that draws a live line when stderr is a terminal.
    /// `verbosity` counts `-v` flags.
    pub fn new(verbosity: u8) -> Reporter {
        Reporter::with_live(verbosity, std::io::stderr().is_terminal())
    }

    /// A reporter that always prints plain lines.
    pub fn plain(verbosity: u8) -> Reporter {
        Reporter::with_live(verbosity, false)
    }

    fn with_live(verbosity: u8, live: bool) -> Reporter {
        Reporter { verbose: verbosity > 0, live: live.then(spinner) }
    }

    /// Announces a long task, e.g. a build.
    pub fn start(&self, message: &str) {
        match &self.live {
            Some(bar) => {
                if self.verbose {
                    bar.println(message);
                }
                bar.reset_elapsed();
                bar.set_message(message.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            None => say(message),
        }
    }

    /// Shows one event of a running build of `name`.
    pub fn build_event(&self, name: &str, event: BuildEvent<'_>) {
        match (event, &self.live) {
            (BuildEvent::Step(step), Some(bar)) => {
                bar.set_message(format!("{name}: {step}"));
                if self.verbose {
                    bar.println(step);
                }
            }
            (BuildEvent::Step(step), None) => say(&format!("{name}: {step}")),
            (BuildEvent::Output(line), _) if self.verbose => self.line(line),
            (BuildEvent::Output(_), _) => {}
        }
    }

    /// Updates the live status line without starting a new task; plain
    /// output shows nothing, so CI logs get only the lines that stay.
    pub fn status(&self, message: &str) {
        if let Some(bar) = &self.live {
            bar.set_message(message.to_string());
        }
    }

    /// Prints a line that stays, above the live status if there is one.
    pub fn line(&self, message: &str) {
        match &self.live {
            Some(bar) => bar.println(message),
            None => say(message),
        }
    }

    /// Prints a warning.
    pub fn warn(&self, message: &str) {
        self.line(&format!("warning: {message}"));
    }

    /// Ends the current task with a line that stays.
    pub fn done(&self, message: &str) {
        if let Some(bar) = &self.live {
            bar.disable_steady_tick();
            bar.set_message("");
            bar.tick();
        }
        self.line(message);
    }

    /// Removes the live line, e.g. before results are printed.
    pub fn clear(&self) {
        if let Some(bar) = &self.live {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Writes a line to stderr, best effort: progress is never worth a panic
/// or a failed command when stderr is closed or full.
fn say(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

fn spinner() -> ProgressBar {
    let bar =
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}")
            .expect("the template is valid");
    bar.set_style(style);
    bar
}
