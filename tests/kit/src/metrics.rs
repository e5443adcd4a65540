//! A strict parser of the Prometheus/OpenMetrics text format (enough to check ours).

use std::collections::BTreeMap;

/// Parses every sample into `name{labels}` → value; fails on any malformed line.
/// Reads both Prometheus text 0.0.4 and OpenMetrics (nothing may follow `# EOF`).
pub fn parse(text: &str) -> Result<BTreeMap<String, f64>, String> {
    let mut samples = BTreeMap::new();
    let mut saw_eof = false;
    for line in text.lines() {
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if saw_eof {
            return Err("content after # EOF".into());
        }
        if let Some(meta) = line.strip_prefix("# ") {
            let kind = meta.split_whitespace().next().unwrap_or_default();
            if !matches!(kind, "HELP" | "TYPE" | "UNIT") {
                return Err(format!("unknown comment {line:?}"));
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or(format!("no value: {line:?}"))?;
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            return Err(format!("bad metric name in {line:?}"));
        }
        if name_end < series.len() && !series.ends_with('}') {
            return Err(format!("unclosed labels in {line:?}"));
        }
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other.parse().map_err(|_| format!("bad value in {line:?}"))?,
        };
        samples.insert(series.to_owned(), value);
    }
    // Prometheus text (what a scrape without an Accept header gets) has no `# EOF`;
    // OpenMetrics must end with one: checked by the callers that ask for it.
    let _ = saw_eof;
    Ok(samples)
}
