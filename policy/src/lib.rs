//! Route policy for tern: named, ordered statements that match routes by
//! prefix, community, AS path, peer and family, and accept, reject or
//! modify them. Pure functions over a route; no I/O.
