//! Label and field selectors with the Kubernetes string syntax.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq,
    NotEq,
    In,
    NotIn,
    Exists,
    NotExists,
}

#[derive(Debug, Clone)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

/// A parsed label selector (`a=b,c!=d,e in (x,y),f notin (z),g,!h`); all terms are ANDed.
#[derive(Debug, Clone, Default)]
pub(crate) struct LabelSelector {
    reqs: Vec<Requirement>,
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

fn valid_key(k: &str) -> bool {
    let name = k.rsplit_once('/').map_or(k, |(prefix, name)| {
        if prefix.is_empty() || prefix.len() > 253 || prefix.contains('/') { "" } else { name }
    });
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(is_key_char)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let err = |why: &str| format!("unable to parse requirement: {why}: {part:?}");
    let part = part.trim();
    if let Some(rest) = part.strip_prefix('!') {
        let key = rest.trim();
        if !valid_key(key) {
            return Err(err("invalid label key"));
        }
        return Ok(Requirement { key: key.into(), op: Op::NotExists, values: vec![] });
    }
    let key_end = part.find(|c: char| !is_key_char(c)).unwrap_or(part.len());
    let key = &part[..key_end];
    if !valid_key(key) {
        return Err(err("found invalid or missing label key"));
    }
    let rest = part[key_end..].trim_start();
    let (op, value_text) = if rest.is_empty() {
        (Op::Exists, "")
    } else if let Some(v) = rest.strip_prefix("!=") {
        (Op::NotEq, v)
    } else if let Some(v) = rest.strip_prefix("==") {
        (Op::Eq, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (Op::Eq, v)
    } else if let Some(v) = rest.strip_prefix("notin") {
        (Op::NotIn, v)
    } else if let Some(v) = rest.strip_prefix("in") {
        (Op::In, v)
    } else {
        return Err(err("found unexpected operator"));
    };
    let values = match op {
        Op::Exists => vec![],
        Op::In | Op::NotIn => {
            let set = value_text.trim();
            let inner = set
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(|| err("expected '(' ... ')' after set operator"))?;
            let vals: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
            if inner.trim().is_empty() {
                return Err(err("for 'in', 'notin' operators, values set can't be empty"));
            }
            vals
        }
        _ => vec![value_text.trim().to_string()],
    };
    if let Some(bad) = values.iter().find(|v| !valid_value(v)) {
        return Err(err(&format!("invalid label value {bad:?}")));
    }
    Ok(Requirement { key: key.into(), op, values })
}

impl LabelSelector {
    /// Parses the selector; an empty string selects everything.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        let reqs = split_top_level(s).into_iter().map(parse_requirement).collect::<Result<_, _>>()?;
        Ok(Self { reqs })
    }

    /// True when the selector selects everything.
    pub(crate) fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Evaluates the selector against `metadata.labels` of `obj`.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        self.reqs.iter().all(|r| {
            let v = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            match r.op {
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
                Op::Eq => v == Some(r.values[0].as_str()),
                Op::NotEq => v != Some(r.values[0].as_str()),
                Op::In => v.is_some_and(|v| r.values.iter().any(|x| x == v)),
                Op::NotIn => v.is_none_or(|v| r.values.iter().all(|x| x != v)),
            }
        })
    }
}

/// A parsed field selector: `metadata.name`, `metadata.namespace` (and `type` for secrets)
/// with `=`, `==` or `!=`, comma-separated terms ANDed.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses the selector for resource `plural`; unknown fields are rejected like the real server.
    pub(crate) fn parse(s: &str, plural: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!("invalid selector: '{part}'; can't understand '{part}'"));
            };
            let field = field.trim();
            if pointer(field, plural).is_none() {
                return Err(format!("field label not supported: {field}"));
            }
            reqs.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(Self { reqs })
    }

    /// True when the selector selects everything.
    pub(crate) fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Evaluates the selector against `obj`.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(field, eq, value)| {
            let ptr = field.replace('.', "/");
            let actual = obj.pointer(&format!("/{ptr}")).and_then(Value::as_str).unwrap_or("");
            (actual == value) == *eq
        })
    }
}

/// The JSON pointer of a field `plural` can be selected on (`core-events` is the core/v1
/// view of events), `None` for a field the real server refuses.
fn pointer(field: &str, plural: &str) -> Option<String> {
    let known = match plural {
        "secrets" => matches!(field, "type"),
        "events" => matches!(
            field,
            "regarding.name"
                | "regarding.kind"
                | "regarding.namespace"
                | "regarding.uid"
                | "reason"
                | "type"
                | "reportingController"
        ),
        "core-events" => matches!(
            field,
            "involvedObject.name"
                | "involvedObject.kind"
                | "involvedObject.namespace"
                | "involvedObject.uid"
                | "involvedObject.apiVersion"
                | "involvedObject.resourceVersion"
                | "involvedObject.fieldPath"
                | "reason"
                | "type"
                | "source"
                | "reportingComponent"
        ),
        _ => false,
    };
    (known || matches!(field, "metadata.name" | "metadata.namespace"))
        .then(|| format!("/{}", field.replace('.', "/")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "n1", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn label_selector_syntax() {
        let o = obj(json!({"app": "web", "tier": "front", "example.com/x": "1"}));
        let yes = [
            "",
            "app=web",
            "app==web",
            "app!=db",
            "missing!=x",
            "app in (web, db)",
            "app notin (db)",
            "missing notin (db)",
            "app",
            "!missing",
            "app=web,tier=front",
            "example.com/x=1",
            "app in (web),tier",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&o), "{s}");
        }
        let no = [
            "app=db",
            "app!=web",
            "app in (db)",
            "app notin (web)",
            "missing",
            "!app",
            "app=web,tier=back",
            "missing in (x)",
        ];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&o), "{s}");
        }
        for bad in ["app=(", "a b", "=x", "app in ()", "app in x", "app=web,", "app=-bad", "!"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn field_selector_syntax() {
        let o = json!({"metadata": {"name": "n1", "namespace": "ns"}, "type": "Opaque"});
        assert!(FieldSelector::parse("metadata.name=n1", "configmaps").unwrap().matches(&o));
        assert!(
            FieldSelector::parse("metadata.name!=n2,metadata.namespace==ns", "configmaps")
                .unwrap()
                .matches(&o)
        );
        assert!(!FieldSelector::parse("metadata.name!=n1", "configmaps").unwrap().matches(&o));
        assert!(FieldSelector::parse("type=Opaque", "secrets").unwrap().matches(&o));
        assert!(FieldSelector::parse("type=Opaque", "configmaps").is_err());
        assert!(FieldSelector::parse("spec.x=1", "configmaps").is_err());
    }
}
