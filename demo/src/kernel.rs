//! Kernel baseline.
