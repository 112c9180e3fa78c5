//! Tests for the connection state machine.
