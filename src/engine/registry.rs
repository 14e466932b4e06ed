//! Engine calls that move images between the engine and a registry: tag,
//! push, untag, and reading one file out of an image.
//!
//! Registry logins travel to the engine in the `X-Registry-Auth` header,
//! which bollard builds from a `DockerCredentials`; they are made here from
//! a [`Credential`] at the last moment and never logged. A push
//! reports failure inside its stream, so a stream that ends without the
//! final digest is a failure too: nothing half-pushed is called pushed.

use std::io::Read;

use anyhow::Context;
use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, PushImageOptionsBuilder,
    RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures_util::StreamExt;

use super::{describe, status_of, Engine};
use crate::credentials::Credential;

/// The label on the short-lived containers that [`Engine::read_file`]
/// creates, so a sweep finds any that an interrupted run left behind.
pub const READER_LABEL: &str = "imgopt.file-reader";

/// A login for one registry, as the engine is to receive it.
pub struct RegistryLogin<'a> {
    /// The credential.
    pub credential: &'a Credential,
    /// The registry's server key, e.g. `127.0.0.1:5000`.
    pub server: &'a str,
}

/// One status message of a push: `Pushing`, `Pushed`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferEvent<'a> {
    /// The engine's status text.
    pub status: &'a str,
    /// Bytes moved and total, when the engine says.
    pub progress: Option<(i64, i64)>,
}

/// A push that the engine or registry refused or could not do.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TransferFailed {
    /// The engine's message, which carries the registry's words.
    pub message: String,
}

impl Engine {
    /// Gives the image `source` the extra name `repository:tag`.
    pub async fn tag(
        &self,
        source: &str,
        repository: &str,
        tag: &str,
    ) -> anyhow::Result<()> {
        let options =
            TagImageOptionsBuilder::new().repo(repository).tag(tag).build();
        self.docker.tag_image(source, Some(options)).await.with_context(|| {
            format!("failed to tag '{source}' as '{repository}:{tag}'")
        })
    }

    /// Removes one name of an image; the image stays while other names or
    /// containers use it. A name that is already gone is not an error.
    pub async fn untag(&self, reference: &str) -> anyhow::Result<()> {
        let options = RemoveImageOptionsBuilder::new().build();
        match self.docker.remove_image(reference, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(e)
                .with_context(|| format!("failed to remove '{reference}'")),
        }
    }

    /// Pushes `repository:tag` and returns the digest the registry stored
    /// it under. Each status message goes to `on_event`. The login, when
    /// given, is sent to the engine only.
    pub async fn push(
        &self,
        repository: &str,
        tag: &str,
        login: Option<RegistryLogin<'_>>,
        mut on_event: impl FnMut(TransferEvent<'_>),
    ) -> anyhow::Result<String> {
        let options = PushImageOptionsBuilder::new().tag(tag).build();
        let mut stream = self.docker.push_image(
            repository,
            Some(options),
            login.map(engine_credentials),
        );
        let mut digest = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(transfer_error)?;
            let Some(status) = info.status.as_deref() else {
                continue;
            };
            if let Some(found) = crate::base::digest_in_status(status) {
                digest = Some(found);
            }
            let progress = info
                .progress_detail
                .and_then(|d| Some((d.current?, d.total?)));
            on_event(TransferEvent { status, progress });
        }
        digest.ok_or_else(|| {
            TransferFailed {
                message: "the push ended without the registry's digest, \
                          so the image was not stored"
                    .into(),
            }
            .into()
        })
    }

    /// Reads one regular file out of an image, through a container that
    /// is created (never started) and removed again; `None` when the image
    /// has no such file.
    pub async fn read_file(
        &self,
        image: &str,
        path: &str,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            // Images without a CMD cannot be created; this is never run.
            cmd: Some(vec!["imgopt-file-reader".into()]),
            labels: Some([(READER_LABEL.to_string(), "1".to_string())].into()),
            network_disabled: Some(true),
            ..Default::default()
        };
        let id = self
            .docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await
            .with_context(|| {
                format!("failed to create a container of '{image}'")
            })?
            .id;

        // Known limit: Ctrl-C between create and remove drops this future
        // and leaves the (never started) container; it carries
        // READER_LABEL, and `base build` sweeps such leftovers at start.
        let read = self.archive_file(&id, path).await;
        let removed = self.remove_container(&id).await;
        let file = read?;
        removed?;
        Ok(file)
    }

    /// Removes the file-reader containers that an interrupted run left.
    pub async fn sweep_file_readers(&self) -> anyhow::Result<()> {
        let filters = [("label", vec![READER_LABEL])].into();
        let options =
            bollard::query_parameters::ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build();
        let stale = self
            .docker
            .list_containers(Some(options))
            .await
            .context("failed to list leftover containers")?;
        for container in stale {
            if let Some(id) = container.id {
                tracing::debug!(id, "removing a leftover file reader");
                self.remove_container(&id).await?;
            }
        }
        Ok(())
    }

    async fn archive_file(
        &self,
        container: &str,
        path: &str,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        let options =
            DownloadFromContainerOptionsBuilder::new().path(path).build();
        let mut stream =
            self.docker.download_from_container(container, Some(options));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => archive.extend_from_slice(&bytes),
                Err(e) if status_of(&e) == Some(404) => return Ok(None),
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("failed to read '{path}' from the image")
                    })
                }
            }
        }
        first_file(&archive)
            .with_context(|| format!("failed to unpack '{path}'"))
    }
}

/// The contents of the first regular file in a tar archive.
fn first_file(archive: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type().is_file() {
            let mut data = Vec::new();
            entry.read_to_end(&mut data)?;
            return Ok(Some(data));
        }
    }
    Ok(None)
}

fn engine_credentials(login: RegistryLogin<'_>) -> DockerCredentials {
    let server = Some(login.server.to_string());
    match login.credential {
        Credential::Password { username, password } => DockerCredentials {
            username: Some(username.clone()),
            password: Some(password.clone()),
            serveraddress: server,
            ..Default::default()
        },
        Credential::IdentityToken(token) => DockerCredentials {
            identitytoken: Some(token.clone()),
            serveraddress: server,
            ..Default::default()
        },
    }
}

/// An error from a push stream: the engine's words when it gave
/// some, the connection's otherwise.
fn transfer_error(error: BollardError) -> anyhow::Error {
    match error {
        BollardError::DockerStreamError { error } => {
            TransferFailed { message: error }.into()
        }
        BollardError::DockerResponseServerError { message, .. } => {
            TransferFailed { message }.into()
        }
        other => anyhow::anyhow!(
            "the connection to the engine broke off: {}",
            describe(&other)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_regular_file_of_an_archive_is_read() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "packages.txt", &b"a 1\n\n"[..])
            .unwrap();
        let archive = builder.into_inner().unwrap();

        assert_eq!(first_file(&archive).unwrap().unwrap(), b"a 1\n\n");
        assert_eq!(first_file(&[0u8; 1024]).unwrap(), None);
    }

    #[test]
    fn a_login_reaches_the_engine_with_its_server() {
        let credential = Credential::Password {
            username: "alice".into(),
            password: "pw".into(),
        };

        let sent = engine_credentials(RegistryLogin {
            credential: &credential,
            server: "127.0.0.1:5000",
        });

        assert_eq!(sent.username.as_deref(), Some("alice"));
        assert_eq!(sent.serveraddress.as_deref(), Some("127.0.0.1:5000"));
    }
}
