//! The build context: `.dockerignore` matching and the tar sent to the
//! engine.
//!
//! Docker's `.dockerignore` rules are not gitignore rules, and no crate
//! reproduces them, so this module owns them: how the docker CLI reads the
//! file (moby's ignorefile reader), how a pattern matches a path (moby's
//! patternmatcher, translated to `globset` globs), and which files the CLI
//! walks into and sends. The tar is written the way the CLI writes it (uid
//! and gid 0, no user names, real modes and mtimes, symlinks kept as links)
//! so that the classic builder's COPY cache, which hashes header fields,
//! stays warm between runs.

use std::collections::BTreeSet;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{bail, Context as _, Result};
use globset::{GlobBuilder, GlobMatcher};

/// The name under which a Dockerfile from outside the context travels.
///
/// The docker CLI uses a random `.dockerfile.<hex>` name; a fixed name keeps
/// the tar reproducible. The name is also appended to the `.dockerignore`
/// inside the tar, as the CLI does, so that `COPY . .` does not copy it.
pub const OUTSIDE_DOCKERFILE_NAME: &str = ".imgopt-dockerfile";

const IGNORE_FILE: &str = ".dockerignore";
const UTF8_BOM: char = '\u{feff}';

/// Parsed .dockerignore patterns.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

/// One line of a `.dockerignore`, cleaned and compiled.
#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern without its `!`, as moby's `Pattern.String()`.
    cleaned: String,
    exclusion: bool,
    matcher: GlobMatcher,
}

impl Pattern {
    fn matches_self_or_parent(&self, path: &str) -> bool {
        self.matcher.is_match(path)
            || parents(path).any(|dir| self.matcher.is_match(dir))
    }
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore` file.
    ///
    /// A pattern that is not a valid glob (`[` alone, a trailing `\`, a
    /// lone `!`) is an error naming its line, as the docker CLI refuses to
    /// build with it.
    pub fn parse(text: &str) -> Result<DockerIgnore> {
        let mut patterns = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let raw = if number == 1 {
                raw.strip_prefix(UTF8_BOM).unwrap_or(raw)
            } else {
                raw
            };
            let pattern = parse_line(raw).with_context(|| {
                format!(
                    "invalid .dockerignore pattern on line {number}: '{raw}'"
                )
            })?;
            patterns.extend(pattern);
        }
        Ok(DockerIgnore { patterns })
    }

    /// Reads `.dockerignore` from the root of a build context.
    ///
    /// A context without a `.dockerignore` has no patterns.
    pub fn read(context_root: &Path) -> Result<DockerIgnore> {
        let path = context_root.join(IGNORE_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(DockerIgnore::default())
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("failed to read '{}'", path.display())
                })
            }
        };
        // Go reads patterns as bytes; a stray invalid byte should not stop
        // a build the docker CLI would run.
        DockerIgnore::parse(&String::from_utf8_lossy(&bytes))
            .with_context(|| format!("failed to parse '{}'", path.display()))
    }

    /// Whether the patterns exclude `rel_path`, a slash-separated path
    /// relative to the context root.
    ///
    /// This is moby's `MatchesOrParentMatches`: the last matching line
    /// wins, and a line matching a parent directory matches the path. The
    /// engine uses it to hide an excluded Dockerfile or `.dockerignore`
    /// from COPY.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let path = clean(rel_path);
        let path = path.trim_start_matches('/');
        if path.is_empty() || path == "." {
            // Docker never excludes the context root itself.
            return false;
        }
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            if pattern.matches_self_or_parent(path) {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The walk's variant of [`DockerIgnore::is_excluded`], moby's
    /// `MatchesUsingParentResults`, which the docker CLI uses when it
    /// walks the context.
    ///
    /// `parent` holds, per pattern, whether it matched the parent
    /// directory; `None` for entries at the root. The result's second part
    /// is the same record for `path`, to pass to its children. It differs
    /// from `is_excluded` only in odd orderings (`a/b` then `!a`), where a
    /// pattern that was skipped for a parent is not credited for it.
    fn matches_in_walk(
        &self,
        path: &str,
        parent: Option<&[bool]>,
    ) -> (bool, Vec<bool>) {
        let mut matched = false;
        let mut record = Vec::with_capacity(self.patterns.len());
        for (index, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.is_some_and(|p| p[index]);
            if !hit && pattern.exclusion == matched {
                hit = match parent {
                    Some(_) => pattern.matcher.is_match(path),
                    None => pattern.matches_self_or_parent(path),
                };
            }
            record.push(hit);
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (matched, record)
    }

    /// Whether an exception could re-include something below the excluded
    /// directory `dir`, so the walk must enter it.
    ///
    /// This is the docker CLI's own test: an exception counts only if its
    /// text starts with the directory's path, so `!**/*.js` does not bring
    /// back files from an excluded directory. Following the CLI exactly is
    /// what makes our context equal to the one `docker build` sends.
    fn may_reinclude_below(&self, dir: &str) -> bool {
        let dir_slash = format!("{dir}/");
        self.patterns.iter().any(|p| {
            p.exclusion && format!("{}/", p.cleaned).starts_with(&dir_slash)
        })
    }
}

/// Reads one line as the docker CLI does; `None` for comments and blanks.
fn parse_line(raw: &str) -> Result<Option<Pattern>> {
    // The CLI checks for comments before trimming: " #x" is a pattern.
    if raw.starts_with('#') {
        return Ok(None);
    }
    let mut text = raw.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let exclusion = text.starts_with('!');
    if exclusion {
        text = text[1..].trim();
        if text.is_empty() {
            bail!("an exception needs a pattern after '!'");
        }
    }
    let mut cleaned = clean(text);
    if cleaned.len() > 1 && cleaned.starts_with('/') {
        cleaned.remove(0);
    }
    let glob = to_glob(&cleaned)?;
    let matcher = GlobBuilder::new(&glob)
        .literal_separator(true)
        .backslash_escape(true)
        .empty_alternates(true)
        .build()
        .with_context(|| format!("bad glob '{cleaned}'"))?
        .compile_matcher();
    Ok(Some(Pattern { cleaned, exclusion, matcher }))
}

/// Lexical path cleaning as Go's `filepath.Clean` does it on Unix.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// The parent directories of a relative path, outermost first: `a`, `a/b`
/// for `a/b/c`.
fn parents(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(end, _)| &path[..end])
}

/// Translates a cleaned moby pattern into a globset glob with the same
/// meaning.
///
/// moby turns a pattern into a regular expression: `*` and `?` stay within
/// a path component, `**` becomes "any directories, or none" (and
/// "anything" at the end), `[...]` is a regex class (so `[^b]` negates and
/// `[!b]` is a class holding `!`), and `{`, `}`, `,` are plain characters.
/// globset agrees on most of it; this function fixes the rest.
fn to_glob(pattern: &str) -> Result<String> {
    // moby's shortcut for a leading `**` followed by no wildcard at all is
    // a plain suffix test: `**.log` matches `a/b/x.log`.
    if let Some(rest) = pattern.strip_prefix("**") {
        let plain = !rest.contains(['*', '?', '[', ']', '\\']);
        if plain && !rest.is_empty() && !rest.starts_with('/') {
            return Ok(format!("**/*{}", escape_literal(rest)));
        }
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut glob = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                let after_separator = i == 0 || chars[i - 1] == '/';
                i += 2;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                let at_end = i == chars.len();
                glob.push_str(match (after_separator, at_end) {
                    (true, true) => "**",
                    (true, false) => "**/",
                    // moby: `x**` is `x.*`, `x**y` is `x(.*/)?y`.
                    (false, true) => "*{,/**}",
                    (false, false) => "{,*/,*/**/}",
                });
                continue;
            }
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    bail!("pattern ends with a lone '\\'");
                };
                glob.push('\\');
                glob.push(next);
                i += 2;
                continue;
            }
            '[' => {
                let (class, end) = translate_class(&chars, i)?;
                glob.push_str(&class);
                i = end;
                continue;
            }
            '{' | '}' | ',' => {
                glob.push('\\');
                glob.push(chars[i]);
            }
            c => glob.push(c),
        }
        i += 1;
    }
    Ok(glob)
}

/// Escapes globset's special characters in literal text.
fn escape_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | ',' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Translates the Go regex class starting at `chars[start]` (a `[`) into
/// a globset class; returns it and the index after its closing `]`.
fn translate_class(chars: &[char], start: usize) -> Result<(String, usize)> {
    let mut i = start + 1;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut members: Vec<(char, char)> = Vec::new();
    let mut posix: Vec<String> = Vec::new();
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            bail!("unclosed character class");
        };
        if c == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        if c == '[' && chars.get(i + 1) == Some(&':') {
            let rest: String = chars[i..].iter().collect();
            if let Some(end) = rest.find(":]") {
                posix.push(rest[..end + 2].to_string());
                i += rest[..end + 2].chars().count();
                continue;
            }
        }
        let (lo, next) = class_char(chars, i)?;
        i = next;
        let is_range = chars.get(i) == Some(&'-')
            && chars.get(i + 1).is_some_and(|c| *c != ']');
        if is_range {
            let (hi, next) = class_char(chars, i + 1)?;
            if hi < lo {
                bail!("invalid range {lo}-{hi} in character class");
            }
            members.push((lo, hi));
            i = next;
        } else {
            members.push((lo, lo));
        }
    }
    Ok((emit_class(negated, members, posix), i))
}

/// One character of a Go regex class, with `\` escapes.
fn class_char(chars: &[char], i: usize) -> Result<(char, usize)> {
    match chars.get(i) {
        Some('\\') => match chars.get(i + 1) {
            Some(&c) => Ok((c, i + 2)),
            None => bail!("unclosed character class"),
        },
        Some(&c) => Ok((c, i + 1)),
        None => bail!("unclosed character class"),
    }
}

/// Writes class members in an order globset reads as intended: `]` first,
/// `-` last, and `!` or `^` never first unless negating.
fn emit_class(
    negated: bool,
    members: Vec<(char, char)>,
    posix: Vec<String>,
) -> String {
    let mut body = String::new();
    let mut tail = String::new();
    let single = |c: char| members.contains(&(c, c));
    if single(']') {
        body.push(']');
    }
    for &(lo, hi) in &members {
        match (lo, hi) {
            (']' | '-' | '!' | '^' | '[', _) if lo == hi => {}
            ('!' | '^', _) if body.is_empty() && !negated => {
                // Split so the class does not open with a negation mark.
                body.push(char::from_u32(lo as u32 + 1).unwrap_or(lo));
                body.push('-');
                body.push(hi);
                tail.push(lo);
            }
            _ if lo == hi => body.push(lo),
            _ => {
                body.push(lo);
                body.push('-');
                body.push(hi);
            }
        }
    }
    for class in &posix {
        body.push_str(class);
    }
    let marks: String =
        ['[', '!', '^'].into_iter().filter(|c| single(*c)).collect();
    if body.is_empty() && !negated && !marks.is_empty() && !single('-') {
        // Only `!`, `^` or `[`: a class cannot start with them, so say it
        // as alternatives of escaped characters.
        let alternatives: Vec<String> =
            marks.chars().map(|c| format!("\\{c}")).collect();
        return format!("{{{}}}", alternatives.join(","));
    }
    body.push_str(&tail);
    body.push_str(&marks);
    if single('-') {
        body.push('-');
    }
    format!("[{}{body}]", if negated { "!" } else { "" })
}

/// A build context packed as a tar in an anonymous temporary file.
#[derive(Debug)]
pub struct ContextTar {
    /// The tar, rewound to the start, ready to stream.
    pub file: File,
    /// Size of the tar in bytes.
    pub len: u64,
    /// Files, links and directories written.
    pub entries: usize,
    /// The Dockerfile's path inside the tar, to name to the engine.
    pub dockerfile: String,
}

/// The files that a build of `root` with `dockerfile` sends: relative
/// slash paths, sorted.
///
/// Directories are left out (the tar holds them too); symlinks are listed.
/// The Dockerfile and `.dockerignore` are always listed, because they are
/// always sent. A Dockerfile outside `root` is listed under
/// [`OUTSIDE_DOCKERFILE_NAME`].
pub fn list_context(root: &Path, dockerfile: &Path) -> Result<Vec<String>> {
    let plan = plan_context(root, dockerfile)?;
    Ok(plan
        .entries
        .into_iter()
        .filter(|entry| !matches!(entry.source, Source::Dir(..)))
        .map(|entry| entry.rel)
        .collect())
}

/// Packs the context into a temporary file (`tempfile::tempfile()`).
///
/// `dockerfile` may be relative to the current directory or absolute. If
/// it lies inside `root` it travels at its relative path; if outside (as
/// `docker build -f` allows) its bytes travel as
/// [`OUTSIDE_DOCKERFILE_NAME`], which the tar's `.dockerignore` then lists.
pub fn pack_context(root: &Path, dockerfile: &Path) -> Result<ContextTar> {
    pack_context_hiding(root, dockerfile, &[])
}

/// Packs the context like [`pack_context`], leaving out `hidden` paths
/// (files or whole directories) whatever `.dockerignore` says: imgopt's
/// own state, such as its results file, must never reach an image or
/// change a layer's cache key.
pub fn pack_context_hiding(
    root: &Path,
    dockerfile: &Path,
    hidden: &[PathBuf],
) -> Result<ContextTar> {
    let mut plan = plan_context(root, dockerfile)?;
    hide(&mut plan, root, hidden);
    let file = tempfile::tempfile()
        .context("failed to create a temporary file for the context")?;
    let mut builder = tar::Builder::new(file);
    for entry in &plan.entries {
        append_entry(&mut builder, entry).with_context(|| {
            format!("failed to add '{}' to the build context", entry.rel)
        })?;
    }
    let mut file =
        builder.into_inner().context("failed to finish the context tar")?;
    let len = file
        .seek(SeekFrom::End(0))
        .and_then(|len| file.rewind().map(|()| len))
        .context("failed to rewind the context tar")?;
    Ok(ContextTar {
        file,
        len,
        entries: plan.entries.len(),
        dockerfile: plan.dockerfile,
    })
}

fn hide(plan: &mut Plan, root: &Path, hidden: &[PathBuf]) {
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.into());
    let hidden: Vec<String> = hidden
        .iter()
        .filter_map(|path| {
            let path = fs::canonicalize(path).unwrap_or_else(|_| path.into());
            path.strip_prefix(&root).ok().map(slash_path)
        })
        .filter(|rel| !rel.is_empty())
        .collect();
    plan.entries.retain(|entry| {
        !hidden.iter().any(|h| {
            entry.rel == *h
                || entry
                    .rel
                    .strip_prefix(h.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    });
}

/// What a build sends, decided before anything is written.
struct Plan {
    entries: Vec<Entry>,
    dockerfile: String,
}

/// One tar entry: where it goes and where its content comes from.
struct Entry {
    rel: String,
    source: Source,
}

enum Source {
    Dir(Metadata),
    File(PathBuf, Metadata),
    Symlink(PathBuf, Metadata),
    /// Bytes made up here, with the mode and mtime to give them.
    Bytes {
        data: Vec<u8>,
        mode: u32,
        mtime: u64,
    },
    /// A file on disk with bytes appended: the `.dockerignore` that must
    /// also hide an outside Dockerfile.
    FileWithSuffix(PathBuf, Metadata, Vec<u8>),
}

fn plan_context(root: &Path, dockerfile: &Path) -> Result<Plan> {
    let root = fs::canonicalize(root).with_context(|| {
        format!("build context '{}' not found", root.display())
    })?;
    if !root.is_dir() {
        bail!("build context '{}' is not a directory", root.display());
    }
    let dockerfile_path = fs::canonicalize(dockerfile).with_context(|| {
        format!("dockerfile '{}' not found", dockerfile.display())
    })?;
    if !dockerfile_path.is_file() {
        bail!("dockerfile '{}' is not a file", dockerfile.display());
    }
    let inside = dockerfile_path.strip_prefix(&root).ok().map(slash_path);

    let ignore = DockerIgnore::read(&root)?;
    let mut forced: BTreeSet<String> = BTreeSet::new();
    forced.insert(IGNORE_FILE.to_string());
    if let Some(rel) = &inside {
        forced.insert(rel.clone());
    }
    let walker = Walker { ignore: &ignore, forced: &forced };
    let mut entries = Vec::new();
    walker.walk(&root, None, None, &mut entries)?;

    let dockerfile_rel = match inside {
        Some(rel) => rel,
        None => {
            add_outside_dockerfile(&root, &dockerfile_path, &mut entries)?;
            OUTSIDE_DOCKERFILE_NAME.to_string()
        }
    };
    entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(Plan { entries, dockerfile: dockerfile_rel })
}

/// Adds a Dockerfile from outside the context, and lists it in the tar's
/// `.dockerignore` so that the engine hides it from COPY.
fn add_outside_dockerfile(
    root: &Path,
    dockerfile: &Path,
    entries: &mut Vec<Entry>,
) -> Result<()> {
    if entries.iter().any(|e| e.rel == OUTSIDE_DOCKERFILE_NAME) {
        bail!(
            "the context '{}' already holds '{OUTSIDE_DOCKERFILE_NAME}', the \
             name used for a Dockerfile from outside it",
            root.display()
        );
    }
    let bytes = fs::read(dockerfile).with_context(|| {
        format!("failed to read dockerfile '{}'", dockerfile.display())
    })?;
    let meta = fs::metadata(dockerfile).with_context(|| {
        format!("failed to stat dockerfile '{}'", dockerfile.display())
    })?;
    let mtime = mtime_of(&meta);
    entries.push(Entry {
        rel: OUTSIDE_DOCKERFILE_NAME.to_string(),
        source: Source::Bytes { data: bytes, mode: mode_of(&meta), mtime },
    });
    let suffix = format!("\n{OUTSIDE_DOCKERFILE_NAME}\n").into_bytes();
    match entries.iter_mut().find(|e| e.rel == IGNORE_FILE) {
        Some(entry) => {
            if let Source::File(path, meta) = &entry.source {
                entry.source =
                    Source::FileWithSuffix(path.clone(), meta.clone(), suffix);
            } else {
                bail!(
                    "'{}' in the context is not a file",
                    root.join(IGNORE_FILE).display()
                );
            }
        }
        None => entries.push(Entry {
            rel: IGNORE_FILE.to_string(),
            source: Source::Bytes { data: suffix, mode: 0o644, mtime },
        }),
    }
    Ok(())
}

/// Walks the context the way the docker CLI does.
struct Walker<'a> {
    ignore: &'a DockerIgnore,
    /// Paths sent whatever the patterns say: the Dockerfile and
    /// `.dockerignore`. The CLI appends `!path` exceptions for them; a set
    /// does the same without reading the names as globs.
    forced: &'a BTreeSet<String>,
}

impl Walker<'_> {
    fn walk(
        &self,
        dir: &Path,
        dir_rel: Option<&str>,
        parent: Option<&[bool]>,
        entries: &mut Vec<Entry>,
    ) -> Result<()> {
        let mut children = fs::read_dir(dir)
            .and_then(|it| it.collect::<io::Result<Vec<_>>>())
            .with_context(|| {
                format!("failed to read directory '{}'", dir.display())
            })?;
        children.sort_by_key(|child| child.file_name());

        for child in children {
            // Known limit: a name that is not UTF-8 is matched and sent
            // under its lossy form (with U+FFFD), where docker uses bytes.
            let name = child.file_name().to_string_lossy().into_owned();
            let rel = match dir_rel {
                Some(dir_rel) => format!("{dir_rel}/{name}"),
                None => name,
            };
            let path = child.path();
            let meta = fs::symlink_metadata(&path).with_context(|| {
                format!("failed to stat '{}'", path.display())
            })?;
            let kind = meta.file_type();
            let source = if kind.is_dir() {
                Source::Dir(meta)
            } else if kind.is_file() {
                Source::File(path.clone(), meta)
            } else if kind.is_symlink() {
                Source::Symlink(path.clone(), meta)
            } else {
                // Sockets, fifos and devices have no place in an image
                // context.
                continue;
            };

            let (excluded, record) = self.ignore.matches_in_walk(&rel, parent);
            let excluded = excluded && !self.forced.contains(&rel);
            let is_dir = matches!(source, Source::Dir(..));
            if excluded {
                if is_dir && self.must_enter(&rel) {
                    self.walk(&path, Some(&rel), Some(&record), entries)?;
                }
                continue;
            }
            entries.push(Entry { rel: rel.clone(), source });
            if is_dir {
                self.walk(&path, Some(&rel), Some(&record), entries)?;
            }
        }
        Ok(())
    }

    /// Whether something below an excluded directory may still be sent.
    fn must_enter(&self, dir: &str) -> bool {
        let dir_slash = format!("{dir}/");
        self.ignore.may_reinclude_below(dir)
            || self.forced.iter().any(|path| path.starts_with(&dir_slash))
    }
}

fn append_entry(
    builder: &mut tar::Builder<File>,
    entry: &Entry,
) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    // As the docker CLI: owned by root, no user or group names.
    header.set_uid(0);
    header.set_gid(0);
    match &entry.source {
        Source::Dir(meta) => {
            set_metadata(&mut header, tar::EntryType::Directory, meta, 0);
            builder.append_data(&mut header, &entry.rel, io::empty())?;
        }
        Source::Symlink(path, meta) => {
            let target = fs::read_link(path).with_context(|| {
                format!("failed to read symlink '{}'", path.display())
            })?;
            set_metadata(&mut header, tar::EntryType::Symlink, meta, 0);
            builder.append_link(&mut header, &entry.rel, target)?;
        }
        Source::File(path, meta) => {
            let file = open_file(path)?;
            let size = meta.len();
            set_metadata(&mut header, tar::EntryType::Regular, meta, size);
            let reader = ExactReader::new(file, size, path);
            builder.append_data(&mut header, &entry.rel, reader)?;
        }
        Source::FileWithSuffix(path, meta, suffix) => {
            let mut data = Vec::new();
            open_file(path)?.read_to_end(&mut data).with_context(|| {
                format!("failed to read '{}'", path.display())
            })?;
            data.extend_from_slice(suffix);
            let size = data.len() as u64;
            set_metadata(&mut header, tar::EntryType::Regular, meta, size);
            builder.append_data(&mut header, &entry.rel, &data[..])?;
        }
        Source::Bytes { data, mode, mtime } => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(*mode);
            header.set_mtime(*mtime);
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, &entry.rel, &data[..])?;
        }
    }
    Ok(())
}

fn open_file(path: &Path) -> Result<File> {
    File::open(path)
        .with_context(|| format!("failed to open '{}'", path.display()))
}

fn set_metadata(
    header: &mut tar::Header,
    kind: tar::EntryType,
    meta: &Metadata,
    size: u64,
) {
    header.set_entry_type(kind);
    header.set_mode(mode_of(meta));
    header.set_mtime(mtime_of(meta));
    header.set_size(size);
}

/// Permission bits with setuid, setgid and sticky, as Go's tar headers.
#[cfg(unix)]
fn mode_of(meta: &Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(meta: &Metadata) -> u32 {
    if meta.is_dir() {
        0o755
    } else if meta.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}

/// Whole seconds since the epoch; a time before it becomes 0.
fn mtime_of(meta: &Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_secs())
}

/// Reads exactly the size the header announced.
///
/// The tar crate copies whatever the reader yields: a file that grew or
/// shrank after it was measured would corrupt the archive, so that is an
/// error instead.
struct ExactReader {
    inner: io::Take<File>,
    remaining: u64,
    path: PathBuf,
}

impl ExactReader {
    fn new(file: File, size: u64, path: &Path) -> ExactReader {
        // One byte more than announced reveals a file that grew.
        let inner = file.take(size + 1);
        ExactReader { inner, remaining: size, path: path.to_path_buf() }
    }

    fn changed(&self) -> io::Error {
        io::Error::other(format!(
            "'{}' changed size while it was being packed",
            self.path.display()
        ))
    }
}

impl Read for ExactReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(self.changed()),
            };
        }
        let want = usize::try_from(self.remaining)
            .map_or(buf.len(), |remaining| buf.len().min(remaining));
        let read = self.inner.read(&mut buf[..want]).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("failed to read '{}': {e}", self.path.display()),
            )
        })?;
        if read == 0 {
            return Err(self.changed());
        }
        self.remaining -= read as u64;
        Ok(read)
    }
}

/// A path relative to the context as a slash-separated string.
fn slash_path(rel: &Path) -> String {
    let parts: Vec<_> = rel
        .components()
        .map(|part| part.as_os_str().to_string_lossy())
        .collect();
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(lines: &[&str]) -> DockerIgnore {
        DockerIgnore::parse(&lines.join("\n")).expect("patterns parse")
    }

    /// Writes each path as a file whose content is its own path.
    fn tree(paths: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for path in paths {
            let full = dir.path().join(path);
            fs::create_dir_all(full.parent().expect("parent"))
                .expect("create parent");
            fs::write(&full, path).expect("write file");
        }
        dir
    }

    /// A tar entry read back: path, header, content and link target.
    type ReadEntry = (String, tar::Header, Vec<u8>, Option<String>);

    fn read_tar(tar: ContextTar) -> Vec<ReadEntry> {
        let mut archive = tar::Archive::new(tar.file);
        let mut out = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path");
            let path = path.to_string_lossy().into_owned();
            let header = entry.header().clone();
            // The entry, not the header, knows GNU long link names.
            let link = entry.link_name().expect("link name");
            let link = link.map(|l| l.to_string_lossy().into_owned());
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("entry data");
            out.push((path, header, data, link));
        }
        out
    }

    #[derive(serde::Deserialize)]
    struct Fixture {
        files: Vec<String>,
        cases: Vec<Case>,
    }

    #[derive(serde::Deserialize)]
    struct Case {
        name: String,
        dockerignore: Vec<String>,
        sent: Vec<String>,
    }

    #[test]
    fn hidden_paths_never_travel_whatever_dockerignore_says() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::create_dir_all(root.join(".imgopt")).unwrap();
        fs::write(root.join(".imgopt/results.json"), "{}").unwrap();
        fs::write(root.join("keep.txt"), "x").unwrap();

        let tar = pack_context_hiding(
            root,
            &root.join("Dockerfile"),
            &[root.join(".imgopt")],
        )
        .unwrap();
        let names: Vec<String> =
            read_tar(tar).into_iter().map(|e| e.0).collect();

        assert!(names.iter().any(|n| n == "keep.txt"), "{names:?}");
        assert!(!names.iter().any(|n| n.contains(".imgopt")), "{names:?}");
    }

    #[test]
    fn every_recorded_docker_cli_case_sends_the_same_files() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/dockerignore-cases.json"
        );
        let text = fs::read_to_string(path).expect("fixture");
        let fixture: Fixture = serde_json::from_str(&text).expect("json");
        let files: Vec<&str> =
            fixture.files.iter().map(String::as_str).collect();
        let mut failures = Vec::new();
        for case in &fixture.cases {
            let dir = tree(&files);
            let text = case.dockerignore.join("\n");
            fs::write(dir.path().join(IGNORE_FILE), &text).expect("write");
            let root = dir.path();
            let sent = match list_context(root, &root.join("Dockerfile")) {
                Ok(sent) => sent,
                Err(e) => {
                    failures.push(format!("{}: error {e:#}", case.name));
                    continue;
                }
            };
            // The engine hides an excluded Dockerfile or .dockerignore
            // from COPY, so the recording cannot show them.
            let rules = DockerIgnore::parse(&text).expect("parse");
            let hidden = |path: &String| {
                (path == "Dockerfile" || path == IGNORE_FILE)
                    && rules.is_excluded(path)
            };
            let got: Vec<&String> =
                sent.iter().filter(|p| !hidden(p)).collect();
            let want: Vec<&String> =
                case.sent.iter().filter(|p| !hidden(p)).collect();
            if got != want {
                let extra: Vec<_> =
                    got.iter().filter(|p| !want.contains(p)).collect();
                let missing: Vec<_> =
                    want.iter().filter(|p| !got.contains(p)).collect();
                failures.push(format!(
                    "{}: extra {extra:?}, missing {missing:?}",
                    case.name
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "failing cases:\n{}",
            failures.join("\n")
        );
    }

    #[test]
    fn star_does_not_cross_a_slash() {
        let rules = ignore(&["*.log"]);
        assert!(rules.is_excluded("app.log"));
        assert!(!rules.is_excluded("sub/app.log"));
    }

    #[test]
    fn double_star_spans_zero_or_more_directories() {
        let rules = ignore(&["app/**/util.ts"]);
        assert!(rules.is_excluded("app/util.ts"));
        assert!(rules.is_excluded("app/src/lib/util.ts"));
        assert!(!rules.is_excluded("util.ts"));
    }

    #[test]
    fn a_pattern_matching_a_directory_excludes_everything_below() {
        let rules = ignore(&["node_modules"]);
        assert!(rules.is_excluded("node_modules/y/index.js"));
        assert!(!rules.is_excluded("app/node_modules/x/index.js"));
    }

    #[test]
    fn the_last_matching_line_wins() {
        assert!(!ignore(&["*.md", "!README.md"]).is_excluded("README.md"));
        assert!(ignore(&["!README.md", "*.md"]).is_excluded("README.md"));
    }

    #[test]
    fn caret_negates_a_class_and_bang_is_a_plain_member() {
        let caret = ignore(&["a[^b]c"]);
        assert!(caret.is_excluded("axc"));
        assert!(!caret.is_excluded("abc"));
        let bang = ignore(&["a[!b]c"]);
        assert!(bang.is_excluded("a!c"));
        assert!(bang.is_excluded("abc"));
        assert!(!bang.is_excluded("axc"));
    }

    #[test]
    fn unusual_classes_keep_their_go_regex_meaning() {
        let only_bang = ignore(&["x[!]"]);
        assert!(only_bang.is_excluded("x!"));
        assert!(!only_bang.is_excluded("xa"));
        let bracket_first = ignore(&["x[]a]"]);
        assert!(bracket_first.is_excluded("x]"));
        assert!(bracket_first.is_excluded("xa"));
        let range_from_bang = ignore(&["x[!-#]"]);
        assert!(range_from_bang.is_excluded("x!"));
        assert!(range_from_bang.is_excluded("x#"));
        assert!(!range_from_bang.is_excluded("xa"));
        let posix = ignore(&["x[[:digit:]]"]);
        assert!(posix.is_excluded("x7"));
        assert!(!posix.is_excluded("xa"));
        let escaped = ignore(&["x[\\]-]"]);
        assert!(escaped.is_excluded("x]"));
        assert!(escaped.is_excluded("x-"));
    }

    #[test]
    fn a_backslash_escapes_a_leading_hash() {
        let rules = ignore(&["\\#hash.txt"]);
        assert!(rules.is_excluded("#hash.txt"));
        assert!(ignore(&["#hash.txt"]).is_empty());
    }

    #[test]
    fn a_hash_after_leading_space_is_a_pattern_not_a_comment() {
        assert!(ignore(&["  #hash.txt"]).is_excluded("#hash.txt"));
    }

    #[test]
    fn patterns_are_path_cleaned_and_lose_a_leading_slash() {
        let rules = ignore(&["/a//b/./c/../d/"]);
        assert!(rules.is_excluded("a/b/d"));
        assert!(rules.is_excluded("a/b/d/e"));
    }

    #[test]
    fn a_byte_order_mark_on_the_first_line_is_ignored() {
        assert!(ignore(&["\u{feff}foo"]).is_excluded("foo"));
    }

    #[test]
    fn braces_and_commas_are_plain_characters() {
        let rules = ignore(&["{a,b}.txt"]);
        assert!(rules.is_excluded("{a,b}.txt"));
        assert!(!rules.is_excluded("a.txt"));
    }

    #[test]
    fn a_leading_double_star_without_wildcards_is_a_suffix_test() {
        let rules = ignore(&["**.log"]);
        assert!(rules.is_excluded("x.log"));
        assert!(rules.is_excluded("a/b/x.log"));
    }

    #[test]
    fn a_double_star_glued_to_a_name_matches_like_moby() {
        let end = ignore(&["foo**"]);
        assert!(end.is_excluded("foobar"));
        assert!(end.is_excluded("foo/bar/baz"));
        let middle = ignore(&["a**b"]);
        assert!(middle.is_excluded("ab"));
        assert!(middle.is_excluded("ax/y/b"));
        assert!(!middle.is_excluded("axb"));
    }

    #[test]
    fn an_unclosed_class_is_an_error_naming_the_line() {
        let err = DockerIgnore::parse("node_modules\n[").unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("line 2"), "{text}");
        assert!(text.contains("'['"), "{text}");
    }

    #[test]
    fn a_lone_bang_is_an_error() {
        assert!(DockerIgnore::parse("!").is_err());
        assert!(DockerIgnore::parse("foo\\").is_err());
    }

    #[test]
    fn a_context_without_dockerignore_has_no_patterns() {
        let dir = tree(&["Dockerfile"]);
        assert!(DockerIgnore::read(dir.path()).expect("read").is_empty());
    }

    #[test]
    fn an_exception_reaches_into_an_excluded_directory_only_by_prefix() {
        let dir = tree(&["Dockerfile", "src/a.js", "src/b.rs", "docs/x.md"]);
        let text = "src\ndocs\n!src/a.js\n!**/*.md\n";
        fs::write(dir.path().join(IGNORE_FILE), text).expect("write");
        let root = dir.path();
        let sent = list_context(root, &root.join("Dockerfile")).unwrap();
        // The docker CLI does not enter `docs` for `!**/*.md`.
        assert_eq!(sent, [".dockerignore", "Dockerfile", "src/a.js"]);
    }

    #[test]
    fn the_walk_credits_a_parent_only_for_patterns_it_evaluated() {
        // moby's walk skips `!a` at `a` (nothing was excluded yet) and so
        // does not credit it at `a/b`; the stand-alone check does.
        let dir = tree(&["Dockerfile", "a/b/c", "a/d"]);
        fs::write(dir.path().join(IGNORE_FILE), "a/b\n!a\n").unwrap();
        let root = dir.path();
        let sent = list_context(root, &root.join("Dockerfile")).unwrap();
        assert_eq!(sent, [".dockerignore", "Dockerfile", "a/d"]);
        let rules = ignore(&["a/b", "!a"]);
        assert!(!rules.is_excluded("a/b/c"));
    }

    #[test]
    fn tar_entries_are_owned_by_root_with_no_user_names() {
        let dir = tree(&["Dockerfile", "app/server.js", "empty/.keep"]);
        fs::remove_file(dir.path().join("empty/.keep")).expect("rm");
        let root = dir.path();
        let tar = pack_context(root, &root.join("Dockerfile")).unwrap();
        assert_eq!(tar.entries, 4);
        assert_eq!(tar.dockerfile, "Dockerfile");
        let entries = read_tar(tar);
        let names: Vec<&str> =
            entries.iter().map(|(path, ..)| path.as_str()).collect();
        assert_eq!(names, ["Dockerfile", "app", "app/server.js", "empty"]);
        for (path, header, ..) in &entries {
            assert_eq!(header.uid().unwrap(), 0, "{path}");
            assert_eq!(header.gid().unwrap(), 0, "{path}");
            assert_eq!(header.username().unwrap(), Some(""), "{path}");
            assert_eq!(header.groupname().unwrap(), Some(""), "{path}");
        }
        let (_, header, data, _) = &entries[2];
        assert_eq!(data, b"app/server.js");
        let meta = fs::metadata(root.join("app/server.js")).unwrap();
        assert_eq!(header.mtime().unwrap(), mtime_of(&meta));
        assert_eq!(header.mode().unwrap(), mode_of(&meta));
    }

    #[test]
    fn the_dockerfile_travels_even_when_an_allow_list_excludes_it() {
        let dir = tree(&["dockerfiles/app.Dockerfile", "app/server.js"]);
        fs::write(dir.path().join(IGNORE_FILE), "*\n!app\n").unwrap();
        let root = dir.path();
        let dockerfile = root.join("dockerfiles/app.Dockerfile");
        let sent = list_context(root, &dockerfile).unwrap();
        assert_eq!(
            sent,
            [".dockerignore", "app/server.js", "dockerfiles/app.Dockerfile"]
        );
        let tar = pack_context(root, &dockerfile).unwrap();
        assert_eq!(tar.dockerfile, "dockerfiles/app.Dockerfile");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_kept_as_a_link() {
        let dir = tree(&["Dockerfile", "real.txt"]);
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink("real.txt", &link).unwrap();
        let root = dir.path();
        let tar = pack_context(root, &root.join("Dockerfile")).unwrap();
        let entries = read_tar(tar);
        let (_, header, _, target) =
            entries.iter().find(|(path, ..)| path == "link.txt").unwrap();
        assert_eq!(header.entry_type(), tar::EntryType::Symlink);
        assert_eq!(target.as_deref(), Some("real.txt"));
    }

    #[cfg(unix)]
    #[test]
    fn long_names_and_long_link_targets_survive() {
        let long = format!("{}/{}.txt", "d".repeat(120), "f".repeat(120));
        let dir = tree(&["Dockerfile", &long]);
        let link = dir.path().join("l".repeat(150));
        std::os::unix::fs::symlink(&long, &link).unwrap();
        let root = dir.path();
        let entries =
            read_tar(pack_context(root, &root.join("Dockerfile")).unwrap());
        assert!(entries.iter().any(|(path, ..)| *path == long));
        let (_, header, _, target) = entries
            .iter()
            .find(|(path, ..)| *path == "l".repeat(150))
            .expect("long link entry");
        assert_eq!(header.entry_type(), tar::EntryType::Symlink);
        assert_eq!(target.as_deref(), Some(long.as_str()));
    }

    #[test]
    fn packing_the_same_tree_twice_gives_identical_bytes() {
        let dir = tree(&["Dockerfile", "a/b.txt", "c.txt"]);
        let root = dir.path();
        let mut first = Vec::new();
        let mut second = Vec::new();
        pack_context(root, &root.join("Dockerfile"))
            .unwrap()
            .file
            .read_to_end(&mut first)
            .unwrap();
        let tar = pack_context(root, &root.join("Dockerfile")).unwrap();
        assert_eq!(tar.len, first.len() as u64);
        { tar }.file.read_to_end(&mut second).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn an_outside_dockerfile_travels_under_its_generated_name() {
        let context = tree(&["app.js"]);
        let elsewhere = tree(&["build/Dockerfile"]);
        let dockerfile = elsewhere.path().join("build/Dockerfile");
        let root = context.path();
        let tar = pack_context(root, &dockerfile).unwrap();
        assert_eq!(tar.dockerfile, OUTSIDE_DOCKERFILE_NAME);
        let entries = read_tar(tar);
        let find = |name: &str| {
            entries.iter().find(|(path, ..)| path == name).map(|e| &e.2)
        };
        let dockerfile_bytes = find(OUTSIDE_DOCKERFILE_NAME).unwrap();
        assert_eq!(dockerfile_bytes, b"build/Dockerfile");
        let ignore_text = find(IGNORE_FILE).expect(".dockerignore added");
        let rules =
            DockerIgnore::parse(std::str::from_utf8(ignore_text).unwrap())
                .unwrap();
        assert!(rules.is_excluded(OUTSIDE_DOCKERFILE_NAME));
    }

    #[test]
    fn a_missing_dockerfile_is_an_error_naming_it() {
        let dir = tree(&["app.js"]);
        let missing = dir.path().join("Nope.Dockerfile");
        let err = list_context(dir.path(), &missing).unwrap_err();
        assert!(format!("{err:#}").contains("Nope.Dockerfile"));
        let err =
            list_context(&dir.path().join("gone"), &missing).unwrap_err();
        assert!(format!("{err:#}").contains("gone"));
    }

    #[cfg(unix)]
    #[test]
    fn an_unreadable_file_is_an_error_naming_it() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tree(&["Dockerfile", "secret.txt"]);
        let secret = dir.path().join("secret.txt");
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o000))
            .unwrap();
        if File::open(&secret).is_ok() {
            // Running as root: permissions do not stop reads.
            return;
        }
        let root = dir.path();
        let err = pack_context(root, &root.join("Dockerfile")).unwrap_err();
        assert!(format!("{err:#}").contains("secret.txt"), "{err:#}");
    }
}
