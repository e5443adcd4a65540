//! The standard `process_*` metrics every Prometheus client library exports, read from
//! `/proc/self` at scrape time (nothing to update in between), as OpenMetrics text.

use std::fmt::Write as _;

/// Clock ticks per second in `/proc/*/stat` (`USER_HZ`): 100 on every Linux architecture
/// configsnap ships for (the kernel scales to it whatever `CONFIG_HZ` is).
const USER_HZ: f64 = 100.0;

/// One reading of the process's counters. A field is `None` when `/proc` did not say
/// (e.g. no procfs mounted): its metric is left out rather than reported as 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Sample {
    /// User + system CPU time, seconds.
    pub(crate) cpu_seconds: Option<f64>,
    /// Resident set size, bytes.
    pub(crate) resident_bytes: Option<u64>,
    /// Virtual memory size, bytes.
    pub(crate) virtual_bytes: Option<u64>,
    /// Open file descriptors.
    pub(crate) open_fds: Option<u64>,
    /// Soft limit of open file descriptors.
    pub(crate) max_fds: Option<u64>,
    /// Start time, seconds since the Unix epoch.
    pub(crate) start_time_seconds: Option<f64>,
}

// === impl Sample ===

impl Sample {
    /// Reads `/proc/self`.
    #[must_use]
    pub(crate) fn read() -> Self {
        let proc = |path: &str| std::fs::read_to_string(path).ok();
        let stat = proc("/proc/self/stat").and_then(|text| parse_stat(&text));
        let boot_time = proc("/proc/stat").and_then(|text| field_after(&text, "btime"));
        let status = proc("/proc/self/status");
        let kib = |key| status.as_deref().and_then(|s| field_after(s, key)).map(|k| k * 1024);
        let open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|dir| dir.count() as u64);
        #[allow(clippy::cast_precision_loss)] // Tick counts and epoch seconds fit an f64 exactly.
        Self {
            cpu_seconds: stat.map(|s| (s.utime + s.stime) as f64 / USER_HZ),
            resident_bytes: kib("VmRSS:"),
            virtual_bytes: kib("VmSize:"),
            open_fds,
            max_fds: proc("/proc/self/limits").and_then(|text| max_open_files(&text)),
            start_time_seconds: stat
                .zip(boot_time)
                .map(|(s, boot)| boot as f64 + s.start_ticks as f64 / USER_HZ),
        }
    }

    /// OpenMetrics families (no `# EOF`).
    #[must_use]
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, value: Option<String>| {
            if let Some(value) = value {
                let sample = if kind == "counter" { format!("{name}_total") } else { name.to_owned() };
                let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{sample} {value}\n");
            }
        };
        let text = |v: Option<u64>| v.map(|v| v.to_string());
        family(
            "process_cpu_seconds",
            "counter",
            "Total user and system CPU time spent in seconds.",
            self.cpu_seconds.map(|v| v.to_string()),
        );
        family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            text(self.resident_bytes),
        );
        family(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            text(self.virtual_bytes),
        );
        family("process_open_fds", "gauge", "Number of open file descriptors.", text(self.open_fds));
        family("process_max_fds", "gauge", "Maximum number of open file descriptors.", text(self.max_fds));
        family(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            self.start_time_seconds.map(|v| v.to_string()),
        );
        out
    }
}

/// The fields of `/proc/self/stat` used here, in clock ticks.
#[derive(Debug, Clone, Copy)]
struct Stat {
    utime: u64,
    stime: u64,
    start_ticks: u64,
}

/// Fields after the `(comm)`, which may hold spaces and parentheses: split after the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15, starttime 22.
    let at = |n: usize| fields.get(n - 3)?.parse().ok();
    Some(Stat { utime: at(14)?, stime: at(15)?, start_ticks: at(22)? })
}

/// The first number after `key` on the line starting with `key`.
fn field_after(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_ascii_whitespace().next()?.parse().ok()
}

/// The soft limit on the `Max open files` line of `/proc/self/limits`.
fn max_open_files(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_ascii_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_found_after_a_comm_with_spaces_and_parens() {
        let text = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1234 1000 200 18446744073709551615";
        let stat = parse_stat(text).expect("parses");
        assert_eq!((stat.utime, stat.stime, stat.start_ticks), (250, 50, 1234));
    }

    #[test]
    fn this_process_has_every_metric() {
        let sample = Sample::read();
        assert!(sample.cpu_seconds.is_some() && sample.resident_bytes.is_some_and(|b| b > 0));
        assert!(sample.open_fds.is_some_and(|n| n >= 3) && sample.max_fds.is_some());
        assert!(sample.start_time_seconds.is_some_and(|t| t > 1.7e9));
        let text = sample.encode();
        assert!(text.contains("# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total "), "{text}");
        assert!(text.contains("\nprocess_open_fds "), "{text}");
    }
}
