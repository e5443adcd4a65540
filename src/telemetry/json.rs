//! The JSON line format: one object per event with typed fields (numbers as numbers,
//! booleans as booleans, lists as arrays), so log pipelines can filter on them without
//! parsing strings.
//!
//! `tracing` fields have no list type; a field named in [`LIST_FIELDS`] holds a
//! comma-separated list (of Kubernetes object names, which cannot contain commas) and
//! becomes a JSON array here.

use serde_json::{Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Fields that carry a comma-separated list.
pub(crate) const LIST_FIELDS: &[&str] = &["changed"];

/// The event formatter: `timestamp`, `level`, the event's fields (`message` included),
/// `target`, and `spans` (outermost first, each with its name and fields).
#[derive(Debug, Clone, Copy, Default)]
pub struct Format;

impl<S> FormatEvent<S, JsonFields> for Format
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut object = Map::new();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        object.insert("timestamp".into(), now.into());
        object.insert("level".into(), meta.level().as_str().into());
        event.record(&mut Fields(&mut object));
        object.insert("target".into(), meta.target().into());
        let spans: Vec<Value> = ctx
            .event_scope()
            .into_iter()
            .flat_map(tracing_subscriber::registry::Scope::from_root)
            .map(|span| {
                let extensions = span.extensions();
                let fields = extensions.get::<FormattedFields<JsonFields>>();
                let mut entry = fields
                    .and_then(|f| serde_json::from_str::<Map<String, Value>>(&f.fields).ok())
                    .unwrap_or_default();
                entry.insert("name".into(), span.name().into());
                Value::Object(entry)
            })
            .collect();
        if !spans.is_empty() {
            object.insert("spans".into(), spans.into());
        }
        writeln!(writer, "{}", Value::Object(object))
    }
}

/// Collects an event's fields with their types.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_owned(), value);
    }
}

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, typed_str(field.name(), value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` (Display) arrives here too, already formatted by Display.
        let text = format!("{value:?}");
        self.put(field, typed_str(field.name(), &text));
    }
}

/// A list field as an array (empty text: empty array), any other as a string.
fn typed_str(name: &str, text: &str) -> Value {
    if LIST_FIELDS.contains(&name) {
        let items = text.split(',').map(str::trim).filter(|s| !s.is_empty());
        return Value::Array(items.map(|s| Value::from(s.to_owned())).collect());
    }
    Value::from(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn fields_keep_their_types_and_lists_become_arrays() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(Format)
            .with_writer(move || writer.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("source", kind = "kube");
            let _entered = span.enter();
            tracing::info!(exit_code = 0_i32, ok = true, ms = 1.5, changed = %"web,api", hash = %"sha256:1", "done");
        });
        let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8");
        let line: Value = serde_json::from_str(text.trim()).expect("one JSON object");
        assert_eq!(line["exit_code"], 0);
        assert_eq!(line["ok"], true);
        assert_eq!(line["ms"], 1.5);
        assert_eq!(line["changed"], serde_json::json!(["web", "api"]));
        assert_eq!(line["hash"], "sha256:1");
        assert_eq!(line["message"], "done");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["spans"][0]["name"], "source");
        assert_eq!(line["spans"][0]["kind"], "kube");
    }
}
