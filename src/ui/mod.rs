//! The terminal UI: renders a trace; never talks to sockets.
