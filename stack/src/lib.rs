//! A userspace TCP/IP stack over a Linux TUN device.

pub mod device;
pub mod table;
pub mod tcp;
pub mod time;
pub mod wire;
