//! Flag value types with `FromStr`: durations, file modes, signal names.

use nix::sys::signal::Signal;
use std::str::FromStr;
use std::time::Duration;

/// A duration in Go's form, as Kubernetes tools write them: one or more decimal numbers,
/// each with an optional fraction and a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), e.g.
/// `250ms`, `5s`, `1m30s`, `1h2m3.5s`; or a bare `0`. No sign (no negative waits); a total
/// over `u64::MAX` nanoseconds (~584 years) is refused rather than wrapped. At most [`MAX_DURATION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationArg(pub Duration);

/// Longest duration any flag accepts: a year is already far past any sane timeout, and
/// capping well below `u64` seconds keeps `now + duration` from overflowing anywhere.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

impl FromStr for DurationArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let duration = parse_go_duration(s.trim())?;
        if duration > MAX_DURATION {
            return Err(format!("{s:?} is longer than the limit of 366 days"));
        }
        Ok(Self(duration))
    }
}

/// Nanoseconds in one of each unit Go's `time.ParseDuration` accepts.
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // micro sign, as Go accepts
    ("\u{3bc}s", 1_000), // Greek mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration like 250ms, 5s, 1m30s or 1h2m3.5s");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (int, after) = rest.split_at(int_end);
        let (frac, after) = match after.strip_prefix('.') {
            Some(tail) => tail.split_at(tail.find(|c: char| !c.is_ascii_digit()).unwrap_or(tail.len())),
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        let unit_end = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, tail) = after.split_at(unit_end);
        if unit.is_empty() {
            return Err(format!("{s:?} needs a unit: ns, us, ms, s, m or h"));
        }
        let &(_, scale) = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .ok_or_else(|| format!("{s:?}: unknown unit {unit:?} (ns, us, ms, s, m or h)"))?;
        let overflow = || format!("{s:?} is too long a duration");
        let whole: u128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| overflow())? };
        let mut part = whole.checked_mul(scale).ok_or_else(overflow)?;
        // The fraction: digits past nanosecond precision are dropped, as Go does.
        let mut divisor: u128 = 1;
        for digit in frac.bytes().take(30) {
            divisor *= 10;
            part = part.checked_add(u128::from(digit - b'0') * scale / divisor).ok_or_else(overflow)?;
        }
        total = total.checked_add(part).ok_or_else(overflow)?;
        if total > u128::from(u64::MAX) {
            return Err(overflow());
        }
        rest = tail;
    }
    let nanos = u64::try_from(total).map_err(|_| bad())?;
    Ok(Duration::from_nanos(nanos))
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
