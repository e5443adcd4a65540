//! Content negotiation for `/metrics`: OpenMetrics when the scraper asks for it, else the
//! Prometheus text format 0.0.4 that `promtool check metrics` and older scrapers read.
//! prometheus-client writes OpenMetrics only; [`to_prometheus`] rewrites it.

use std::collections::HashMap;

/// Content type of the OpenMetrics text format.
pub(crate) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the Prometheus text format.
pub(crate) const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The format to answer with, from the request's `Accept` header: OpenMetrics when it is
/// acceptable with a quality at least that of `text/plain` (Prometheus asks for it first),
/// else Prometheus text (no header, `*/*`, `text/plain`).
#[must_use]
pub(crate) fn wants_openmetrics(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let mut openmetrics = 0.0_f32;
    let mut text = 0.0_f32;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let quality =
            parts.filter_map(|p| p.strip_prefix("q=")).find_map(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(quality),
            "text/plain" | "text/*" | "*/*" => text = text.max(quality),
            _ => {}
        }
    }
    openmetrics > 0.0 && openmetrics >= text
}

/// Rewrites an OpenMetrics exposition as Prometheus text 0.0.4: counters' families take
/// their `_total` name, `info` becomes a gauge named `<name>_info`, `# UNIT` and `# EOF`
/// go; samples are the same lines.
#[must_use]
pub(crate) fn to_prometheus(openmetrics: &str) -> String {
    let mut renamed: HashMap<&str, (String, &str)> = HashMap::new();
    for line in openmetrics.lines() {
        if let Some((name, kind)) = line.strip_prefix("# TYPE ").and_then(|rest| rest.split_once(' ')) {
            let entry = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" | "histogram" | "summary" => (name.to_owned(), kind),
                _ => (name.to_owned(), "untyped"),
            };
            renamed.insert(name, entry);
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = renamed.get(name).map_or(name, |(n, _)| n.as_str());
            out.push_str(&format!("# HELP {name} {help}\n"));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_once(' ').map_or(rest, |(n, _)| n);
            match renamed.get(name) {
                Some((name, kind)) => out.push_str(&format!("# TYPE {name} {kind}\n")),
                None => out.push_str(&format!("{line}\n")),
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_asked_for_at_least_as_much_as_text() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let cases = [
            (None, false),
            (Some("*/*"), false),
            (Some("text/plain"), false),
            (Some("text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5"), false),
            (Some(prometheus), true),
            (Some("application/openmetrics-text"), true),
        ];
        for (accept, want) in cases {
            assert_eq!(wants_openmetrics(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn counters_and_info_are_renamed_and_openmetrics_only_lines_dropped() {
        let om = "# HELP x_swaps Swaps.\n# TYPE x_swaps counter\nx_swaps_total 3\n\
                  # HELP x_build Build.\n# TYPE x_build info\nx_build_info{version=\"1\"} 1\n\
                  # HELP x_age Age.\n# TYPE x_age gauge\n# UNIT x_age seconds\nx_age 1.5\n# EOF\n";
        let text = to_prometheus(om);
        assert_eq!(
            text,
            "# HELP x_swaps_total Swaps.\n# TYPE x_swaps_total counter\nx_swaps_total 3\n\
             # HELP x_build_info Build.\n# TYPE x_build_info gauge\nx_build_info{version=\"1\"} 1\n\
             # HELP x_age Age.\n# TYPE x_age gauge\nx_age 1.5\n"
        );
    }
}
