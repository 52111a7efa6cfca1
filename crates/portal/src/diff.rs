//! What an audit entry changed, as a diff: both sides flattened to
//! `path = value` leaves (`csp.add[0]`, `timeouts.connect`), then each
//! leaf that was removed, added or changed. A leaf that stayed is not
//! shown, so a one-field change to a large app reads as one line.

use serde_json::Value;

#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Removed {
        path: String,
        was: String,
    },
    Added {
        path: String,
        now: String,
    },
    Changed {
        path: String,
        was: String,
        now: String,
    },
}

pub fn diff(before: Option<&Value>, after: Option<&Value>) -> Vec<Line> {
    let (mut old, mut new) = (Vec::new(), Vec::new());
    if let Some(v) = before {
        flatten("", v, &mut old);
    }
    if let Some(v) = after {
        flatten("", v, &mut new);
    }
    let mut lines = Vec::new();
    for (path, was) in &old {
        match new.iter().find(|(p, _)| p == path) {
            None => lines.push(Line::Removed {
                path: path.clone(),
                was: was.clone(),
            }),
            Some((_, now)) if now != was => lines.push(Line::Changed {
                path: path.clone(),
                was: was.clone(),
                now: now.clone(),
            }),
            Some(_) => {}
        }
    }
    for (path, now) in &new {
        if !old.iter().any(|(p, _)| p == path) {
            lines.push(Line::Added {
                path: path.clone(),
                now: now.clone(),
            });
        }
    }
    lines
}

/// Leaves in key order (objects' keys sorted, lists in order); an empty object or list is a leaf of its
/// own (so adding the first entry shows as a change).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                flatten(&key(k), v, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        leaf => out.push((
            if prefix.is_empty() {
                "(value)".into()
            } else {
                prefix.to_owned()
            },
            leaf.to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_what_changed_is_shown() {
        let before = json!({"name": "wiki", "path": "/wiki", "timeouts": {"connect": "5s", "idle": "60s"}, "csp": {"add": []}});
        let after = json!({"name": "wiki", "path": "/w", "timeouts": {"connect": "5s"}, "csp": {"add": ["img-src https://x"]}});
        assert_eq!(
            diff(Some(&before), Some(&after)),
            [
                Line::Removed {
                    path: "csp.add".into(),
                    was: "[]".into()
                },
                Line::Changed {
                    path: "path".into(),
                    was: "\"/wiki\"".into(),
                    now: "\"/w\"".into()
                },
                Line::Removed {
                    path: "timeouts.idle".into(),
                    was: "\"60s\"".into()
                },
                Line::Added {
                    path: "csp.add[0]".into(),
                    now: "\"img-src https://x\"".into()
                },
            ]
        );
    }

    #[test]
    fn a_creation_is_all_added_and_a_deletion_all_removed() {
        let v = json!({"directive": "script-src", "source": "https://cdn"});
        let added = diff(None, Some(&v));
        assert_eq!(added.len(), 2);
        assert!(added.iter().all(|l| matches!(l, Line::Added { .. })));
        let removed = diff(Some(&v), None);
        assert!(removed.iter().all(|l| matches!(l, Line::Removed { .. })));
        assert_eq!(diff(Some(&v), Some(&v)), []);
    }
}
