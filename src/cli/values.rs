//! Flag value types with `FromStr`: durations, file modes, signal names.

use nix::sys::signal::Signal;
use std::str::FromStr;
use std::time::Duration;

/// A duration written `250ms`, `5s`, `2m`, `1h` or `0`, at most [`MAX_DURATION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationArg(pub Duration);

/// Longest duration any flag accepts: a year is already far past any sane timeout, and
/// capping well below `u64` seconds keeps `now + duration` from overflowing anywhere.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

impl FromStr for DurationArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "0" {
            return Ok(Self(Duration::ZERO));
        }
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        if number.is_empty() {
            return Err(format!("{s:?} is not a duration like 250ms, 5s or 2m"));
        }
        let too_long = || format!("{s:?} is longer than the limit of 366 days");
        // Only digits remain, so a parse failure is an overflow.
        let value: u64 = number.parse().map_err(|_| too_long())?;
        let millis = match unit {
            "ms" => Some(value),
            "s" => value.checked_mul(1_000),
            "m" => value.checked_mul(60_000),
            "h" => value.checked_mul(3_600_000),
            _ => return Err(format!("{s:?} needs a unit: ms, s, m or h")),
        };
        let duration =
            millis.map(Duration::from_millis).filter(|d| *d <= MAX_DURATION).ok_or_else(too_long)?;
        Ok(Self(duration))
    }
}

/// Permission bits written in octal (`0644`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl FromStr for FileMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::snapshot::render::parse_mode(s).map(Self).map_err(|e| format!("{s:?} {e}"))
    }
}

/// A signal by name (`HUP`, `SIGHUP`, `usr1`) or number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalName(pub Signal);

impl FromStr for SignalName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(number) = s.parse::<i32>() {
            return Signal::try_from(number)
                .map(Self)
                .map_err(|_| format!("{number} is not a signal number"));
        }
        let upper = s.to_ascii_uppercase();
        let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
        Signal::from_str(&name).map(Self).map_err(|_| format!("{s:?} is not a signal name like HUP or USR1"))
    }
}
