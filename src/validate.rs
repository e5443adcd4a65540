//! Validation of a rendered snapshot before it is swapped in: built-in syntax checks of
//! JSON, YAML and TOML files (`--validate-syntax`) and a user command run on the staged
//! directory (`--validate-cmd`). A snapshot that fails either is never swapped in.

use crate::reload::exec;
use crate::snapshot::{ContentHash, Layout, Object, ObjectFile};
use saphyr_parser::{Event, Parser, ScanError};
use serde::de::IgnoredAny;
use std::ffi::OsString;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Environment variable naming the staged snapshot dir, for the validation command.
pub(crate) const STAGED_DIR_ENV: &str = "CONFIGSNAP_STAGED_DIR";
/// Environment variable holding the staged snapshot's content hash (`sha256:<hex>`).
pub(crate) const HASH_ENV: &str = "CONFIGSNAP_HASH";

/// Why a snapshot was rejected.
#[derive(Debug, Error)]
pub enum Error {
    /// A file is not valid in the format its extension names.
    #[error("failed to parse {path}: {}{message}", at(.position.as_ref()))]
    Syntax {
        /// Relative path of the file in the snapshot.
        path: String,
        /// The format it was checked as.
        format: Format,
        /// Where the parser stopped, when it says.
        position: Option<Position>,
        /// The parser's message.
        message: String,
    },
    /// A file of a checked format is not UTF-8 (JSON, YAML and TOML are text).
    #[error("failed to parse {path}: {position}: invalid UTF-8")]
    Encoding {
        /// Relative path of the file in the snapshot.
        path: String,
        /// The first invalid byte.
        position: Position,
    },
    /// The validation command failed, timed out or could not start.
    #[error("failed to validate the staged snapshot: {0}")]
    Command(String),
}

/// A place in a text file, both numbers 1-based; the column counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line number.
    pub line: usize,
    /// Column number (characters, not bytes).
    pub column: usize,
}

/// A format with a built-in syntax check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.json`: one JSON value; an empty file is invalid (JSON has no empty document).
    Json,
    /// `.yaml`, `.yml`: any number of `---`-separated documents; an empty file is valid.
    Yaml,
    /// `.toml`: a TOML document; an empty file is valid (an empty table).
    Toml,
}

/// The checks to run before a swap.
#[derive(Debug, Clone)]
pub(crate) struct Validator {
    syntax: bool,
    command: Option<String>,
    timeout: Duration,
}

// === impl Error ===

impl Error {
    /// Metric label of the check that failed: `"syntax"` or `"command"`.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Syntax { .. } | Self::Encoding { .. } => "syntax",
            Self::Command(_) => "command",
        }
    }

    /// The error without what may quote file content (the parser's message, the
    /// command's output): file, format, line and column, or the command's exit code.
    #[must_use]
    pub fn summary(&self) -> String {
        match self {
            Self::Syntax { path, format, position: Some(p), .. } => {
                format!("failed to parse {path} as {format}: {p}")
            }
            Self::Syntax { path, format, position: None, .. } => {
                format!("failed to parse {path} as {format}")
            }
            Self::Encoding { .. } => self.to_string(),
            Self::Command(message) => {
                format!("failed to validate the staged snapshot: {}", crate::outcome::without_output(message))
            }
        }
    }
}

/// `"line L, column C: "`, or nothing when the parser gave no position.
fn at(position: Option<&Position>) -> String {
    position.map(|p| format!("{p}: ")).unwrap_or_default()
}

// === impl Position ===

impl Position {
    /// The position of byte `offset` of `text` (clamped to its length; an offset inside
    /// a multi-byte character counts as that character).
    #[must_use]
    pub(crate) fn of_offset(text: &[u8], offset: usize) -> Self {
        let before = &text[..offset.min(text.len())];
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        // Count characters, not bytes: every byte that is not a UTF-8 continuation byte.
        let chars = before[line_start..].iter().filter(|&&b| b & 0xC0 != 0x80).count();
        Self { line, column: chars + 1 }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

// === impl Format ===

impl Format {
    /// The format of a path, by its extension (case-insensitive); `None` is not checked.
    #[must_use]
    pub fn of(path: &str) -> Option<Self> {
        let ext = Path::new(path).extension()?.to_str()?;
        if ext.eq_ignore_ascii_case("json") {
            Some(Self::Json)
        } else if ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml") {
            Some(Self::Yaml)
        } else if ext.eq_ignore_ascii_case("toml") {
            Some(Self::Toml)
        } else {
            None
        }
    }

    /// Checks `text`; on error, the position (when known) and the parser's message.
    fn check(self, text: &str) -> Result<(), (Option<Position>, String)> {
        match self {
            Self::Json => check_json(text),
            Self::Yaml => check_yaml(text),
            Self::Toml => check_toml(text),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Json => "JSON",
            Self::Yaml => "YAML",
            Self::Toml => "TOML",
        })
    }
}

/// One JSON value, nothing after it. Skipped without building a tree (`serde_json` ignores
/// a value iteratively: deep nesting cannot overflow the stack).
fn check_json(text: &str) -> Result<(), (Option<Position>, String)> {
    serde_json::from_str::<IgnoredAny>(text).map(drop).map_err(|err| {
        let message = err.to_string();
        if err.line() == 0 {
            return (None, message);
        }
        // serde_json appends " at line L column C" to its message: keep only the message.
        let suffix = format!(" at line {} column {}", err.line(), err.column());
        let message = message.strip_suffix(&suffix).map_or(message.clone(), str::to_owned);
        let position = Position { line: err.line(), column: err.column() };
        (Some(position), message)
    })
}

/// Every document of the stream. Event by event, without building a tree: aliases are
/// not expanded (no "billion laughs"); nesting past the parser's limit is an error, not a
/// stack overflow. Not checked: duplicate keys, tags' meaning.
fn check_yaml(text: &str) -> Result<(), (Option<Position>, String)> {
    let mut parser = Parser::new_from_str(text);
    while let Some(event) = parser.next_event() {
        match event {
            Ok((Event::StreamEnd, _)) => break,
            Ok(_) => {}
            Err(err) => return Err(yaml_error(&err)),
        }
    }
    Ok(())
}

fn yaml_error(err: &ScanError) -> (Option<Position>, String) {
    let mark = err.marker();
    let position = Position {
        line: mark.line(),
        // saphyr columns are 0-based characters.
        column: mark.col() + 1,
    };
    (Some(position), err.info().to_owned())
}

/// A whole TOML document, with its semantic rules (duplicate keys, redefined tables).
fn check_toml(text: &str) -> Result<(), (Option<Position>, String)> {
    text.parse::<toml::Table>().map(drop).map_err(|err| {
        let position = err.span().map(|span| Position::of_offset(text.as_bytes(), span.start));
        (position, err.message().trim().to_owned())
    })
}

/// Checks one file by its extension; files of other extensions always pass.
pub(crate) fn check_file(path: &str, content: &[u8]) -> Result<(), Error> {
    let Some(format) = Format::of(path) else {
        return Ok(());
    };
    let text = std::str::from_utf8(content).map_err(|err| Error::Encoding {
        path: path.to_owned(),
        position: Position::of_offset(content, err.valid_up_to()),
    })?;
    format.check(text).map_err(|(position, message)| Error::Syntax {
        path: path.to_owned(),
        format,
        position,
        message,
    })
}

// === impl Validator ===

impl Validator {
    /// A validator; `syntax` turns on the built-in checks, `command` (run directly, or with
    /// `sh -c` when it has shell syntax: see [`exec::argv`]) is killed after `timeout`.
    #[must_use]
    pub(crate) fn new(syntax: bool, command: Option<String>, timeout: Duration) -> Self {
        Self { syntax, command, timeout }
    }

    #[cfg(test)]
    /// True when any check is configured (the caller can skip staging otherwise).
    #[must_use]
    pub(crate) fn is_enabled(&self) -> bool {
        self.syntax || self.command.is_some()
    }

    /// True when a command is configured (it needs the snapshot staged on disk).
    #[must_use]
    pub(crate) fn has_command(&self) -> bool {
        self.command.is_some()
    }

    /// Built-in syntax checks of the `.json`, `.yaml`/`.yml` and `.toml` files
    /// (extension, case-insensitive) of `objects` — the objects a snapshot adds or
    /// changes, so unchanged ones are not parsed again; pure, no I/O. Files are checked in
    /// path order and the first failure is returned. `Ok` when syntax checks are off.
    pub(crate) fn check_syntax(&self, objects: &[Arc<Object>], layout: Layout) -> Result<(), Error> {
        if !self.syntax {
            return Ok(());
        }
        let mut files: Vec<(String, &Object, &ObjectFile)> = objects
            .iter()
            .flat_map(|o| o.files.iter().map(move |f| (o.path_of(&f.key, layout), &**o, f)))
            .filter(|(path, _, _)| Format::of(path).is_some())
            .collect();
        files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        files.iter().try_for_each(|(path, object, file)| match object.read(file) {
            Ok(content) => check_file(path, &content),
            Err(error) => Err(Error::Syntax {
                path: path.clone(),
                format: Format::of(path).unwrap_or(Format::Json),
                position: None,
                message: format!("could not read it back: {error}"),
            }),
        })
    }

    /// Runs the command (no shell unless it needs one; `$CONFIGSNAP_STAGED_DIR` in its words
    /// is expanded either way) with [`STAGED_DIR_ENV`] and [`HASH_ENV`] set, killed
    /// after the timeout; exit 0 means good. `Ok` when no command is configured.
    pub(crate) async fn check_command(&self, staged_dir: &Path, hash: ContentHash) -> Result<(), Error> {
        let Some(command) = &self.command else {
            return Ok(());
        };
        let env =
            [(STAGED_DIR_ENV, OsString::from(staged_dir)), (HASH_ENV, OsString::from(hash.to_string()))];
        exec::run("validation", command, &env, self.timeout)
            .await
            .map(drop)
            .map_err(|f| Error::Command(f.message))
    }
}

#[cfg(test)]
#[path = "validate/tests.rs"]
mod tests;
