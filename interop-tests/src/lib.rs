//! Labs in network namespaces that run tern against real FRR, GoBGP and
//! bird2, and the benchmarks that compare them.
