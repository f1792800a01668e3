//! Configuration: file < environment < flags.
