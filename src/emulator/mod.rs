//! A simulated tenant that speaks the Graph and ARM wire formats, for demo, tests and benchmarks.
