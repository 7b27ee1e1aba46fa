//! Renderers of a trace: plain text and JSON.
