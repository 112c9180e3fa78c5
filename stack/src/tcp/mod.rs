//! TCP (RFC 9293): a sans-IO connection state machine and its parts.
//! (Module documentation is being written.)

pub mod assembler;
pub mod congestion;
pub mod connection;
pub mod isn;
pub mod recv_buf;
pub mod rtt;
pub mod send_buf;
pub mod state;
pub mod timer;
