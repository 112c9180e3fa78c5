//! Client side.
