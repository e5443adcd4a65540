//! Key and path rules: which names may become files in a snapshot.
//!
//! The rules are kubelet's `AtomicWriter` path rules (relative, no `..` element, no element
//! starting with `..`, no empty element, element ≤ 255 bytes, path ≤ 4096 bytes) plus ours:
//! no NUL byte anywhere, and a ConfigMap/Secret *key* (as opposed to a nested path from a
//! mounted directory) may not contain `/`.

use thiserror::Error;

/// Longest path accepted, in bytes (Linux `PATH_MAX`, as kubelet).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest single path element accepted, in bytes (Linux `NAME_MAX`, as kubelet).
pub const MAX_ELEMENT_BYTES: usize = 255;

/// Why a key or path was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The key is the empty string.
    #[error("key is empty")]
    Empty,
    /// The path is absolute.
    #[error("key {0:?} is an absolute path")]
    Absolute(String),
    /// The path is longer than [`MAX_PATH_BYTES`].
    #[error("key is {0} bytes long, the limit is {MAX_PATH_BYTES}")]
    PathTooLong(usize),
    /// One element is longer than [`MAX_ELEMENT_BYTES`].
    #[error("key {key:?} has an element of {len} bytes, the limit is {MAX_ELEMENT_BYTES}")]
    ElementTooLong {
        /// The offending key (truncated for logs).
        key: String,
        /// Length of the element in bytes.
        len: usize,
    },
    /// The path has a `..` element.
    #[error("key {0:?} contains a '..' element")]
    DotDot(String),
    /// The path starts with `..` (reserved for the writer's own entries such as `..data`).
    #[error("key {0:?} starts with '..', which is reserved")]
    ReservedPrefix(String),
    /// The path has an empty element (`a//b`, trailing `/`) or a `.` element.
    #[error("key {0:?} has an empty or '.' element")]
    EmptyElement(String),
    /// The key contains a NUL byte.
    #[error("key contains a NUL byte")]
    Nul,
    /// A ConfigMap/Secret key contains `/`.
    #[error("key {0:?} contains '/', which is not allowed in a ConfigMap or Secret key")]
    Slash(String),
}

/// Checks a relative path that will be written under a snapshot directory.
///
/// Nested paths (`a/b/c.txt`) are allowed; see [`validate_key`] for object keys.
pub fn validate_path(path: &str) -> Result<(), Error> {
    if path.is_empty() {
        return Err(Error::Empty);
    }
    if path.contains('\0') {
        return Err(Error::Nul);
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(Error::PathTooLong(path.len()));
    }
    if path.starts_with('/') {
        return Err(Error::Absolute(shorten(path)));
    }
    if path.starts_with("..") {
        return Err(Error::ReservedPrefix(shorten(path)));
    }
    for element in path.split('/') {
        if element.len() > MAX_ELEMENT_BYTES {
            return Err(Error::ElementTooLong { key: shorten(path), len: element.len() });
        }
        match element {
            ".." => return Err(Error::DotDot(shorten(path))),
            "" | "." => return Err(Error::EmptyElement(shorten(path))),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a ConfigMap or Secret key: the path rules, and no `/`.
pub fn validate_key(key: &str) -> Result<(), Error> {
    validate_path(key)?;
    if key.contains('/') {
        return Err(Error::Slash(shorten(key)));
    }
    Ok(())
}

/// Keeps log lines readable when a hostile key is huge.
fn shorten(s: &str) -> String {
    const LIMIT: usize = 80;
    if s.len() <= LIMIT {
        return s.to_owned();
    }
    let mut end = LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
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
                shorten(path),
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
        assert_eq!(validate_path(&over), Err(Error::PathTooLong(4097)));
    }

    #[test]
    fn element_of_255_bytes_is_accepted() {
        assert!(validate_key(&"k".repeat(255)).is_ok());
        assert!(matches!(validate_key(&"k".repeat(256)), Err(Error::ElementTooLong { len: 256, .. })));
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
