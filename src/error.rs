//! The errors that decide an exit code, and the exit codes themselves.
//!
//! Every command follows one convention: 0 when it did its job and the thing
//! under test passed, 1 when the thing under test failed (a build, later a
//! budget or a health check), 2 when imgopt could not do its job (no engine,
//! bad configuration or arguments), 130 when the user interrupted it.
//! Errors travel as `anyhow::Error`; the few that change the exit code are
//! typed here, so [`exit_code_for`] can find them anywhere in the chain.

use std::fmt;

/// The process exit codes shared by every command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// The command did its job and everything under test passed.
    Success,
    /// The thing under test failed: a build, a budget, a health check.
    Failure,
    /// imgopt could not do its job: engine, configuration, arguments.
    Error,
    /// The user pressed Ctrl-C (SIGINT).
    Interrupted,
}

impl ExitCode {
    /// The number the process exits with.
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Error => 2,
            ExitCode::Interrupted => 130,
        }
    }
}

/// A build that the engine ran and that failed: the Dockerfile's fault,
/// not imgopt's, so it exits 1.
#[derive(Debug, thiserror::Error)]
pub struct BuildFailed {
    /// The image that was being built (a variant name or the base).
    pub name: String,
    /// The `Step N/M : ...` line of the failing step, when one started.
    pub step: Option<String>,
    /// The engine's error message.
    pub message: String,
    /// The last lines of the build log, oldest first.
    pub log_tail: Vec<String>,
}

impl fmt::Display for BuildFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "build of '{}' failed", self.name)?;
        if let Some(step) = &self.step {
            write!(f, " at {step}")?;
        }
        write!(f, ": {}", self.message.trim_end())?;
        if !self.log_tail.is_empty() {
            f.write_str("\nlast lines of the build log:")?;
            for line in &self.log_tail {
                write!(f, "\n  | {line}")?;
            }
        }
        Ok(())
    }
}

/// The user interrupted the command; whatever it created was cleaned up.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// The exit code for an error: the first typed error in its chain decides,
/// and anything untyped means imgopt could not do its job.
pub fn exit_code_for(error: &anyhow::Error) -> ExitCode {
    for cause in error.chain() {
        if cause.is::<Interrupted>() {
            return ExitCode::Interrupted;
        }
        if cause.is::<BuildFailed>() {
            return ExitCode::Failure;
        }
    }
    ExitCode::Error
}

/// Whether an error only says that stdout was closed early (`| head`),
/// which is not a failure of the command.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_build_failure_deep_in_the_chain_exits_one() {
        let err = anyhow::Error::new(BuildFailed {
            name: "week2".into(),
            step: Some("Step 3/5 : RUN false".into()),
            message: "returned a non-zero code: 1".into(),
            log_tail: vec![],
        })
        .context("failed to build the variants");

        assert_eq!(exit_code_for(&err), ExitCode::Failure);
    }

    #[test]
    fn an_interrupt_exits_130_and_anything_else_exits_two() {
        let interrupted = anyhow::Error::new(Interrupted);
        let other: anyhow::Result<()> =
            Err(anyhow::anyhow!("no engine")).context("connecting");

        assert_eq!(exit_code_for(&interrupted).code(), 130);
        assert_eq!(exit_code_for(&other.unwrap_err()).code(), 2);
    }

    #[test]
    fn a_build_failure_names_the_step_and_shows_the_log_tail() {
        let err = BuildFailed {
            name: "week2".into(),
            step: Some("Step 3/5 : RUN false".into()),
            message: "returned a non-zero code: 1".into(),
            log_tail: vec!["npm ERR! missing script".into()],
        };

        let text = err.to_string();

        assert!(text.contains("at Step 3/5 : RUN false"), "{text}");
        assert!(text.contains("  | npm ERR! missing script"), "{text}");
    }
}
