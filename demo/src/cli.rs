//! The command line (clap derive).
