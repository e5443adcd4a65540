//! File modes: the `--file-mode` flags and the `configsnap.io/file-mode` annotation.

use thiserror::Error;

/// Why a file mode (`--file-mode` or the annotation) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ModeError {
    /// Not octal digits, or more than permission bits.
    #[error("is not an octal mode like \"0640\"")]
    NotOctal,
    /// setuid, setgid or sticky bits: never wanted on config files.
    #[error("sets setuid, setgid or sticky bits; use permission bits only, like \"0640\"")]
    Special,
    /// Writable by every user of the shared volume.
    #[error("makes files writable by every user (o+w); use a mode like \"0644\" or \"0640\"")]
    WorldWritable,
    /// Mode 0: nobody could read the files.
    #[error("is 0: nobody could read the files; use a mode like \"0644\"")]
    Zero,
}

/// Parses and checks an octal permission string: `"0640"`, `"640"` or `"0o640"`. Refused:
/// anything not octal, setuid/setgid/sticky bits, world-writable (`o+w`) and `0`.
pub(crate) fn parse_mode(text: &str) -> Result<u32, ModeError> {
    let digits = text.trim();
    let digits = digits.strip_prefix("0o").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(ModeError::NotOctal);
    }
    let mode = u32::from_str_radix(digits, 8).map_err(|_| ModeError::NotOctal)?;
    match mode {
        m if m > 0o7777 => Err(ModeError::NotOctal),
        m if m > 0o777 => Err(ModeError::Special),
        m if m & 0o002 != 0 => Err(ModeError::WorldWritable),
        0 => Err(ModeError::Zero),
        m => Ok(m),
    }
}
