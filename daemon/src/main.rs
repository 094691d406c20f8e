//! The `tern` daemon.

fn main() {}
