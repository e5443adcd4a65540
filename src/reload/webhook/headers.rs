//! Extra webhook headers from a file (`--webhook-header-file`): one `Name: value` per line,
//! e.g. `Authorization: Bearer …`. Read at each call, so a rotated token is picked up.
//! Values are marked sensitive and never appear in errors or logs.

use hyper::header::{HeaderName, HeaderValue};
use std::path::Path;
use thiserror::Error;

/// Largest header file read: a few tokens, not a document.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Why the header file cannot be used. Messages name the file and line, never a value.
#[derive(Debug, Error)]
pub(crate) enum Error {
    /// The file could not be read.
    #[error("failed to read the webhook header file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("failed to read the webhook header file {0}: larger than 64 KiB")]
    TooLarge(String),
    /// A line is not `Name: value` with a valid name and value.
    #[error("failed to parse the webhook header file, line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong (never the value).
        reason: &'static str,
    },
}

/// Reads and parses the header file at `path`.
pub(crate) fn read(path: &Path) -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
    let shown = path.display().to_string();
    let read_err = |source| Error::Read { path: shown.clone(), source };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size > MAX_FILE_BYTES {
        return Err(Error::TooLarge(shown));
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    parse(&text)
}

/// Parses `Name: value` lines; blank lines and lines starting with `#` are skipped.
pub(crate) fn parse(text: &str) -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
    let mut headers = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |reason| Error::Line { line: index + 1, reason };
        let (name, value) = line.split_once(':').ok_or_else(|| fail("expected `Name: value`"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| fail("invalid header name"))?;
        if matches!(name.as_str(), "host" | "content-length" | "transfer-encoding" | "connection") {
            return Err(fail("this header is set by configsnap"));
        }
        let mut value =
            HeaderValue::from_str(value.trim()).map_err(|_| fail("invalid header value (not shown)"))?;
        value.set_sensitive(true);
        headers.push((name, value));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_value_lines_become_sensitive_headers() {
        let headers = parse("# token\nAuthorization: Bearer abc\n\nX-Team:  blue \n").expect("valid");
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].0, "authorization");
        assert_eq!(headers[0].1, "Bearer abc");
        assert!(headers[0].1.is_sensitive());
        assert_eq!(headers[1].1, "blue");
    }

    #[test]
    fn bad_lines_are_refused_without_showing_the_value() {
        let cases =
            [("no colon here", "line 1"), ("Bad Name: x", "invalid header name"), ("\nHost: x", "line 2")];
        for (text, needle) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        let err = parse("Authorization: Bearer s3cret\u{7f}").expect_err("control char").to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
