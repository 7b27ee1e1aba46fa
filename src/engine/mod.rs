//! The engine: runs a real session and records its trace.
