//! Saved traces: one JSON trace (`tour --json`, `connect --json`) or JSON Lines (`serve --json`:
//! one trace per line). Each is checked for its `format` before it is read as a [`Trace`].

use super::ReplayError;
use crate::trace::{Trace, FORMAT};
use std::path::Path;

/// Every trace in `text` (the contents of `path`), in order.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Trace>, ReplayError> {
    let file = path.display().to_string();
    let mut traces = Vec::new();
    // A pretty-printed trace and JSON Lines are both a sequence of JSON values.
    let values = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    for (i, value) in values.enumerate() {
        let n = i + 1;
        let value = value.map_err(|e| ReplayError::Input {
            file: file.clone(),
            problem: if e.is_eof() {
                format!(
                    "the JSON ends in the middle of trace {n} (line {}): the file is truncated",
                    e.line()
                )
            } else {
                format!(
                    "not valid JSON at line {}, column {}: {e}",
                    e.line(),
                    e.column()
                )
            },
            hint: "give a file written by `iotls tour --json`, `connect --json` or `serve --json`",
        })?;
        let format = match value.get("format") {
            Some(serde_json::Value::String(f)) => f.clone(),
            _ => return Err(ReplayError::Input {
                file,
                problem: format!("value {n} is JSON but not an iotls trace (it has no \"format\")"),
                hint:
                    "give a file written by `iotls tour --json`, `connect --json` or `serve --json`",
            }),
        };
        if format != FORMAT {
            return Err(ReplayError::Format { file, format });
        }
        let trace: Trace = serde_json::from_value(value).map_err(|e| ReplayError::Input {
            file: file.clone(),
            problem: format!("trace {n} says {FORMAT} but does not follow it: {e}"),
            hint: "was it edited by hand? record it again with `--json`",
        })?;
        traces.push(trace);
    }
    if traces.is_empty() {
        return Err(ReplayError::Input {
            file,
            problem: "the file holds no trace".to_string(),
            hint: "give a file written by `iotls tour --json`, `connect --json` or `serve --json`",
        });
    }
    Ok(traces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(Path::new("t.json"), text).unwrap_err().to_string()
    }

    #[test]
    fn another_format_is_named() {
        let e = err(r#"{"format": "iotls-trace/1", "events": []}"#);
        assert!(e.contains("iotls-trace/1") && e.contains(FORMAT), "{e}");
    }

    #[test]
    fn truncated_and_foreign_json_are_told_apart() {
        assert!(err(r#"{"format": "iotls-tr"#).contains("truncated"));
        assert!(err(r#"{"hello": 1}"#).contains("not an iotls trace"));
        assert!(err("").contains("no trace"));
        assert!(err("PK\u{3}\u{4}").contains("not valid JSON"));
    }
}
