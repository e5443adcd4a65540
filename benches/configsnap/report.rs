//! The results: one row per figure, printed as a table with PASS/MISS against the
//! targets of issue 7, and written as JSON to `target/bench/results.json`.

use serde_json::{Value, json};
use std::path::Path;

/// A target a figure is compared against.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The value must be at most this.
    AtMost(f64),
    /// The value must equal this.
    Equals(f64),
}

/// One figure.
#[derive(Debug, Clone)]
pub struct Row {
    /// Scenario name (`latency`, `swap`, ...).
    pub scenario: &'static str,
    /// What was measured.
    pub metric: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// The target, when the issue sets one.
    pub target: Option<Target>,
    /// Shown in the printed table (else only in the JSON, e.g. figures a scenario prints
    /// in its own compact table).
    pub printed: bool,
}

impl Row {
    /// `PASS`/`MISS` and the margin (positive: room left; negative: how far off).
    pub fn verdict(&self) -> Option<(&'static str, f64)> {
        match self.target? {
            Target::AtMost(limit) => {
                Some((if self.value <= limit { "PASS" } else { "MISS" }, limit - self.value))
            }
            Target::Equals(want) => {
                Some((if self.value == want { "PASS" } else { "MISS" }, -(self.value - want).abs()))
            }
        }
    }
}

/// Collected rows.
#[derive(Debug, Default)]
pub struct Report {
    /// Rows in the order measured.
    pub rows: Vec<Row>,
    /// Free-form notes (e.g. a scenario that failed), shown under the table.
    pub notes: Vec<String>,
    /// Scenarios' own tables, printed after the main one.
    pub blocks: Vec<String>,
}

impl Report {
    /// Adds a figure without a target.
    pub fn add(&mut self, scenario: &'static str, metric: impl Into<String>, value: f64, unit: &'static str) {
        self.rows.push(Row { scenario, metric: metric.into(), value, unit, target: None, printed: true });
    }

    /// Adds a figure without a target to the JSON only (not to the printed table).
    pub fn detail(
        &mut self,
        scenario: &'static str,
        metric: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) {
        self.rows.push(Row { scenario, metric: metric.into(), value, unit, target: None, printed: false });
    }

    /// Adds a figure with a target.
    pub fn check(
        &mut self,
        scenario: &'static str,
        metric: impl Into<String>,
        value: f64,
        unit: &'static str,
        target: Target,
    ) {
        self.rows.push(Row {
            scenario,
            metric: metric.into(),
            value,
            unit,
            target: Some(target),
            printed: true,
        });
    }

    /// Adds a note.
    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("note: {text}");
        self.notes.push(text);
    }

    /// Adds a scenario's own table, printed after the main one.
    pub fn block(&mut self, text: impl Into<String>) {
        self.blocks.push(text.into());
    }

    /// The table (then the scenarios' own tables and the notes), as printed.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<9} {:<52} {:>12} {:<6} {:>10} {:<5} {:>10}\n",
            "scenario", "metric", "value", "unit", "target", "", "margin"
        );
        out.push_str(&"-".repeat(110));
        out.push('\n');
        for row in self.rows.iter().filter(|r| r.printed) {
            let (target, verdict, margin) = match (row.target, row.verdict()) {
                (Some(Target::AtMost(t)), Some((v, m))) => (format!("<= {}", num(t)), v, num(m)),
                (Some(Target::Equals(t)), Some((v, m))) => (format!("== {}", num(t)), v, num(m)),
                _ => (String::new(), "", String::new()),
            };
            out.push_str(&format!(
                "{:<9} {:<52} {:>12} {:<6} {:>10} {:<5} {:>10}\n",
                row.scenario,
                row.metric,
                num(row.value),
                row.unit,
                target,
                verdict,
                margin
            ));
        }
        for block in &self.blocks {
            out.push('\n');
            out.push_str(block);
        }
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        out
    }

    /// Writes the JSON file (creating its directory).
    pub fn write_json(&self, path: &Path, machine: Value, quick: bool) -> std::io::Result<()> {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let (target, verdict, margin) = match (r.target, r.verdict()) {
                    (Some(Target::AtMost(t)), Some((v, m))) => (json!({"at_most": t}), json!(v), json!(m)),
                    (Some(Target::Equals(t)), Some((v, m))) => (json!({"equals": t}), json!(v), json!(m)),
                    _ => (Value::Null, Value::Null, Value::Null),
                };
                json!({
                    "scenario": r.scenario, "metric": r.metric, "value": r.value, "unit": r.unit,
                    "target": target, "verdict": verdict, "margin": margin,
                })
            })
            .collect();
        let doc = json!({
            "quick": quick,
            "machine": machine,
            "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "results": rows,
            "notes": self.notes,
        });
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n")
    }
}

/// A number with 3 significant decimals, trailing zeros dropped.
fn num(v: f64) -> String {
    let v = if v == 0.0 { 0.0 } else { v };
    if v == v.trunc() && v.abs() < 1e12 {
        return format!("{v:.0}");
    }
    let s = if v.abs() >= 100.0 { format!("{v:.1}") } else { format!("{v:.3}") };
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}
