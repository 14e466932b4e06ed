//! The one module that talks to the Docker engine.
//!
//! It connects the way the docker CLI does (honouring `DOCKER_HOST`, and TLS
//! when `DOCKER_TLS_VERIFY` is set), negotiates the API version, streams
//! build contexts, and turns the engine's answers into plain data
//! ([`ImageFacts`]) that the rest of imgopt reads without an engine. Every
//! function here is async; nothing outside this module and the command
//! runner in `app` needs tokio.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Duration;

use anyhow::Context;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::BuildImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use tokio_util::io::ReaderStream;

pub use registry::{RegistryLogin, TransferEvent, TransferFailed};

use crate::config::BuildArgs;
use crate::context::ContextTar;
use crate::error::BuildFailed;

mod containers;
mod registry;
pub use containers::{
    ContainerFacts, ContainerSpec, ContainerStatus, Healthcheck,
    ImageHealthcheck, Kind, Labelled,
};

/// Where the engine is when `DOCKER_HOST` is not set.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How long one request may wait for its response headers. A build answers
/// only after the whole context is uploaded, so this is generous.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(900);

/// How long a request other than a build may take.
const QUICK_TIMEOUT: Duration = Duration::from_secs(120);

/// How long to wait for the engine to answer the first request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// How many lines of a failed build's log to show.
const LOG_TAIL_LINES: usize = 15;

/// How many characters of one log line a failure report shows.
const LOG_TAIL_WIDTH: usize = 300;

/// A connection to a Docker engine.
pub struct Engine {
    docker: Docker,
    host: String,
}

/// The engine could not be reached, or did not answer like an engine.
#[derive(Debug, thiserror::Error)]
pub struct EngineUnreachable {
    /// The address that was tried.
    pub host: String,
    /// What went wrong, as the client library said it.
    pub reason: String,
}

impl fmt::Display for EngineUnreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot reach the Docker engine at {} ({}); start it, or \
             point DOCKER_HOST at it (Docker Desktop: \
             DOCKER_HOST=unix://$HOME/.docker/run/docker.sock)",
            self.host, self.reason
        )
    }
}

/// An image reference that the engine does not have.
#[derive(Debug, thiserror::Error)]
#[error("image '{reference}' is not in the engine's image store")]
pub struct ImageNotFound {
    /// The reference that was looked up.
    pub reference: String,
}

/// What the engine says about itself. Serialized as the `engine` object
/// of every JSON document.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EngineInfo {
    /// The address imgopt connected to.
    pub host: String,
    /// The engine's version, e.g. `20.10.24+dfsg1`.
    pub version: String,
    /// The API version both sides speak after negotiation, e.g. `1.41`.
    pub api_version: String,
}

/// One build for the engine to run.
pub struct BuildRequest<'a> {
    /// The packed build context, with the Dockerfile inside it.
    pub context: ContextTar,
    /// The tag to give the image.
    pub tag: &'a str,
    /// Build arguments, as `--build-arg` passes them.
    pub build_args: &'a BuildArgs,
    /// The stage to build, when not the last one.
    pub target: Option<&'a str>,
    /// Build without the engine's layer cache.
    pub no_cache: bool,
}

/// What a running build reports, line by line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BuildEvent<'a> {
    /// A new step started: `Step 3/9 : RUN npm ci`.
    Step(&'a str),
    /// Any other line of the build's output.
    Output(&'a str),
}

/// An image as the engine describes it, reduced to what imgopt uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageFacts {
    /// The content-addressed ID, `sha256:...`.
    pub id: String,
    /// The tags that point at it.
    pub tags: Vec<String>,
    /// The size in bytes, as `docker images` shows it.
    pub size: u64,
    /// The layer digests of its root filesystem, lowest first.
    pub layers: Vec<String>,
    /// Its history, newest first as the engine returns it.
    pub history: Vec<HistoryEntry>,
    /// The user it runs as; empty means root.
    pub user: String,
    /// The healthcheck test, when the image has one that is not `NONE`.
    pub healthcheck: Option<Vec<String>>,
    /// Its environment, `KEY=value` strings.
    pub env: Vec<String>,
    /// When it was created (RFC 3339), when the engine says.
    pub created: Option<String>,
}

/// One row of an image's history.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryEntry {
    /// The image ID of this row, or `<missing>` for layers built elsewhere.
    pub id: String,
    /// The instruction that created it.
    pub created_by: String,
    /// The bytes it added.
    pub size: u64,
}

impl Engine {
    /// Connects to the engine named by `DOCKER_HOST` (the local socket by
    /// default) and negotiates the API version with it.
    pub async fn connect() -> anyhow::Result<Engine> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let unreachable =
            |reason: String| EngineUnreachable { host: host.clone(), reason };

        if let Some((scheme, _)) = host.split_once("://") {
            if !["unix", "tcp", "http", "https"].contains(&scheme) {
                return Err(unreachable(format!(
                    "imgopt speaks to engines over unix:// and tcp:// \
                     (with TLS when DOCKER_TLS_VERIFY is set), not {scheme}://"
                ))
                .into());
            }
        }
        // Connect to the host read above: bollard's own defaults would
        // read DOCKER_HOST again, and treat an empty one as an address.
        let docker = Docker::connect_with_host(&host)
            .map_err(|e| unreachable(describe(&e)))?
            .with_timeout(REQUEST_TIMEOUT);
        let docker =
            tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version())
                .await
                .map_err(|_| unreachable("no answer within 20 s".into()))?
                .map_err(|e| unreachable(describe(&e)))?;

        tracing::debug!(
            host,
            api = %docker.client_version(),
            "connected to the engine"
        );
        Ok(Engine { docker, host })
    }

    /// The engine's version and the negotiated API version.
    pub async fn info(&self) -> anyhow::Result<EngineInfo> {
        let version = quick("version", self.docker.version())
            .await?
            .context("failed to ask the engine for its version")?;
        Ok(EngineInfo {
            host: self.host.clone(),
            version: version.version.unwrap_or_default(),
            api_version: self.docker.client_version().to_string(),
        })
    }

    /// Runs a build and returns the new image's ID. Every line of output
    /// goes to `on_event` as it arrives. A failed build is a
    /// [`BuildFailed`] error naming the failing step.
    ///
    /// Dropping the returned future (on Ctrl-C) closes the connection, and
    /// the engine then cancels the build; `forcerm` makes it remove the
    /// build's intermediate containers whatever the outcome.
    pub async fn build(
        &self,
        name: &str,
        request: BuildRequest<'_>,
        mut on_event: impl FnMut(BuildEvent<'_>),
    ) -> anyhow::Result<String> {
        let build_args: HashMap<String, String> = request
            .build_args
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let options = BuildImageOptionsBuilder::new()
            .dockerfile(&request.context.dockerfile)
            .t(request.tag)
            .buildargs(&build_args)
            .target(request.target.unwrap_or_default())
            .nocache(request.no_cache)
            .rm(true)
            .forcerm(true)
            .build();
        let file = tokio::fs::File::from_std(request.context.file);
        let body = bollard::body_try_stream(ReaderStream::new(file));

        let mut log = BuildLog::default();
        let mut image_id = None;
        let mut stream = self.docker.build_image(options, None, Some(body));
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(error) => return Err(log.failure(name, error)),
            };
            if let Some(text) = info.stream.as_deref() {
                for line in text.lines() {
                    log.push(line, &mut on_event);
                }
            }
            if let Some(status) = info.status.as_deref() {
                log.push(status, &mut on_event);
            }
            if let Some(id) = info.aux.and_then(|aux| aux.id) {
                image_id = Some(id);
            }
        }

        match image_id {
            Some(id) => Ok(id),
            // Older engines end a good build with a line, not an ID.
            None if log.succeeded() => {
                Ok(self.inspect_id(request.tag).await?)
            }
            None => Err(BuildFailed {
                name: name.to_string(),
                step: log.step.clone(),
                message: "the build ended without producing an image".into(),
                log_tail: log.tail.into(),
            }
            .into()),
        }
    }

    /// Describes an image by reference or ID.
    pub async fn inspect(
        &self,
        reference: &str,
    ) -> anyhow::Result<ImageFacts> {
        let image = quick("inspect", self.docker.inspect_image(reference))
            .await?
            .map_err(|e| not_found_or(e, reference))?;
        let id = image.id.clone().unwrap_or_default();
        let history = quick("history", self.docker.image_history(&id))
            .await?
            .with_context(|| {
                format!("failed to read the history of image '{reference}'")
            })?;

        let config = image.config.unwrap_or_default();
        let healthcheck = config
            .healthcheck
            .and_then(|h| h.test)
            .filter(|test| !test.is_empty() && test[0] != "NONE");
        Ok(ImageFacts {
            id,
            tags: image.repo_tags.unwrap_or_default(),
            size: image.size.unwrap_or(0).max(0) as u64,
            layers: image.root_fs.and_then(|fs| fs.layers).unwrap_or_default(),
            history: history
                .into_iter()
                .map(|row| HistoryEntry {
                    id: row.id,
                    created_by: row.created_by,
                    size: row.size.max(0) as u64,
                })
                .collect(),
            user: config.user.unwrap_or_default(),
            healthcheck,
            env: config.env.unwrap_or_default(),
            created: image.created.map(|c| c.to_string()),
        })
    }

    /// The ID of an image, or `None` when the engine does not have it.
    pub async fn image_id(
        &self,
        reference: &str,
    ) -> anyhow::Result<Option<String>> {
        match quick("inspect", self.docker.inspect_image(reference)).await? {
            Ok(image) => Ok(image.id),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(e).with_context(|| {
                format!("failed to inspect image '{reference}'")
            }),
        }
    }

    async fn inspect_id(&self, reference: &str) -> anyhow::Result<String> {
        self.image_id(reference).await?.ok_or_else(|| {
            ImageNotFound { reference: reference.into() }.into()
        })
    }
}

/// The lines of a running build that a failure report needs.
#[derive(Default)]
struct BuildLog {
    step: Option<String>,
    tail: VecDeque<String>,
}

impl BuildLog {
    fn push(&mut self, line: &str, on_event: &mut impl FnMut(BuildEvent<'_>)) {
        let line = printable(line.trim_end());
        let line = line.as_str();
        if line.is_empty() {
            return;
        }
        if line.starts_with("Step ") {
            self.step = Some(line.to_string());
            self.tail.clear();
            on_event(BuildEvent::Step(line));
        } else {
            on_event(BuildEvent::Output(line));
        }
        if self.tail.len() == LOG_TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(shorten(line, LOG_TAIL_WIDTH));
    }

    fn succeeded(&self) -> bool {
        self.tail.iter().any(|l| l.starts_with("Successfully built "))
    }

    /// Turns an error from the build stream into the right kind of error:
    /// the engine's verdict on the Dockerfile is a failed build; losing the
    /// engine is imgopt not doing its job.
    fn failure(&self, name: &str, error: BollardError) -> anyhow::Error {
        let message = match error {
            BollardError::DockerStreamError { error } => error,
            BollardError::DockerResponseServerError { message, .. } => message,
            other => {
                return anyhow::Error::new(other)
                    .context(format!("the build of '{name}' was cut off"));
            }
        };
        BuildFailed {
            name: name.to_string(),
            step: self.step.clone(),
            message,
            log_tail: self.tail.iter().cloned().collect(),
        }
        .into()
    }
}

/// The line without terminal control sequences: build output is the
/// build's, and must not clear or recolour the user's terminal.
fn printable(line: &str) -> String {
    line.chars()
        .map(|c| if c.is_control() && c != '\t' { '\u{fffd}' } else { c })
        .collect()
}

/// At most `width` characters, with a note of what was cut.
fn shorten(line: &str, width: usize) -> String {
    match line.char_indices().nth(width) {
        Some((cut, _)) => format!(
            "{}… ({} more characters)",
            &line[..cut],
            line[cut..].chars().count()
        ),
        None => line.to_string(),
    }
}

fn status_of(error: &BollardError) -> Option<u16> {
    match error {
        BollardError::DockerResponseServerError { status_code, .. } => {
            Some(*status_code)
        }
        _ => None,
    }
}

fn not_found_or(error: BollardError, reference: &str) -> anyhow::Error {
    if status_of(&error) == Some(404) {
        ImageNotFound { reference: reference.into() }.into()
    } else {
        anyhow::Error::new(error)
            .context(format!("failed to inspect image '{reference}'"))
    }
}

/// The client library's error with its sources, on one line.
fn describe(error: &BollardError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        // Client libraries often repeat their cause in their own message.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Bounds a quick request (version, inspect, history) by
/// [`QUICK_TIMEOUT`], so an engine that stops answering is reported
/// instead of waited on for the long build timeout.
async fn quick<T>(
    what: &str,
    request: impl std::future::Future<Output = Result<T, BollardError>>,
) -> anyhow::Result<Result<T, BollardError>> {
    tokio::time::timeout(QUICK_TIMEOUT, request).await.map_err(|_| {
        anyhow::anyhow!(
            "the engine did not answer within {} s ({what})",
            QUICK_TIMEOUT.as_secs()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_log_remembers_the_last_step_and_a_bounded_tail() {
        let mut log = BuildLog::default();
        let mut steps = Vec::new();
        let mut record = |e: BuildEvent<'_>| {
            if let BuildEvent::Step(s) = e {
                steps.push(s.to_string());
            }
        };

        log.push("Step 1/2 : FROM x", &mut record);
        log.push("Step 2/2 : RUN make", &mut record);
        for i in 0..40 {
            log.push(&format!("line {i}"), &mut record);
        }

        assert_eq!(steps, ["Step 1/2 : FROM x", "Step 2/2 : RUN make"]);
        assert_eq!(log.step.as_deref(), Some("Step 2/2 : RUN make"));
        assert_eq!(log.tail.len(), LOG_TAIL_LINES);
        assert_eq!(log.tail.back().unwrap(), "line 39");
    }

    #[test]
    fn an_error_in_the_stream_is_a_failed_build_at_its_step() {
        let mut log = BuildLog::default();
        log.push("Step 4/7 : RUN npm ci", &mut |_| {});
        log.push("npm ERR! missing package-lock.json", &mut |_| {});

        let error = log.failure(
            "multi-stage",
            BollardError::DockerStreamError {
                error: "returned a non-zero code: 1".into(),
            },
        );

        let failed = error.downcast_ref::<BuildFailed>().unwrap();
        assert_eq!(failed.step.as_deref(), Some("Step 4/7 : RUN npm ci"));
        assert_eq!(failed.log_tail.len(), 2);
    }

    #[test]
    fn log_lines_lose_control_codes_and_long_ones_are_cut() {
        let mut log = BuildLog::default();
        let mut seen = Vec::new();
        log.push("\u{1b}[2Jcleared", &mut |e| {
            if let BuildEvent::Output(l) = e {
                seen.push(l.to_string());
            }
        });
        log.push(&"x".repeat(1000), &mut |_| {});

        assert_eq!(seen, ["\u{fffd}[2Jcleared"]);
        assert_eq!(
            log.tail.back().unwrap(),
            &format!("{}… (700 more characters)", "x".repeat(300))
        );
    }

    #[test]
    fn a_lost_connection_is_not_a_failed_build() {
        let log = BuildLog::default();

        let error = log.failure("week2", BollardError::RequestTimeoutError);

        assert!(error.downcast_ref::<BuildFailed>().is_none());
        assert!(error.to_string().contains("cut off"));
    }
}
