//! The forwarding information base: what tern installs in the kernel's
//! routing tables and how it keeps them in step with the Loc-RIB.
//!
//! [`model`] decides what the kernel should hold and never does I/O;
//! [`kernel`] holds the vocabulary both sides share (routes, nexthop
//! objects, links, operations, events); [`task`] drives the model.
//! [`netlink`] is the kernel I/O: it applies the operations it is given,
//! dumps and reports kernel events, and decides nothing. It only ever
//! touches the routes and nexthop objects it is handed, never those of
//! other protocols.

pub mod kernel;
pub mod model;
pub mod netlink;
mod nexthop_table;
mod resolve;
pub mod task;

#[cfg(test)]
mod tests;
