//! Rewriting the part of a text file between two marker comments, so
//! `imgopt report --update README.md` owns one block of the README and
//! not a byte more.
//!
//! The markers are HTML comments, invisible when the Markdown is
//! rendered. Everything up to and including the start marker's line, and
//! everything from the end marker on, is kept byte for byte; the block
//! between them becomes exactly the new content. A second rewrite with
//! the same content returns the same text, so reruns leave no diff.
//!
//! A README that documents the markers shows them in code: a fenced
//! block or a `code` span. Those are text, not markers, so they are
//! skipped; finding them takes a Markdown parser (pulldown-cmark), since
//! fences and backtick spans have rules of their own (a longer fence,
//! two backticks around one).

use std::fmt;
use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag};

/// The comment that opens the generated block.
pub const START: &str = "<!-- imgopt:report:start -->";

/// The comment that closes it.
pub const END: &str = "<!-- imgopt:report:end -->";

/// Why the block cannot be found; the file must not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkerError {
    /// A marker does not occur.
    Missing(&'static str),
    /// A marker occurs more than once.
    Duplicated(&'static str, usize),
    /// The end marker comes before the start marker.
    Misordered,
}

impl fmt::Display for MarkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MarkerError::Missing(marker) => write!(
                f,
                "marker {marker} not found; add the two lines {START} and \
                 {END} where the report goes (markers shown in code \
                 blocks or `code` spans do not count)"
            ),
            MarkerError::Duplicated(marker, n) => write!(
                f,
                "marker {marker} occurs {n} times; keep exactly one pair"
            ),
            MarkerError::Misordered => {
                write!(f, "marker {END} comes before {START}")
            }
        }
    }
}

/// `text` with the block between the markers replaced by `content`.
///
/// The block starts right after the start marker's line ends and stops
/// where the end marker's line starts (the end marker may share a line
/// with text before it, which then belongs to the block). `content` gets
/// a final newline if it lacks one, so the end marker keeps its own line.
pub fn replace_block(
    text: &str,
    content: &str,
) -> Result<String, MarkerError> {
    let code = code_ranges(text);
    let start = find_one(text, START, &code)?;
    let end = find_one(text, END, &code)?;
    if end < start + START.len() {
        return Err(MarkerError::Misordered);
    }

    // The block begins after the start marker's line.
    let after_start = start + START.len();
    let block_start = match text[after_start..end].find('\n') {
        Some(i) => after_start + i + 1,
        None => after_start,
    };
    // ...and ends at the start of the end marker's line.
    let line_start = text[..end].rfind('\n').map_or(0, |i| i + 1);
    let block_end = line_start.max(block_start);

    // Keep the file's line endings: a start marker whose line ends in
    // CRLF gets a block of CRLF lines.
    let after_marker = &text[start + START.len()..];
    let crlf = after_marker.split('\n').next().is_some_and(|line| {
        line.ends_with('\r') && after_marker.contains('\n')
    });
    let converted;
    let content = if crlf {
        converted = content.replace("\r\n", "\n").replace('\n', "\r\n");
        converted.as_str()
    } else {
        content
    };
    let newline = if crlf { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(text.len() + content.len());
    out.push_str(&text[..block_start]);
    if block_start == after_start {
        // The markers share a line: give the block lines of its own.
        out.push_str(newline);
    }
    out.push_str(content);
    if !content.is_empty() && !content.ends_with('\n') {
        out.push_str(newline);
    }
    out.push_str(&text[block_end..]);
    Ok(out)
}

/// The byte ranges of fenced code blocks and inline code spans.
// Known limit: indented code blocks (four spaces) are not skipped: a
// marker indented in a list item would look like one to a simple reader,
// and the brief for this rule names fences and spans only.
fn code_ranges(text: &str) -> Vec<Range<usize>> {
    Parser::new(text)
        .into_offset_iter()
        .filter_map(|(event, range)| match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_)))
            | Event::Code(_) => Some(range),
            _ => None,
        })
        .collect()
}

/// The one offset of `marker` outside the `code` ranges.
fn find_one(
    text: &str,
    marker: &'static str,
    code: &[Range<usize>],
) -> Result<usize, MarkerError> {
    let mut found = text
        .match_indices(marker)
        .map(|(i, _)| i)
        .filter(|i| !code.iter().any(|r| r.contains(i)));
    let first = found.next().ok_or(MarkerError::Missing(marker))?;
    let more = found.count();
    if more > 0 {
        return Err(MarkerError::Duplicated(marker, more + 1));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crlf_file_gets_crlf_lines_in_its_block() {
        let text = format!("a\r\n{START}\r\nold\r\n{END}\r\nz\r\n");

        let out = replace_block(&text, "one\ntwo\n").unwrap();

        assert_eq!(
            out,
            format!("a\r\n{START}\r\none\r\ntwo\r\n{END}\r\nz\r\n")
        );
        assert_eq!(replace_block(&out, "one\ntwo\n").unwrap(), out);
    }
    use proptest::prelude::*;

    /// Text that may hold anything but a marker (or half of one) and
    /// anything that starts code (a backtick, or a `~~~` fence), which
    /// would hide the markers around it; [`code_around`] covers that.
    fn free_text() -> impl Strategy<Value = String> {
        "(?s).{0,80}".prop_filter("no markers or code", |s| {
            !s.contains("<!--") && !s.contains(['`', '~'])
        })
    }

    /// Markdown that shows both markers in code, as a README that
    /// documents them does: fenced blocks of either kind and length,
    /// and inline spans of one or two backticks.
    fn code_around() -> impl Strategy<Value = String> {
        let fence = prop_oneof![
            Just("```".to_string()),
            Just("````".to_string()),
            Just("~~~".to_string()),
        ];
        let span = prop_oneof![Just("`"), Just("``")];
        (fence, span, free_text()).prop_map(|(fence, tick, words)| {
            let words = words.replace('\n', " ");
            format!(
                "{fence}markdown\n{START}\n{words}\n{END}\n{fence}\n\n\
                 Put {tick}{START}{tick} and {tick}{END}{tick} where \
                 the table goes.\n\n"
            )
        })
    }

    fn document(before: &str, block: &str, after: &str) -> String {
        format!("{before}{START}\n{block}{END}{after}")
    }

    proptest! {
        #[test]
        fn bytes_outside_the_markers_are_kept(
            before in free_text(),
            block in free_text(),
            after in free_text(),
            content in free_text(),
        ) {
            let text = document(&before, &block, &after);

            let out = replace_block(&text, &content).unwrap();

            let head = format!("{before}{START}\n");
            let tail = format!("{END}{after}");
            prop_assert!(out.starts_with(&head));
            prop_assert!(out.ends_with(&tail));
            prop_assert!(out.contains(&content));
        }

        #[test]
        fn a_second_rewrite_changes_nothing(
            before in free_text(),
            block in free_text(),
            after in free_text(),
            content in free_text(),
        ) {
            let text = document(&before, &block, &after);

            let once = replace_block(&text, &content).unwrap();
            let twice = replace_block(&once, &content).unwrap();

            prop_assert_eq!(once, twice);
        }

        #[test]
        fn markers_on_one_line_still_rewrite_idempotently(
            before in free_text(),
            content in free_text(),
        ) {
            let text = format!("{before}{START} {END} tail");

            let once = replace_block(&text, &content).unwrap();

            let head = format!("{before}{START}");
            let tail = format!("{END} tail");
            prop_assert!(once.starts_with(&head));
            prop_assert!(once.ends_with(&tail));
            prop_assert_eq!(replace_block(&once, &content).unwrap(), once);
        }

        #[test]
        fn markers_shown_in_code_are_not_markers(
            docs in code_around(),
            more_docs in code_around(),
            // A line starting `<?` or `<div` opens a CommonMark HTML block
            // that swallows the fences after it: real Markdown, but not
            // what this property is about.
            block in free_text().prop_filter("no HTML", |s| !s.contains('<')),
            content in free_text().prop_filter("no HTML", |s| !s.contains('<')),
        ) {
            let text = format!("{docs}{START}\n{block}{END}\n{more_docs}");

            let once = replace_block(&text, &content).unwrap();

            let head = format!("{docs}{START}\n");
            let tail = format!("{END}\n{more_docs}");
            prop_assert!(once.starts_with(&head));
            prop_assert!(once.ends_with(&tail));
            prop_assert!(once.contains(&content));
            prop_assert_eq!(replace_block(&once, &content).unwrap(), once);
        }

        #[test]
        fn only_code_copies_of_the_markers_are_not_enough(
            docs in code_around(),
        ) {
            prop_assert_eq!(
                replace_block(&docs, "x"),
                Err(MarkerError::Missing(START))
            );
        }

        #[test]
        fn a_missing_or_extra_marker_is_refused(
            before in free_text(),
            after in free_text(),
        ) {
            let only_start = format!("{before}{START}{after}");
            let only_end = format!("{before}{END}{after}");
            let twice =
                format!("{before}{START}\n{END}\n{START}\n{END}{after}");
            let reversed = format!("{before}{END}\n{START}{after}");

            prop_assert_eq!(
                replace_block(&only_start, "x"),
                Err(MarkerError::Missing(END))
            );
            prop_assert_eq!(
                replace_block(&only_end, "x"),
                Err(MarkerError::Missing(START))
            );
            prop_assert_eq!(
                replace_block(&twice, "x"),
                Err(MarkerError::Duplicated(START, 2))
            );
            prop_assert_eq!(
                replace_block(&reversed, "x"),
                Err(MarkerError::Misordered)
            );
        }
    }

    #[test]
    fn the_block_is_exactly_the_new_content() {
        let text = format!("# Title\n\n{START}\nold table\n{END}\nmore\n");

        let out = replace_block(&text, "| a |\n| - |").unwrap();

        assert_eq!(
            out,
            format!("# Title\n\n{START}\n| a |\n| - |\n{END}\nmore\n")
        );
    }

    #[test]
    fn code_blocks_and_spans_hide_markers_and_their_ends_are_respected() {
        let text = format!(
            "Use ``{START} ` {END}`` here.\n\n\
             ~~~~\n{START}\n~~~\n{END}\n~~~~\n\n\
             - item\n\n  ```\n  {START}\n  ```\n\n\
             {START}\nold\n{END}\nafter `{END}`\n"
        );

        let out = replace_block(&text, "new\n").unwrap();

        let (head, _) = text.rsplit_once(&format!("{START}\nold")).unwrap();
        assert_eq!(out, format!("{head}{START}\nnew\n{END}\nafter `{END}`\n"));
    }

    #[test]
    fn an_unclosed_fence_hides_what_follows_it() {
        let text = format!("```\n{START}\n{END}\n");

        let err = replace_block(&text, "x").unwrap_err();

        assert_eq!(err, MarkerError::Missing(START));
        assert!(err.to_string().contains("code blocks"), "{err}");
    }

    #[test]
    fn the_error_names_the_markers_to_add() {
        let err = replace_block("no markers here", "x").unwrap_err();

        assert!(err.to_string().contains(START), "{err}");
        assert!(err.to_string().contains(END), "{err}");
    }
}
