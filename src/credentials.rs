//! Registry credentials: found where Docker users keep them, never shown.
//!
//! `docker login` stores a login in the Docker config directory
//! (`$DOCKER_CONFIG`, else `~/.docker`) in `config.json`: as a base64
//! `auth` entry under `auths`, or in a credential helper named by
//! `credHelpers` (per registry) or `credsStore` (for all). The
//! `docker_credential` crate reads all three and runs the helpers; this
//! module adds what imgopt needs around it: a missing file or entry is "no
//! credentials" rather than an error, failures name the file, registry and
//! helper, and a [`Credential`] never prints its secret, not even through
//! `Debug`, so it cannot leak into logs by accident. A failing helper's
//! output is never echoed either: a broken helper may print the secret.
//!
//! A helper is a program that may hang (a locked keychain), so async
//! callers run [`Lookup::run`] off the runtime with [`helper_timeout`]
//! (`IMGOPT_CREDENTIAL_TIMEOUT`, 30 s by default) and race it against
//! Ctrl-C.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use docker_credential::{CredentialRetrievalError, DockerCredential};
use serde::Deserialize;

/// The key `docker login` uses for Docker Hub.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A login for one registry. Its `Debug` and `Display` hide the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password (or access token used as one).
    Password {
        /// The user name, which is not secret.
        username: String,
        /// The password.
        password: String,
    },
    /// An identity token from an OAuth login.
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Password { username, .. } => {
                write!(f, "Password {{ username: {username:?}, .. }}")
            }
            Credential::IdentityToken(_) => f.write_str("IdentityToken(..)"),
        }
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Password { username, .. } => {
                write!(f, "user '{username}'")
            }
            Credential::IdentityToken(_) => f.write_str("an identity token"),
        }
    }
}

/// A credential with where it came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The credential.
    pub credential: Credential,
    /// Where it was found, e.g. `auths in /root/.docker/config.json`.
    pub source: String,
}

/// The parts of `config.json` that name where a login is kept; the
/// crate reads the values, this only names the source in messages.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sources {
    #[serde(default)]
    auths: HashMap<String, serde_json::Value>,
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
}

/// The Docker config directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker"))
        })
}

/// The key a registry's login is stored under: its host (and port), or
/// Docker Hub's URL when there is no registry host.
pub fn server_key(registry: Option<&str>) -> String {
    match registry {
        None | Some("docker.io" | "index.docker.io") => DOCKER_HUB_KEY.into(),
        Some(host) => host.to_string(),
    }
}

/// Looks up the login for `registry` (a [`server_key`]) in the
/// `config.json` of `config_dir`. No file, no entry, or a helper that has
/// none is `Ok(None)`; an unreadable file or a failing helper is an error.
/// It may run a credential helper and wait for it: async callers use
/// [`Lookup::prepare`] and run [`Lookup::run`] off the runtime.
pub fn lookup(
    config_dir: &Path,
    registry: &str,
) -> anyhow::Result<Option<Found>> {
    match Lookup::prepare(config_dir, registry)? {
        Some(lookup) => lookup.run(),
        None => Ok(None),
    }
}

/// A lookup whose config file is read and whose source is known, before
/// any credential helper runs.
#[derive(Debug)]
pub struct Lookup {
    text: Vec<u8>,
    registry: String,
    source: String,
}

impl Lookup {
    /// Reads `config.json` in `config_dir`; `None` when there is none.
    /// Quick: runs no helper.
    pub fn prepare(
        config_dir: &Path,
        registry: &str,
    ) -> anyhow::Result<Option<Lookup>> {
        let path = config_dir.join("config.json");
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("failed to read '{}'", path.display())
                });
            }
        };
        let sources: Sources =
            serde_json::from_slice(&text).with_context(|| {
                format!(
                    "'{}' is not a valid Docker config file",
                    path.display()
                )
            })?;
        let source = sources.describe(registry, &path);
        Ok(Some(Lookup { text, registry: registry.to_string(), source }))
    }

    /// Where the login is looked up, e.g. `credential helper
    /// docker-credential-pass (credsStore in ...)`, for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Finds the login, running the credential helper if one is named.
    /// Blocks until the helper answers.
    pub fn run(self) -> anyhow::Result<Option<Found>> {
        let Lookup { text, registry, source } = self;
        let result = docker_credential::get_credential_from_reader(
            &text[..],
            &registry,
        );
        let credential = match result {
            Ok(DockerCredential::UsernamePassword(username, password)) => {
                Credential::Password { username, password }
            }
            Ok(DockerCredential::IdentityToken(token)) => {
                Credential::IdentityToken(token)
            }
            Err(CredentialRetrievalError::NoCredentialConfigured) => {
                return Ok(None);
            }
            Err(CredentialRetrievalError::HelperFailure {
                stderr,
                stdout,
                ..
            }) if helper_has_none(&stdout, &stderr) => {
                return Ok(None);
            }
            Err(error) => return Err(explain(error, &registry, &source)),
        };
        Ok(Some(Found { credential, source }))
    }

    /// The error for a helper that gave no answer within `waited`.
    pub fn timed_out(&self, waited: Duration) -> anyhow::Error {
        anyhow::anyhow!(
            "cannot read the login for registry '{0}' from {1}: it gave no \
             answer in {2}; check that the helper works (or run `docker \
             login {0}` again, or pass --username and --password-stdin); \
             {TIMEOUT_VAR} sets the wait in seconds",
            self.registry,
            self.source,
            humantime::format_duration(waited)
        )
    }
}

/// The environment variable that sets how long a credential helper may
/// take to answer, in seconds (fractions allowed); [`DEFAULT_TIMEOUT`]
/// when unset.
pub const TIMEOUT_VAR: &str = "IMGOPT_CREDENTIAL_TIMEOUT";

/// How long a credential helper may take when [`TIMEOUT_VAR`] is unset.
/// Helpers that ask for a passphrase or unlock a keychain take seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a credential helper may take: [`TIMEOUT_VAR`], read here
/// only, else [`DEFAULT_TIMEOUT`].
pub fn helper_timeout() -> anyhow::Result<Duration> {
    let value = std::env::var(TIMEOUT_VAR).ok();
    parse_timeout(value.as_deref().filter(|v| !v.trim().is_empty()))
}

fn parse_timeout(value: Option<&str>) -> anyhow::Result<Duration> {
    let Some(value) = value else {
        return Ok(DEFAULT_TIMEOUT);
    };
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .with_context(|| {
            format!(
                "{TIMEOUT_VAR} is '{value}'; it takes a number of seconds \
                 above 0, e.g. 30 or 0.5"
            )
        })
}

/// Reads a password from `input` as `docker login --password-stdin` does:
/// the whole input, without its trailing newline.
pub fn from_password_stdin(
    username: &str,
    mut input: impl Read,
) -> anyhow::Result<Credential> {
    let mut password = String::new();
    input
        .read_to_string(&mut password)
        .context("failed to read the password from stdin")?;
    let password = password.trim_end_matches(['\n', '\r']).to_string();
    if username.trim().is_empty() {
        bail!("--username is empty");
    }
    if password.is_empty() {
        bail!("--password-stdin read an empty password");
    }
    Ok(Credential::Password { username: username.to_string(), password })
}

impl Sources {
    /// Where the crate will look for `registry`'s login, in its order.
    fn describe(&self, registry: &str, path: &Path) -> String {
        if let Some(helper) =
            self.cred_helpers.get(registry).filter(|h| !h.is_empty())
        {
            return format!(
                "credential helper docker-credential-{helper} (credHelpers \
                 in {})",
                path.display()
            );
        }
        // `docker login` with a store leaves an empty entry in `auths`.
        let has_login = self.auths.get(registry).is_some_and(|entry| {
            ["auth", "username", "identitytoken"]
                .iter()
                .any(|key| entry.get(key).is_some())
        });
        if has_login {
            return format!("auths in {}", path.display());
        }
        match &self.creds_store {
            Some(store) => format!(
                "credential helper docker-credential-{store} (credsStore in \
                 {})",
                path.display()
            ),
            None => format!("auths in {}", path.display()),
        }
    }
}

/// Whether a helper's failure only says it holds no login for the server,
/// as the docker-credential-helpers programs word it.
fn helper_has_none(stdout: &str, stderr: &str) -> bool {
    let text = format!("{stdout} {stderr}").to_lowercase();
    text.contains("credentials not found")
}

fn explain(
    error: CredentialRetrievalError,
    registry: &str,
    source: &str,
) -> anyhow::Error {
    let why = match error {
        CredentialRetrievalError::HelperCommunicationError => {
            "the helper could not be run; is it installed and on PATH?".into()
        }
        CredentialRetrievalError::MalformedHelperResponse => {
            "the helper's answer is not the JSON a helper gives".into()
        }
        CredentialRetrievalError::HelperFailure { helper, .. } => {
            // Its output is not shown: a broken helper may print the
            // secret there. The crate keeps no exit status to show.
            format!(
                "{helper} exited with a failure status (its output is not \
                 shown, as it may hold the secret); check the helper by \
                 hand"
            )
        }
        CredentialRetrievalError::CredentialDecodingError => {
            "its `auth` value is not base64 of `user:password`".into()
        }
        CredentialRetrievalError::CredentialMismatchError => {
            "its `auth` value disagrees with its username and password".into()
        }
        CredentialRetrievalError::ConfigNotFound
        | CredentialRetrievalError::ConfigReadError
        | CredentialRetrievalError::NoCredentialConfigured => {
            "the file could not be read".into()
        }
    };
    anyhow::anyhow!(
        "cannot read the login for registry '{registry}' from {source}: \
         {why} (run `docker login {registry}` again, or pass --username and \
         --password-stdin)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/docker-config")
    }

    /// Puts the fixture credential helper on PATH, once per test process.
    /// It only prepends a directory, so nothing else on PATH changes.
    fn with_fixture_helper() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let bin = fixtures().join("bin");
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![bin];
            dirs.extend(std::env::split_paths(&path));
            let joined = std::env::join_paths(dirs).unwrap();
            // SAFETY-free in edition 2021; std guards its env with a lock.
            std::env::set_var("PATH", joined);
        });
    }

    fn password(username: &str, password: &str) -> Credential {
        Credential::Password {
            username: username.into(),
            password: password.into(),
        }
    }

    #[test]
    fn a_base64_auth_entry_gives_user_and_password() {
        let found = lookup(&fixtures().join("auth"), "127.0.0.1:5000")
            .unwrap()
            .unwrap();

        assert_eq!(found.credential, password("alice", "s3cret:with:colons"));
        assert!(found.source.starts_with("auths in "), "{}", found.source);
    }

    #[test]
    fn an_auth_entry_for_another_registry_is_no_credential() {
        let found = lookup(&fixtures().join("auth"), "registry.example:443");

        assert_eq!(found.unwrap(), None);
    }

    #[test]
    fn a_creds_store_helper_answers_for_every_registry() {
        with_fixture_helper();

        let found = lookup(&fixtures().join("creds-store"), "127.0.0.1:5000")
            .unwrap()
            .unwrap();

        assert_eq!(found.credential, password("store-user", "store-pass"));
        assert!(
            found.source.contains("docker-credential-imgopt-fixture"),
            "{}",
            found.source
        );
    }

    #[test]
    fn a_helper_without_a_login_for_the_registry_is_no_credential() {
        with_fixture_helper();

        let found = lookup(&fixtures().join("creds-store"), "other.example");

        assert_eq!(found.unwrap(), None);
    }

    #[test]
    fn cred_helpers_are_chosen_per_registry_before_auths() {
        with_fixture_helper();
        let dir = fixtures().join("cred-helpers");

        let helped = lookup(&dir, "127.0.0.1:5000").unwrap().unwrap();
        let plain = lookup(&dir, "plain.example").unwrap().unwrap();

        assert_eq!(helped.credential, password("store-user", "store-pass"));
        assert!(helped.source.contains("credHelpers"), "{}", helped.source);
        assert_eq!(plain.credential, password("bob", "hunter2"));
    }

    #[test]
    fn a_helper_that_is_not_installed_is_named_in_the_error() {
        let err = lookup(&fixtures().join("missing-helper"), "127.0.0.1:5000")
            .unwrap_err()
            .to_string();

        assert!(err.contains("docker-credential-imgopt-absent"), "{err}");
        assert!(err.contains("on PATH"), "{err}");
    }

    #[test]
    fn a_failing_helper_is_named_but_its_output_is_not_shown() {
        with_fixture_helper();

        let err = lookup(&fixtures().join("leaky-helper"), "127.0.0.1:5000")
            .unwrap_err();
        let text = format!("{err:#}");

        assert!(!text.contains("leaked-pw-7d1e"), "{text}");
        assert!(text.contains("docker-credential-imgopt-leaky"), "{text}");
        assert!(text.contains("failure status"), "{text}");
        assert!(text.contains("docker login 127.0.0.1:5000"), "{text}");
    }

    #[test]
    fn a_lookup_names_its_helper_before_running_it() {
        let lookup =
            Lookup::prepare(&fixtures().join("hanging-helper"), "h:1")
                .unwrap()
                .unwrap();

        let err = lookup.timed_out(Duration::from_millis(1500)).to_string();

        assert!(err.contains("docker-credential-imgopt-hang"), "{err}");
        assert!(err.contains("no answer in 1s 500ms"), "{err}");
        assert!(err.contains(TIMEOUT_VAR), "{err}");
    }

    #[test]
    fn the_helper_timeout_takes_seconds_above_zero() {
        assert_eq!(parse_timeout(None).unwrap(), DEFAULT_TIMEOUT);
        assert_eq!(
            parse_timeout(Some(" 0.5 ")).unwrap(),
            Duration::from_millis(500)
        );
        for bad in ["0", "-1", "ten", "inf", "NaN"] {
            let err = parse_timeout(Some(bad)).unwrap_err().to_string();
            assert!(err.contains(TIMEOUT_VAR), "{bad}: {err}");
        }
    }

    #[test]
    fn a_missing_config_file_is_no_credential() {
        let found =
            lookup(&fixtures().join("does-not-exist"), "127.0.0.1:5000");

        assert_eq!(found.unwrap(), None);
    }

    #[test]
    fn a_broken_config_file_is_an_error_naming_it() {
        let err =
            lookup(&fixtures().join("broken"), "127.0.0.1:5000").unwrap_err();

        assert!(format!("{err:#}").contains("broken/config.json"), "{err:#}");
    }

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let login = password("alice", "s3cret");
        let token = Credential::IdentityToken("tok-123".into());

        for text in [
            format!("{login:?}"),
            format!("{login}"),
            format!("{token:?}"),
            format!("{token}"),
        ] {
            assert!(!text.contains("s3cret"), "{text}");
            assert!(!text.contains("tok-123"), "{text}");
        }
    }

    #[test]
    fn password_stdin_drops_the_trailing_newline_only() {
        let login = from_password_stdin("alice", &b" pa ss\n"[..]).unwrap();

        assert_eq!(login, password("alice", " pa ss"));
        assert!(from_password_stdin("alice", &b"\n"[..]).is_err());
    }

    #[test]
    fn docker_hub_has_its_own_server_key() {
        assert_eq!(server_key(None), DOCKER_HUB_KEY);
        assert_eq!(server_key(Some("docker.io")), DOCKER_HUB_KEY);
        assert_eq!(server_key(Some("127.0.0.1:5000")), "127.0.0.1:5000");
    }
}
