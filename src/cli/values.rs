//! Flag value types with `FromStr`: durations, file modes, signal names.

use nix::sys::signal::Signal;
use std::str::FromStr;
use std::time::Duration;

/// A duration written `250ms`, `5s`, `2m`, `1h` or `0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationArg(pub Duration);

impl FromStr for DurationArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "0" {
            return Ok(Self(Duration::ZERO));
        }
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let value: u64 =
            number.parse().map_err(|_| format!("{s:?} is not a duration like 250ms, 5s or 2m"))?;
        let duration = match unit {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value * 60),
            "h" => Duration::from_secs(value * 3600),
            _ => return Err(format!("{s:?} needs a unit: ms, s, m or h")),
        };
        Ok(Self(duration))
    }
}

/// Permission bits written in octal (`0644`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl FromStr for FileMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::snapshot::render::parse_mode(s)
            .map(Self)
            .ok_or_else(|| format!("{s:?} is not an octal file mode like 0644"))
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
