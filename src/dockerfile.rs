//! Dockerfiles as plain data: global ARGs, stages and what each stage
//! declares, and the base image a build starts from.
//!
//! Parsing (continuations, heredocs, parser directives, stages) is left to
//! the `parse-dockerfile` crate. What Docker does after parsing is ours:
//! splitting `ARG` and `ENV` into names and values, expanding variables in
//! `FROM` with the shell-like rules of Docker's lexer, and following stage
//! references to the image a build is really based on. The types hold no
//! borrowed parser state so that later features (a linter, `init`) can keep
//! and reuse them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context as _, Result};

const UTF8_BOM: &str = "\u{feff}";

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    global_args: Vec<ArgDecl>,
    stages: Vec<Stage>,
    escape: char,
}

/// One name declared by an `ARG` instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The variable's name.
    pub name: String,
    /// The default as written (quotes and `$` references kept), if any.
    pub default: Option<String>,
    /// 1-based line of the `ARG` instruction.
    pub line: usize,
}

/// One build stage: a `FROM` and what follows it up to the next `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// 0-based position, as `COPY --from=0` counts.
    pub index: usize,
    /// The name after `AS`, as written.
    pub name: Option<String>,
    /// The image reference as written, before variable expansion.
    pub from: String,
    /// The `--platform` flag's value as written.
    pub platform: Option<String>,
    /// 1-based line of the `FROM` instruction.
    pub line: usize,
    /// ARGs declared inside the stage (not in scope for its `FROM`).
    pub args: Vec<ArgDecl>,
    /// The last `USER` of the stage, as written.
    pub user: Option<String>,
    /// Whether the stage's last `HEALTHCHECK` defines a check (`NONE`
    /// turns an inherited one off).
    pub healthcheck: bool,
    /// `ENV` values set in the stage, last one per name, with quotes
    /// removed but `$` references left unexpanded.
    pub env: BTreeMap<String, String>,
}

/// What a build starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseImage {
    /// An image reference, to pull or find locally.
    Image(String),
    /// `FROM scratch`: no base image at all.
    Scratch,
}

/// Why a base image could not be resolved, for callers that branch on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// `--target` names no stage.
    #[error("no stage named '{target}' (stages: {})", list_or_none(.stages))]
    UnknownTarget {
        /// The requested target.
        target: String,
        /// The named stages, in order.
        stages: Vec<String>,
    },
    /// A `FROM` that expands to nothing, usually an ARG without a value.
    #[error(
        "base image of stage {stage} expands to an empty name{}",
        hint(.arg.as_deref())
    )]
    EmptyBaseName {
        /// 0-based index of the stage.
        stage: usize,
        /// The first variable that expanded to nothing, if any.
        arg: Option<String>,
    },
    /// A `${...}` the lexer rejects.
    #[error("bad variable substitution in '{text}': {reason}")]
    BadSubstitution {
        /// The text being expanded.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none is named".to_string()
    } else {
        names.join(", ")
    }
}

fn hint(arg: Option<&str>) -> String {
    match arg {
        Some(arg) => format!(
            ": declare a default for ARG {arg} or pass --build-arg {arg}=..."
        ),
        None => String::new(),
    }
}

impl Dockerfile {
    /// Parses the text of a Dockerfile.
    pub fn parse(text: &str) -> Result<Dockerfile> {
        // parse-dockerfile drops a BOM too; dropping it first keeps its
        // byte offsets valid for our line numbers.
        let text = text.strip_prefix(UTF8_BOM).unwrap_or(text);
        let parsed =
            parse_dockerfile::parse(text).context("invalid Dockerfile")?;
        let escape = parsed
            .parser_directives
            .escape
            .as_ref()
            .map_or('\\', |directive| directive.value.value);
        let line_of = |offset: usize| line_at(text, offset);

        let global_args = parsed
            .global_args()
            .flat_map(|arg| {
                parse_arg(
                    &arg.arguments.value,
                    escape,
                    line_of(arg.arg.span.start),
                )
            })
            .collect();
        let stages = parsed
            .stages()
            .enumerate()
            .map(|(index, stage)| read_stage(index, &stage, escape, &line_of))
            .collect();
        Ok(Dockerfile { global_args, stages, escape })
    }

    /// Reads and parses the Dockerfile at `path`.
    pub fn read(path: &Path) -> Result<Dockerfile> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("failed to read dockerfile '{}'", path.display())
        })?;
        Dockerfile::parse(&text).with_context(|| {
            format!("failed to parse dockerfile '{}'", path.display())
        })
    }

    /// The stages, in order; never empty.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The ARGs declared before the first `FROM`, in order.
    pub fn global_args(&self) -> &[ArgDecl] {
        &self.global_args
    }

    /// Every ARG name declared anywhere (global and in stages).
    pub fn declared_args(&self) -> BTreeSet<String> {
        let in_stages = self.stages.iter().flat_map(|s| &s.args);
        self.global_args
            .iter()
            .chain(in_stages)
            .map(|arg| arg.name.clone())
            .collect()
    }

    /// The image the final stage (or `target`) is built on.
    ///
    /// `FROM` is expanded with the global ARG defaults, overridden by
    /// `build_args`; only global ARGs are in scope for `FROM`, as in
    /// Docker. A `FROM` naming an earlier stage (case-insensitively) is
    /// followed until an external image or `scratch`. Errors are
    /// [`ResolveError`]s inside the `anyhow::Error`.
    pub fn base_image(
        &self,
        build_args: &BTreeMap<String, String>,
        target: Option<&str>,
    ) -> Result<BaseImage> {
        let scope = self.global_scope(build_args)?;
        let mut index = match target {
            Some(target) => self.stage_named(target)?,
            None => self.stages.len().saturating_sub(1),
        };
        loop {
            let stage = self
                .stages
                .get(index)
                .context("a Dockerfile without stages has no base image")?;
            let image = self.expand_from(stage, &scope)?;
            if image == "scratch" {
                return Ok(BaseImage::Scratch);
            }
            // The classic builder only knows stages built before this one.
            let earlier = self.stages[..index].iter().rposition(|s| {
                s.name.as_ref().is_some_and(|n| n.eq_ignore_ascii_case(&image))
            });
            match earlier {
                Some(earlier) => index = earlier,
                None => return Ok(BaseImage::Image(image)),
            }
        }
    }

    /// The index of the stage called `name`, ignoring case as Docker does.
    fn stage_named(&self, name: &str) -> Result<usize> {
        let found = self.stages.iter().position(|stage| {
            stage.name.as_ref().is_some_and(|n| n.eq_ignore_ascii_case(name))
        });
        found.ok_or_else(|| {
            let stages =
                self.stages.iter().filter_map(|s| s.name.clone()).collect();
            ResolveError::UnknownTarget { target: name.to_string(), stages }
                .into()
        })
    }

    /// Global ARGs with values: a build arg wins over the default, and
    /// a default may use the global ARGs above it.
    fn global_scope(
        &self,
        build_args: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        let mut scope = BTreeMap::new();
        for arg in &self.global_args {
            if let Some(value) = build_args.get(&arg.name) {
                scope.insert(arg.name.clone(), value.clone());
            } else if let Some(default) = &arg.default {
                let value = expand(default, self.escape, &scope)
                    .map(|expanded| expanded.text)
                    .with_context(|| {
                        format!(
                            "failed to expand the default of ARG {}",
                            arg.name
                        )
                    })?;
                scope.insert(arg.name.clone(), value);
            } else {
                // The classic builder treats an ARG without a value as
                // unset, so `${X-default}` falls back to the default.
                scope.remove(&arg.name);
            }
        }
        Ok(scope)
    }

    fn expand_from(
        &self,
        stage: &Stage,
        scope: &BTreeMap<String, String>,
    ) -> Result<String> {
        let expanded =
            expand(&stage.from, self.escape, scope).with_context(|| {
                format!(
                    "failed to expand the base image of stage {}",
                    stage.index
                )
            })?;
        if expanded.text.is_empty() {
            return Err(ResolveError::EmptyBaseName {
                stage: stage.index,
                arg: expanded.empty_vars.into_iter().next(),
            }
            .into());
        }
        Ok(expanded.text)
    }
}

/// 1-based line number of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
}

fn read_stage(
    index: usize,
    stage: &parse_dockerfile::Stage<'_, '_>,
    escape: char,
    line_of: &dyn Fn(usize) -> usize,
) -> Stage {
    use parse_dockerfile::{HealthcheckArguments, Instruction};

    let from = stage.from;
    let platform = from
        .options
        .iter()
        .find(|flag| flag.name.value.eq_ignore_ascii_case("platform"))
        .and_then(|flag| flag.value.as_ref())
        .map(|value| value.value.to_string());
    let mut out = Stage {
        index,
        name: from.as_.as_ref().map(|(_, name)| name.value.to_string()),
        from: from.image.value.to_string(),
        platform,
        line: line_of(from.from.span.start),
        args: Vec::new(),
        user: None,
        healthcheck: false,
        env: BTreeMap::new(),
    };
    for instruction in stage.instructions {
        match instruction {
            Instruction::Arg(arg) => out.args.extend(parse_arg(
                &arg.arguments.value,
                escape,
                line_of(arg.arg.span.start),
            )),
            Instruction::Env(env) => {
                out.env.extend(parse_env(&env.arguments.value, escape));
            }
            Instruction::User(user) => {
                out.user = Some(user.arguments.value.to_string());
            }
            Instruction::Healthcheck(check) => {
                out.healthcheck = matches!(
                    check.arguments,
                    HealthcheckArguments::Cmd { .. }
                );
            }
            _ => {}
        }
    }
    out
}

/// Splits `ARG a=1 b` into declarations, as Docker's parser does.
fn parse_arg(text: &str, escape: char, line: usize) -> Vec<ArgDecl> {
    split_words(text, escape)
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((name, default)) => ArgDecl {
                name: name.to_string(),
                default: Some(default.to_string()),
                line,
            },
            None => ArgDecl { name: word, default: None, line },
        })
        .collect()
}

/// Splits `ENV a=1 b="x y"` (or the legacy `ENV a x y`) into pairs with
/// quotes removed and `$` references kept.
fn parse_env(text: &str, escape: char) -> Vec<(String, String)> {
    let words = split_words(text, escape);
    let legacy = words.first().is_some_and(|word| !word.contains('='));
    if legacy {
        // `ENV name the rest of the line`: one variable.
        let trimmed = text.trim_start();
        let split = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let (name, value) = trimmed.split_at(split);
        return vec![(name.to_string(), unquote(value.trim(), escape))];
    }
    words
        .iter()
        .filter_map(|word| word.split_once('='))
        .map(|(name, value)| (name.to_string(), unquote(value, escape)))
        .collect()
}

/// Splits on unquoted whitespace, keeping quotes and escapes in the
/// words, as Docker's `parseWords`.
fn split_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                word.push(c);
                if c == q {
                    quote = None;
                } else if c == escape && q != '\'' {
                    if let Some(next) = chars.next() {
                        word.push(next);
                    }
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                word.push(c);
                if c == '\'' || c == '"' {
                    quote = Some(c);
                } else if c == escape {
                    if let Some(next) = chars.next() {
                        word.push(next);
                    }
                }
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The result of expanding a word.
struct Expanded {
    text: String,
    /// Variables that were unset or empty, in order of use: the likely
    /// reason for an empty result.
    empty_vars: Vec<String>,
}

/// Expands `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`,
/// `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}` and `${VAR?msg}`, and
/// removes quotes and escapes, as Docker's shell lexer does for `FROM`.
fn expand(
    text: &str,
    escape: char,
    scope: &BTreeMap<String, String>,
) -> std::result::Result<Expanded, ResolveError> {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        escape,
        scope: Some(scope),
        empty_vars: Vec::new(),
        text,
    };
    let text = lexer.word(None)?;
    Ok(Expanded { text, empty_vars: lexer.empty_vars })
}

/// Removes quotes and escapes but leaves `$` references as written.
fn unquote(text: &str, escape: char) -> String {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        escape,
        scope: None,
        empty_vars: Vec::new(),
        text,
    };
    // Without a scope nothing is substituted, so nothing can fail.
    lexer.word(None).unwrap_or_else(|_| text.to_string())
}

/// A small port of the word processing in Docker's shell lexer.
struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    /// `None` to keep `$` references as written.
    scope: Option<&'a BTreeMap<String, String>>,
    empty_vars: Vec<String>,
    text: &'a str,
}

type LexResult<T> = std::result::Result<T, ResolveError>;

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    fn error(&self, reason: &str) -> ResolveError {
        ResolveError::BadSubstitution {
            text: self.text.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Reads up to `stop` (not consumed) or the end.
    fn word(&mut self, stop: Option<char>) -> LexResult<String> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                break;
            }
            self.pos += 1;
            if c == self.escape {
                if let Some(next) = self.next() {
                    out.push(next);
                }
            } else if c == '\'' {
                while let Some(c) = self.next() {
                    if c == '\'' {
                        break;
                    }
                    out.push(c);
                }
            } else if c == '"' {
                self.double_quoted(&mut out)?;
            } else if c == '$' && self.scope.is_some() {
                out.push_str(&self.dollar()?);
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn double_quoted(&mut self, out: &mut String) -> LexResult<()> {
        while let Some(c) = self.next() {
            if c == '"' {
                return Ok(());
            }
            if c == self.escape {
                // Only these can be escaped inside double quotes; other
                // escapes stay as written.
                match self.peek() {
                    Some(next) if next == '"' || next == '$' || next == c => {
                        self.pos += 1;
                        out.push(next);
                    }
                    _ => out.push(c),
                }
            } else if c == '$' && self.scope.is_some() {
                out.push_str(&self.dollar()?);
            } else {
                out.push(c);
            }
        }
        Ok(())
    }

    /// Expands a reference; the `$` is already consumed.
    fn dollar(&mut self) -> LexResult<String> {
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.lookup(&name).unwrap_or_default());
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return Err(self.error("missing variable name after '${'"));
        }
        match self.next() {
            Some('}') => Ok(self.lookup(&name).unwrap_or_default()),
            Some(':') => {
                let modifier = self.next();
                self.modified(&name, modifier, true)
            }
            Some(modifier @ ('-' | '+' | '?')) => {
                self.modified(&name, Some(modifier), false)
            }
            Some(other) => Err(self.error(&format!(
                "unsupported modifier '{other}' after ${{{name}"
            ))),
            None => Err(self.error("missing '}'")),
        }
    }

    /// `${name:-word}` and friends; `colon` makes empty count as unset.
    fn modified(
        &mut self,
        name: &str,
        modifier: Option<char>,
        colon: bool,
    ) -> LexResult<String> {
        let word = self.word(Some('}'))?;
        if self.next() != Some('}') {
            return Err(self.error("missing '}'"));
        }
        let value = self.lookup(name);
        let present = match &value {
            Some(value) => !(colon && value.is_empty()),
            None => false,
        };
        match modifier {
            Some('-') if present => Ok(value.unwrap_or_default()),
            Some('-') => Ok(word),
            Some('+') if present => Ok(word),
            Some('+') => Ok(String::new()),
            Some('?') if present => Ok(value.unwrap_or_default()),
            Some('?') if word.is_empty() => {
                Err(self.error(&format!("{name} is not set")))
            }
            Some('?') => Err(self.error(&format!("{name}: {word}"))),
            Some(other) => Err(self.error(&format!(
                "unsupported modifier '{other}' after ${{{name}"
            ))),
            None => Err(self.error("missing '}'")),
        }
    }

    /// A variable name: letters, digits and `_`; leading digits make a
    /// positional name, which is never set.
    fn name(&mut self) -> String {
        let positional = self.peek().is_some_and(|c| c.is_ascii_digit());
        let mut name = String::new();
        while let Some(c) = self.peek() {
            let fits = if positional {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphanumeric() || c == '_'
            };
            if !fits {
                break;
            }
            self.pos += 1;
            name.push(c);
        }
        name
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        let value = self.scope.and_then(|scope| scope.get(name)).cloned();
        if value.as_deref().is_none_or(str::is_empty) {
            self.empty_vars.push(name.to_string());
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Dockerfile {
        Dockerfile::parse(text).expect("dockerfile parses")
    }

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn base(text: &str, build_args: &[(&str, &str)]) -> BaseImage {
        parse(text).base_image(&args(build_args), None).expect("resolves")
    }

    fn image(name: &str) -> BaseImage {
        BaseImage::Image(name.to_string())
    }

    const MULTI_STAGE: &str = "\
ARG NODE_VERSION=20
FROM node:${NODE_VERSION}-bookworm AS Build
ARG NODE_ENV=production
RUN npm ci
FROM build AS test
RUN npm test
FROM gcr.io/distroless/nodejs${NODE_VERSION} AS runtime
USER nonroot
COPY --from=build /app /app
";

    #[test]
    fn stages_keep_their_names_images_and_lines() {
        let dockerfile = parse(MULTI_STAGE);
        let stages = dockerfile.stages();
        assert_eq!(stages.len(), 3);
        assert_eq!(stages[0].name.as_deref(), Some("Build"));
        assert_eq!(stages[0].from, "node:${NODE_VERSION}-bookworm");
        assert_eq!(stages[0].line, 2);
        assert_eq!(stages[1].index, 1);
        assert_eq!(stages[2].line, 7);
        assert_eq!(stages[2].user.as_deref(), Some("nonroot"));
        assert_eq!(dockerfile.global_args()[0].default.as_deref(), Some("20"));
    }

    #[test]
    fn the_final_stage_resolves_with_global_arg_defaults() {
        assert_eq!(
            base(MULTI_STAGE, &[]),
            image("gcr.io/distroless/nodejs20")
        );
    }

    #[test]
    fn build_args_override_global_defaults() {
        let got = base(MULTI_STAGE, &[("NODE_VERSION", "22")]);
        assert_eq!(got, image("gcr.io/distroless/nodejs22"));
    }

    #[test]
    fn a_stage_chain_is_followed_to_the_external_image() {
        let dockerfile = parse(MULTI_STAGE);
        let got = dockerfile.base_image(&args(&[]), Some("TEST")).unwrap();
        assert_eq!(got, image("node:20-bookworm"));
    }

    #[test]
    fn an_arg_declared_inside_a_stage_does_not_reach_from() {
        let text = "\
FROM alpine AS one
ARG TAG=3.19
FROM node:${TAG:-18}
";
        assert_eq!(base(text, &[]), image("node:18"));
        // A build arg for a stage-only ARG is not in FROM's scope either.
        assert_eq!(base(text, &[("TAG", "99")]), image("node:18"));
    }

    #[test]
    fn default_and_alternative_forms_follow_docker() {
        let text = "\
ARG EMPTY=
ARG SET=x
ARG UNSET
FROM a${EMPTY:-1}${EMPTY-2}${UNSET-3}${SET:+4}${UNSET:+5}b
";
        assert_eq!(base(text, &[]), image("a134b"));
    }

    #[test]
    fn a_global_default_may_use_an_earlier_global_arg() {
        let text = "ARG V=20\nARG IMG=\"node:$V\"\nFROM ${IMG}\n";
        assert_eq!(base(text, &[]), image("node:20"));
        assert_eq!(base(text, &[("V", "22")]), image("node:22"));
    }

    #[test]
    fn scratch_has_no_base_image() {
        let text = "FROM scratch AS empty\nFROM empty\n";
        assert_eq!(base(text, &[]), BaseImage::Scratch);
    }

    #[test]
    fn the_platform_flag_is_kept_and_not_part_of_the_image() {
        let text = "FROM --platform=$BUILDPLATFORM node:20 AS b\n";
        let dockerfile = parse(text);
        let stage = &dockerfile.stages()[0];
        assert_eq!(stage.platform.as_deref(), Some("$BUILDPLATFORM"));
        assert_eq!(base(text, &[]), image("node:20"));
    }

    #[test]
    fn an_arg_without_a_value_gives_an_error_naming_it() {
        let dockerfile = parse("ARG BASE\nFROM ${BASE}\n");
        let err = dockerfile.base_image(&args(&[]), None).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("stage 0 expands to an empty name"), "{text}");
        assert!(text.contains("--build-arg BASE="), "{text}");
        let typed = err.downcast_ref::<ResolveError>();
        assert!(matches!(typed, Some(ResolveError::EmptyBaseName { .. })));
    }

    #[test]
    fn an_unknown_target_lists_the_stage_names() {
        let dockerfile = parse(MULTI_STAGE);
        let err = dockerfile.base_image(&args(&[]), Some("prod")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("'prod'"), "{text}");
        assert!(text.contains("Build, test, runtime"), "{text}");
    }

    #[test]
    fn comments_continuations_and_directives_are_understood() {
        let text = "\u{feff}# escape=`
# a comment
ARG REGISTRY=docker.io
FROM ${REGISTRY}/library/node:20 `
  AS app
ENV NODE_ENV=production `
    PORT=\"3000\"
ENV LEGACY some value
HEALTHCHECK CMD node health.js
";
        let dockerfile = parse(text);
        let stage = &dockerfile.stages()[0];
        assert_eq!(stage.line, 4);
        assert_eq!(stage.name.as_deref(), Some("app"));
        assert_eq!(stage.env["NODE_ENV"], "production");
        assert_eq!(stage.env["PORT"], "3000");
        assert_eq!(stage.env["LEGACY"], "some value");
        assert!(stage.healthcheck);
        assert_eq!(base(text, &[]), image("docker.io/library/node:20"));
    }

    #[test]
    fn healthcheck_none_turns_the_check_off() {
        let text = "FROM a\nHEALTHCHECK CMD true\nHEALTHCHECK NONE\n";
        assert!(!parse(text).stages()[0].healthcheck);
    }

    #[test]
    fn declared_args_cover_global_and_stage_args() {
        let names: Vec<String> =
            parse(MULTI_STAGE).declared_args().into_iter().collect();
        assert_eq!(names, ["NODE_ENV", "NODE_VERSION"]);
    }

    #[test]
    fn quoted_arg_defaults_keep_their_spaces() {
        let text = "ARG A=\"x y\" B='$A' C\nFROM img\n";
        let dockerfile = parse(text);
        let global = dockerfile.global_args();
        assert_eq!(global.len(), 3);
        assert_eq!(global[0].default.as_deref(), Some("\"x y\""));
        assert_eq!(global[1].default.as_deref(), Some("'$A'"));
        assert_eq!(global[2].default, None);
    }

    #[test]
    fn single_quotes_stop_expansion() {
        let text = "ARG T=1\nFROM 'img:$T'\n";
        assert_eq!(base(text, &[]), image("img:$T"));
    }

    #[test]
    fn an_invalid_dockerfile_is_an_error() {
        let err = Dockerfile::parse("RUN echo no from\n").unwrap_err();
        assert!(format!("{err:#}").contains("invalid Dockerfile"));
        assert!(Dockerfile::parse("FROM a\nBOGUS x\n").is_err());
        assert!(Dockerfile::parse("").is_err());
    }

    #[test]
    fn a_bad_substitution_is_an_error() {
        let dockerfile = parse("FROM ${IMG\n");
        assert!(dockerfile.base_image(&args(&[]), None).is_err());
        let dockerfile = parse("FROM ${IMG:?needs_an_image}\n");
        let err = dockerfile.base_image(&args(&[]), None).unwrap_err();
        assert!(format!("{err:#}").contains("needs_an_image"));
    }

    #[test]
    fn reading_a_missing_file_names_it() {
        let err = Dockerfile::read(Path::new("/nonexistent/Dockerfile.x"))
            .unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/Dockerfile.x"));
    }

    #[test]
    fn the_project_dockerfiles_resolve_when_present() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/dockerfiles");
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let dockerfile = Dockerfile::read(&path).unwrap();
            let base = dockerfile.base_image(&BTreeMap::new(), None);
            assert!(
                base.is_ok(),
                "{}: {:#}",
                path.display(),
                base.unwrap_err()
            );
        }
    }
}
