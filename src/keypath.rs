//! Key and path rules: which names may become files in a snapshot.
//!
//! The rules are kubelet's `AtomicWriter` path rules (relative, no `..` element, no element
//! starting with `..`, no empty element, element ≤ 255 bytes, path ≤ 4096 bytes) plus ours:
//! no NUL byte anywhere, and a ConfigMap/Secret *key* (as opposed to a nested path from a
//! mounted directory) may not contain `/`.
//!
//! Objects from the API must also pass the API server's own rules, because a proxy, an
//! older server or a hostile endpoint may send what a real one refuses: keys match
//! `[-._a-zA-Z0-9]+` and are at most 253 bytes ([`validate_key`]), object names are DNS
//! subdomains ([`validate_name`]). Every error shows the offending string escaped (control
//! characters as `\n`, `\0`, `\u{1b}`) and shortened ([`escape`]), so it can neither forge
//! a log line nor flood one.

use thiserror::Error;

/// Longest path accepted, in bytes (Linux `PATH_MAX`, as kubelet).
pub(crate) const MAX_PATH_BYTES: usize = 4096;
/// Longest single path element accepted, in bytes (Linux `NAME_MAX`, as kubelet).
pub(crate) const MAX_ELEMENT_BYTES: usize = 255;
/// Longest ConfigMap/Secret key and object name the API accepts (a DNS subdomain's limit).
pub(crate) const MAX_API_NAME_BYTES: usize = 253;
/// Untrusted strings are cut to this many bytes in errors and logs.
const SHOWN_BYTES: usize = 80;

/// Why a key or path was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The key is the empty string.
    #[error("key is empty")]
    Empty,
    /// The path is absolute.
    #[error("key {0} is an absolute path")]
    Absolute(String),
    /// The path is longer than [`MAX_PATH_BYTES`].
    #[error("key {key} is {len} bytes long, the limit is {MAX_PATH_BYTES}")]
    PathTooLong {
        /// The offending key, escaped and shortened.
        key: String,
        /// Its length in bytes.
        len: usize,
    },
    /// One element is longer than [`MAX_ELEMENT_BYTES`].
    #[error("key {key} has an element of {len} bytes, the limit is {MAX_ELEMENT_BYTES}")]
    ElementTooLong {
        /// The offending key, escaped and shortened.
        key: String,
        /// Length of the element in bytes.
        len: usize,
    },
    /// The path has a `..` element.
    #[error("key {0} contains a '..' element")]
    DotDot(String),
    /// The path starts with `..` (reserved for the writer's own entries such as `..data`).
    #[error("key {0} starts with '..', which is reserved")]
    ReservedPrefix(String),
    /// The path has an empty element (`a//b`, trailing `/`) or a `.` element.
    #[error("key {0} has an empty or '.' element")]
    EmptyElement(String),
    /// The key contains a NUL byte.
    #[error("key {0} contains a NUL byte")]
    Nul(String),
    /// A ConfigMap/Secret key contains `/`.
    #[error("key {0} contains '/', which is not allowed in a ConfigMap or Secret key")]
    Slash(String),
    /// A ConfigMap/Secret key has a character outside the API's `[-._a-zA-Z0-9]`.
    #[error("key {0} has a character outside [-._a-zA-Z0-9], which the Kubernetes API refuses")]
    KeyCharacters(String),
    /// A ConfigMap/Secret key is longer than [`MAX_API_NAME_BYTES`].
    #[error("key {key} is {len} bytes long, the Kubernetes API's limit is {MAX_API_NAME_BYTES}")]
    KeyTooLong {
        /// The offending key, escaped and shortened.
        key: String,
        /// Its length in bytes.
        len: usize,
    },
    /// An object name that is not a DNS subdomain (lowercase alphanumerics, `-`, `.`,
    /// starting and ending alphanumeric, at most 253 bytes).
    #[error("object name {0} is not a DNS subdomain (lowercase a-z, 0-9, '-', '.', at most 253 bytes)")]
    Name(String),
}

/// Checks a relative path that will be written under a snapshot directory.
///
/// Nested paths (`a/b/c.txt`) are allowed; see [`validate_key`] for object keys.
pub(crate) fn validate_path(path: &str) -> Result<(), Error> {
    if path.is_empty() {
        return Err(Error::Empty);
    }
    if path.contains('\0') {
        return Err(Error::Nul(escape(path)));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(Error::PathTooLong { key: escape(path), len: path.len() });
    }
    if path.starts_with('/') {
        return Err(Error::Absolute(escape(path)));
    }
    if path.starts_with("..") {
        return Err(Error::ReservedPrefix(escape(path)));
    }
    for element in path.split('/') {
        if element.len() > MAX_ELEMENT_BYTES {
            return Err(Error::ElementTooLong { key: escape(path), len: element.len() });
        }
        match element {
            ".." => return Err(Error::DotDot(escape(path))),
            "" | "." => return Err(Error::EmptyElement(escape(path))),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a ConfigMap or Secret key: the path rules, no `/`, and the API's own rule
/// (`[-._a-zA-Z0-9]+`, at most [`MAX_API_NAME_BYTES`]).
pub(crate) fn validate_key(key: &str) -> Result<(), Error> {
    validate_path(key)?;
    if key.contains('/') {
        return Err(Error::Slash(escape(key)));
    }
    if !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) {
        return Err(Error::KeyCharacters(escape(key)));
    }
    if key.len() > MAX_API_NAME_BYTES {
        return Err(Error::KeyTooLong { key: escape(key), len: key.len() });
    }
    Ok(())
}

/// Checks an object name against the API's rule for ConfigMap and Secret names: a DNS
/// subdomain (RFC 1123): lowercase alphanumerics, `-` and `.`, starting and ending with
/// an alphanumeric, at most [`MAX_API_NAME_BYTES`].
pub(crate) fn validate_name(name: &str) -> Result<(), Error> {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_API_NAME_BYTES
        && bytes.iter().all(|&b| alnum(b) || b == b'-' || b == b'.')
        && bytes.first().copied().is_some_and(alnum)
        && bytes.last().copied().is_some_and(alnum);
    if valid { Ok(()) } else { Err(Error::Name(escape(name))) }
}

/// An untrusted string made safe for one log line: shortened to about 80 bytes (with `…`
/// and the full length when cut) and quoted with every control character escaped.
#[must_use]
pub(crate) fn escape(s: &str) -> String {
    if s.len() <= SHOWN_BYTES {
        return format!("{s:?}");
    }
    let mut end = SHOWN_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &s[..end], s.len())
}

/// Displays an untrusted string for a log field: as is, except that control characters
/// are escaped (`\n`, `\u{1b}`) and more than 256 bytes are cut with `…`. Unlike
/// [`escape`] it adds no quotes, so JSON logs keep plain values; in text logs a newline or
/// ESC in a name can neither forge a line nor colour one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Escaped<'a>(pub &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const LIMIT: usize = 256;
        for (at, c) in self.0.char_indices() {
            if at >= LIMIT {
                return f.write_str("…");
            }
            if c.is_control() {
                write!(f, "{}", c.escape_debug())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_path_table() {
        let long_element = "a".repeat(256);
        let long_path = "a/".repeat(2048) + "b";
        let cases: &[(&str, bool)] = &[
            ("i/am/well/behaved.txt", true),
            (".dotfile", true),
            ("nginx.conf", true),
            ("a.b..c", true),
            ("..sneaky.txt", false),
            ("..data", false),
            ("/dev/null", false),
            ("/etc/passwd", false),
            ("hello/../etc/somethingbad", false),
            ("../x", false),
            ("", false),
            (&long_element, false),
            (&long_path, false),
            ("a//b", false),
            ("a/./b", false),
            ("trailing/", false),
            ("nul\0byte", false),
        ];
        for (path, ok) in cases {
            assert_eq!(
                validate_path(path).is_ok(),
                *ok,
                "path {:?} -> {:?}",
                escape(path),
                validate_path(path)
            );
        }
    }

    #[test]
    fn path_of_exactly_4096_bytes_is_accepted_and_4097_rejected() {
        let ok = format!("{}/{}", "a".repeat(255), "b".repeat(255)).repeat(1);
        assert!(validate_path(&ok).is_ok());
        let base = "abcdefgh/".repeat(455); // 4095 bytes
        let exact = format!("{base}c");
        assert_eq!(exact.len(), 4096);
        assert!(validate_path(&exact).is_ok());
        let over = format!("{base}cd");
        assert!(matches!(validate_path(&over), Err(Error::PathTooLong { len: 4097, .. })));
    }

    #[test]
    fn element_of_255_bytes_is_a_valid_path_but_keys_stop_at_253() {
        assert!(validate_path(&"k".repeat(255)).is_ok());
        assert!(matches!(validate_path(&"k".repeat(256)), Err(Error::ElementTooLong { len: 256, .. })));
        assert!(validate_key(&"k".repeat(253)).is_ok());
        assert!(matches!(validate_key(&"k".repeat(254)), Err(Error::KeyTooLong { len: 254, .. })));
    }

    #[test]
    fn keys_follow_the_api_character_rule() {
        for ok in ["nginx.conf", "a-b_c.D9", ".dotfile", "a..b"] {
            assert_eq!(validate_key(ok), Ok(()), "{ok:?}");
        }
        for bad in ["new\nline", "esc\u{1b}[31m", "sp ace", "tab\t", "é.conf", "a:b", "x*"] {
            assert!(matches!(validate_key(bad), Err(Error::KeyCharacters(_))), "{bad:?}");
        }
    }

    #[test]
    fn object_names_must_be_dns_subdomains() {
        let longest = "a".repeat(253);
        for ok in ["web", "web-1", "a.b.c", "0", longest.as_str()] {
            assert_eq!(validate_name(ok), Ok(()), "{ok:?}");
        }
        let too_long = "a".repeat(254);
        for bad in ["", "Web", "a/b", "a\nb", "-a", "a-", ".a", "a_b", "..data", too_long.as_str()] {
            assert!(matches!(validate_name(bad), Err(Error::Name(_))), "{bad:?}");
        }
    }

    #[test]
    fn errors_show_the_key_escaped_and_shortened() {
        let nul = validate_key("a\0b").expect_err("NUL");
        assert!(nul.to_string().contains(r#""a\0b""#), "{nul}");
        let long = validate_key(&"x".repeat(4097)).expect_err("too long");
        let text = long.to_string();
        assert!(text.contains("xxxx") && text.contains("4097 bytes") && text.len() < 200, "{text}");
        let forged = validate_name("web\nlevel=ERROR forged").expect_err("newline");
        assert!(!forged.to_string().contains('\n'), "{forged}");
        assert!(forged.to_string().contains(r"web\n"), "{forged}");
    }

    #[test]
    fn escaped_log_fields_keep_plain_names_and_defuse_control_characters() {
        assert_eq!(Escaped("web-1").to_string(), "web-1");
        assert_eq!(Escaped("evil\nFORGED \u{1b}[31m").to_string(), r"evil\nFORGED \u{1b}[31m");
        let long = Escaped(&"é".repeat(1000)).to_string();
        assert!(long.ends_with('…') && long.len() < 300, "{}", long.len());
    }

    #[test]
    fn keys_may_not_contain_slash_but_paths_may() {
        assert!(validate_path("a/b").is_ok());
        assert!(matches!(validate_key("a/b"), Err(Error::Slash(_))));
        assert!(validate_key(".dotfile").is_ok());
    }

    #[test]
    fn huge_keys_are_shortened_in_errors() {
        let err = validate_key(&format!("/{}", "x".repeat(10_000))).unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
    }
}
