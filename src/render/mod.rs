//! Renderers of a trace for logs, screen readers and programs: plain text and JSON.

pub mod plain;

use crate::trace::Trace;

/// The trace as pretty JSON (format `iotls-trace/2`, see docs/trace-format.md).
pub fn json(trace: &Trace) -> String {
    serde_json::to_string_pretty(trace)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialize trace: {e}\"}}"))
}
