//! Label selector syntax check, so a typo fails at start-up (exit 64) instead of in a
//! retry loop against the API server. The server still does the selecting.

use thiserror::Error;

/// A label selector the API server would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid label selector {selector:?}: {reason}")]
pub struct Error {
    selector: String,
    reason: String,
}

/// Checks the Kubernetes label selector grammar: comma-separated requirements of the
/// forms `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (v1,v2)`, `k notin (v1,v2)`.
pub(crate) fn validate(selector: &str) -> Result<(), Error> {
    let fail = |reason: String| Error { selector: selector.to_owned(), reason };
    for requirement in split_requirements(selector).map_err(fail)? {
        check_requirement(requirement.trim()).map_err(fail)?;
    }
    Ok(())
}

/// Splits on commas that are not inside a `( … )` value set.
fn split_requirements(selector: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err("unbalanced parentheses".into());
        }
    }
    if depth != 0 {
        return Err("unbalanced parentheses".into());
    }
    parts.push(&selector[start..]);
    if parts.len() == 1 && parts[0].trim().is_empty() {
        return Ok(Vec::new());
    }
    Ok(parts)
}

fn check_requirement(req: &str) -> Result<(), String> {
    if req.is_empty() {
        return Err("empty requirement".into());
    }
    if let Some(key) = req.strip_prefix('!') {
        return check_key(key.trim());
    }
    for op in ["==", "!=", "="] {
        if let Some((key, value)) = req.split_once(op) {
            check_key(key.trim())?;
            return check_value(value.trim());
        }
    }
    for op in [" notin ", " in "] {
        if let Some((key, values)) = req.split_once(op) {
            check_key(key.trim())?;
            let values = values
                .trim()
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| format!("{op:?} needs a parenthesised value list"))?;
            return values.split(',').try_for_each(|v| check_value(v.trim()));
        }
    }
    check_key(req)
}

/// A label key: optional DNS-subdomain prefix and `/`, then a name of ≤ 63 characters.
fn check_key(key: &str) -> Result<(), String> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            let prefix_ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|label| {
                    !label.is_empty()
                        && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                });
            if !prefix_ok {
                return Err(format!("label key prefix {prefix:?} is not a DNS subdomain"));
            }
            name
        }
        None => key,
    };
    if name.is_empty() || !is_label_value(name) {
        return Err(format!("label key {key:?} is not valid"));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_value(value) {
        Ok(())
    } else {
        Err(format!("label value {value:?} is not valid"))
    }
}

/// ≤ 63 characters of `[A-Za-z0-9_.-]`, starting and ending alphanumeric.
fn is_label_value(s: &str) -> bool {
    let alnum_ends = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    s.len() <= 63
        && alnum_ends
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn selector_grammar_table() {
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("app=web", true),
            ("app==web,tier!=db", true),
            ("configsnap.io/enabled=true", true),
            ("env in (prod, staging),!legacy", true),
            ("env notin (dev)", true),
            ("app", true),
            ("app=", true),
            ("=web", false),
            ("app=we b", false),
            ("app in prod", false),
            ("env in (prod", false),
            ("a,,b", false),
            ("-bad=x", false),
            ("Bad_Prefix/x=y", false),
        ];
        for (sel, ok) in cases {
            assert_eq!(validate(sel).is_ok(), *ok, "{sel:?}: {:?}", validate(sel));
        }
    }
}
