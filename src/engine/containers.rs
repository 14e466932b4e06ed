//! Containers and networks: what `imgopt verify` asks of the engine.
//!
//! Creating, starting, stopping and removing containers and networks,
//! reading their state (health, exit code, published port, writable-layer
//! size, memory in use, processes, logs), and finding everything that
//! carries a label, so a run can remove what it made and sweep what killed
//! runs left behind. Removing something that is already gone counts as
//! done: cleanup may race the engine's own auto-removal or a second sweep.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig,
    NetworkCreateRequest, NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    StatsOptionsBuilder, StopContainerOptionsBuilder, TopOptionsBuilder,
};
use futures_util::StreamExt;

use super::{status_of, Engine};

/// A container to create.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// Its name, unique on the engine.
    pub name: String,
    /// The image to run.
    pub image: String,
    /// Extra environment, `KEY=value`.
    pub env: Vec<String>,
    /// Labels, e.g. the run id that cleanup looks for.
    pub labels: HashMap<String, String>,
    /// The network to join, with the names it answers to there.
    pub network: Option<(String, Vec<String>)>,
    /// A container port (TCP) to publish on 127.0.0.1 at a free port.
    pub publish: Option<u16>,
    /// A healthcheck to use instead of the image's.
    pub healthcheck: Option<Healthcheck>,
}

/// A healthcheck as the engine runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Healthcheck {
    /// The test, as in the image (`["CMD", "node", "healthcheck.js"]`).
    pub test: Vec<String>,
    /// Time between probes.
    pub interval: Duration,
    /// How long one probe may take.
    pub timeout: Option<Duration>,
    /// Failures in a row before the container is unhealthy.
    pub retries: Option<i64>,
    /// Grace period in which failures do not count.
    pub start_period: Option<Duration>,
}

/// What the engine says about a container now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerStatus {
    /// `created`, `running`, `exited`, ...
    pub state: String,
    /// Whether its main process runs.
    pub running: bool,
    /// The exit code, once it exited.
    pub exit_code: Option<i64>,
    /// `starting`, `healthy` or `unhealthy`; `None` without a healthcheck.
    pub health: Option<String>,
    /// The last healthcheck probes, oldest first: exit code and output.
    pub probes: Vec<(i64, String)>,
    /// Whether the kernel killed it for running out of memory.
    pub oom_killed: bool,
}

/// The healthcheck an image declares, if any, as the engine reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageHealthcheck {
    /// The test command.
    pub test: Vec<String>,
    /// The image's interval, when it sets one.
    pub interval: Option<Duration>,
    /// The image's probe timeout.
    pub timeout: Option<Duration>,
    /// The image's retries.
    pub retries: Option<i64>,
    /// The image's start period.
    pub start_period: Option<Duration>,
}

/// A container's configuration and size as it runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerFacts {
    /// Its environment, `KEY=value`.
    pub env: Vec<String>,
    /// The user it was configured to run as; empty means root.
    pub user: String,
    /// Bytes in its writable layer.
    pub size_rw: u64,
}

/// Something a run created, found by its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    /// A container or a network.
    pub kind: Kind,
    /// The engine's ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// All its labels.
    pub labels: HashMap<String, String>,
}

/// The kinds of things `verify` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A container.
    Container,
    /// A network.
    Network,
}

const NANOS_PER_MILLI: i64 = 1_000_000;

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Engine {
    /// Creates a bridge network with these labels; returns its ID.
    pub async fn create_network(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> anyhow::Result<String> {
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels.clone()),
            ..Default::default()
        };
        let created =
            self.docker.create_network(request).await.with_context(|| {
                format!("failed to create network '{name}'")
            })?;
        Ok(created.id)
    }

    /// Creates (does not start) a container; returns its ID.
    pub async fn create_container(
        &self,
        spec: &ContainerSpec,
    ) -> anyhow::Result<String> {
        let mut host = HostConfig::default();
        let mut exposed = None;
        if let Some(port) = spec.publish {
            let key = format!("{port}/tcp");
            // An empty host port: the engine picks a free one.
            let binding = PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(String::new()),
            };
            host.port_bindings =
                Some(HashMap::from([(key.clone(), Some(vec![binding]))]));
            exposed = Some(vec![key]);
        }
        let networking = spec.network.as_ref().map(|(network, aliases)| {
            host.network_mode = Some(network.clone());
            NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network.clone(),
                    EndpointSettings {
                        aliases: Some(aliases.clone()),
                        ..Default::default()
                    },
                )])),
            }
        });
        let healthcheck = spec.healthcheck.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: Some(nanos(h.interval)),
            timeout: h.timeout.map(nanos),
            retries: h.retries,
            start_period: h.start_period.map(nanos),
            // Known limit: engines before API 1.44 refuse a start
            // interval, so the shortened interval is used throughout.
            start_interval: None,
        });
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.clone()),
            labels: Some(spec.labels.clone()),
            exposed_ports: exposed,
            healthcheck,
            host_config: Some(host),
            networking_config: networking,
            ..Default::default()
        };
        let options =
            CreateContainerOptionsBuilder::new().name(&spec.name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| match status_of(&e) {
                Some(404) => anyhow::anyhow!(
                    "image '{}' is not in the engine's image store (build \
                     it, pull it, or run scripts/standins.sh)",
                    spec.image
                ),
                _ => anyhow::Error::new(e),
            })
            .with_context(|| {
                format!("failed to create container '{}'", spec.name)
            })?;
        Ok(created.id)
    }

    /// Starts a created or stopped container.
    pub async fn start_container(&self, id: &str) -> anyhow::Result<()> {
        self.docker
            .start_container(id, None::<StartContainerOptions>)
            .await
            .with_context(|| format!("failed to start container '{id}'"))
    }

    /// Stops a container, killing it after `grace`.
    pub async fn stop_container(
        &self,
        id: &str,
        grace: Duration,
    ) -> anyhow::Result<()> {
        let secs = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(secs).build();
        match self.docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(e) if status_of(&e) == Some(304) => Ok(()),
            Err(e) => Err(e)
                .with_context(|| format!("failed to stop container '{id}'")),
        }
    }

    /// The container's state, exit code and health.
    pub async fn container_status(
        &self,
        id: &str,
    ) -> anyhow::Result<ContainerStatus> {
        let inspect =
            self.docker.inspect_container(id, None).await.with_context(
                || format!("failed to inspect container '{id}'"),
            )?;
        let state = inspect.state.unwrap_or_default();
        let health = state.health.unwrap_or_default();
        Ok(ContainerStatus {
            state: state.status.map(|s| s.to_string()).unwrap_or_default(),
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code.filter(|_| {
                !state.running.unwrap_or(false)
                    && state
                        .finished_at
                        .as_deref()
                        .is_some_and(|f| !f.starts_with("0001-01-01"))
            }),
            health: health
                .status
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
            probes: health
                .log
                .unwrap_or_default()
                .into_iter()
                .map(|p| {
                    (
                        p.exit_code.unwrap_or(-1),
                        p.output.unwrap_or_default().trim().to_string(),
                    )
                })
                .collect(),
            oom_killed: state.oom_killed.unwrap_or(false),
        })
    }

    /// The host port on 127.0.0.1 that a container port is published on.
    pub async fn published_port(
        &self,
        id: &str,
        container_port: u16,
    ) -> anyhow::Result<u16> {
        let inspect =
            self.docker.inspect_container(id, None).await.with_context(
                || format!("failed to inspect container '{id}'"),
            )?;
        let key = format!("{container_port}/tcp");
        inspect
            .network_settings
            .and_then(|n| n.ports)
            .and_then(|mut ports| ports.remove(&key))
            .flatten()
            .into_iter()
            .flatten()
            .find_map(|b| b.host_port.and_then(|p| p.parse().ok()))
            .with_context(|| {
                format!(
                    "container '{id}' has no host port for {key} (is it \
                     running?)"
                )
            })
    }

    /// The container's environment, user and writable-layer size.
    pub async fn container_facts(
        &self,
        id: &str,
    ) -> anyhow::Result<ContainerFacts> {
        let options = InspectContainerOptionsBuilder::new().size(true).build();
        let inspect = self
            .docker
            .inspect_container(id, Some(options))
            .await
            .with_context(|| {
            format!("failed to inspect container '{id}'")
        })?;
        let config = inspect.config.unwrap_or_default();
        Ok(ContainerFacts {
            env: config.env.unwrap_or_default(),
            user: config.user.unwrap_or_default(),
            size_rw: inspect.size_rw.unwrap_or(0).max(0) as u64,
        })
    }

    /// The healthcheck an image declares, if it declares one that is not
    /// `NONE`.
    pub async fn image_healthcheck(
        &self,
        reference: &str,
    ) -> anyhow::Result<Option<ImageHealthcheck>> {
        let image =
            self.docker.inspect_image(reference).await.with_context(|| {
                format!("failed to inspect image '{reference}'")
            })?;
        let millis = |n: Option<i64>| {
            n.filter(|n| *n > 0).map(|n| {
                Duration::from_millis((n / NANOS_PER_MILLI).max(0) as u64)
            })
        };
        Ok(image
            .config
            .and_then(|c| c.healthcheck)
            .filter(|h| {
                h.test
                    .as_ref()
                    .is_some_and(|t| !t.is_empty() && t[0] != "NONE")
            })
            .map(|h| ImageHealthcheck {
                test: h.test.unwrap_or_default(),
                interval: millis(h.interval),
                timeout: millis(h.timeout),
                retries: h.retries.filter(|r| *r > 0),
                start_period: millis(h.start_period),
            }))
    }

    /// Memory in use by the container, as `docker stats` shows it: the
    /// cgroup's usage without the inactive page cache.
    pub async fn memory_in_use(&self, id: &str) -> anyhow::Result<u64> {
        let options =
            StatsOptionsBuilder::new().stream(false).one_shot(true).build();
        let stats = self
            .docker
            .stats(id, Some(options))
            .next()
            .await
            .context("the engine sent no stats")?
            .with_context(|| {
                format!("failed to read the stats of container '{id}'")
            })?;
        let memory = stats.memory_stats.unwrap_or_default();
        let usage = memory.usage.unwrap_or(0);
        let detail = memory.stats.unwrap_or_default();
        // cgroup v1 calls it total_inactive_file, v2 inactive_file.
        let cache = detail
            .get("total_inactive_file")
            .or_else(|| detail.get("inactive_file"))
            .copied()
            .unwrap_or(0);
        Ok(if cache < usage { usage - cache } else { usage })
    }

    /// The user IDs of the container's processes, as the engine's host
    /// sees them (`docker top`).
    pub async fn process_uids(&self, id: &str) -> anyhow::Result<Vec<u32>> {
        let options = TopOptionsBuilder::new().ps_args("-o pid,uid").build();
        let top =
            self.docker.top_processes(id, Some(options)).await.with_context(
                || format!("failed to list the processes of container '{id}'"),
            )?;
        let column = top
            .titles
            .unwrap_or_default()
            .iter()
            .position(|t| t == "UID")
            .context("the engine's process list has no UID column")?;
        Ok(top
            .processes
            .unwrap_or_default()
            .iter()
            .filter_map(|row| row.get(column)?.trim().parse().ok())
            .collect())
    }

    /// The last `lines` lines of a container's output, stdout and stderr.
    pub async fn container_log_tail(
        &self,
        id: &str,
        lines: usize,
    ) -> anyhow::Result<Vec<String>> {
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(id, Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.with_context(|| {
                format!("failed to read the logs of container '{id}'")
            })?;
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        Ok(text.lines().map(str::to_string).collect())
    }

    /// Every container and network carrying `label` (`key` or
    /// `key=value`), containers first.
    pub async fn list_labelled(
        &self,
        label: &str,
    ) -> anyhow::Result<Vec<Labelled>> {
        let filters = HashMap::from([("label", vec![label])]);
        let containers = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .with_context(|| {
                format!("failed to list containers labelled '{label}'")
            })?;
        let networks = self
            .docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .with_context(|| {
                format!("failed to list networks labelled '{label}'")
            })?;

        let mut found: Vec<Labelled> = containers
            .into_iter()
            .map(|c| Labelled {
                kind: Kind::Container,
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
                labels: c.labels.unwrap_or_default(),
            })
            .collect();
        found.extend(networks.into_iter().map(|n| Labelled {
            kind: Kind::Network,
            id: n.id.unwrap_or_default(),
            name: n.name.unwrap_or_default(),
            labels: n.labels.unwrap_or_default(),
        }));
        Ok(found)
    }

    /// Removes a container (running or not) with its anonymous volumes;
    /// one that is already gone counts as removed.
    pub async fn remove_container(&self, id: &str) -> anyhow::Result<()> {
        let options =
            RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            // 409: removal already in progress (a concurrent sweep).
            Err(e) if status_of(&e) == Some(409) => Ok(()),
            Err(e) => Err(e)
                .with_context(|| format!("failed to remove container '{id}'")),
        }
    }

    /// Removes a network; one that is already gone counts as removed.
    pub async fn remove_network(&self, id: &str) -> anyhow::Result<()> {
        match self.docker.remove_network(id).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(e)
                .with_context(|| format!("failed to remove network '{id}'")),
        }
    }

    /// Removes these things: containers first, since a network in use
    /// cannot go. Returns what could not be removed, with the reason.
    pub async fn remove_all(
        &self,
        things: &[Labelled],
    ) -> Vec<(Labelled, String)> {
        let mut failed = Vec::new();
        let containers = things.iter().filter(|t| t.kind == Kind::Container);
        let removals = containers
            .map(|t| async move { (t, self.remove_container(&t.id).await) });
        for (thing, result) in futures_util::future::join_all(removals).await {
            if let Err(e) = result {
                failed.push((thing.clone(), format!("{e:#}")));
            }
        }
        for thing in things.iter().filter(|t| t.kind == Kind::Network) {
            if let Err(e) = self.remove_network(&thing.id).await {
                failed.push((thing.clone(), format!("{e:#}")));
            }
        }
        failed
    }
}
