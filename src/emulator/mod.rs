//! A simulated tenant that speaks the Graph and ARM wire formats, for demo, tests and benchmarks.

// emu-server: HTTP side (TLS, token endpoint, Graph and ARM handlers, quotas, faults).
pub mod faults;
pub mod quota;
pub mod tls;
pub mod token;
