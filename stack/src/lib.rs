//! A userspace TCP/IP stack over a Linux TUN device.

pub mod device;
pub mod time;
pub mod wire;
