//! The soak, full length: tern between a real FRR and a real GoBGP
//! through 1,000 session resets and over 1,000,000 announcements and
//! withdrawals (`interop_tests::soak` says how), then whether anything
//! was left behind: the RIB and the kernel must hold exactly the base
//! routes with no orphan nexthop object, tern's RSS must end within 10%
//! of its value after the first cycle, and its open files and attribute
//! sets where they were before. Prints the figures per cycle and exits
//! non-zero if one of those does not hold.
//!
//! ```text
//! sudo cargo bench -p interop-tests --bench soak     # about 25 minutes on 2 cores
//! ```
//!
//! `TERN_SOAK_CYCLES` (default 100), `TERN_SOAK_ROUNDS` (rounds of
//! resets per cycle, default 2), `TERN_SOAK_FRR_RESETS` (FRR's resets per
//! round, beside GoBGP's one, default 4), `TERN_SOAK_BATCH` (prefixes per
//! family announced and withdrawn per cycle, default 2500); tern binary:
//! `TERN_BIN` (default `target/release/tern`, built first). CI runs a
//! one-minute variant (`interop-tests/tests/soak.rs`).

use interop_tests::soak::{Plan, run};

fn env_u32(key: &str, default: u32) -> u32 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("the soak needs root (network namespaces); skipped");
        return;
    }
    interop_tests::tern::use_release_build();
    let plan = Plan {
        cycles: env_u32("TERN_SOAK_CYCLES", Plan::FULL.cycles),
        rounds: env_u32("TERN_SOAK_ROUNDS", Plan::FULL.rounds),
        frr_resets: env_u32("TERN_SOAK_FRR_RESETS", Plan::FULL.frr_resets),
        batch: env_u32("TERN_SOAK_BATCH", Plan::FULL.batch),
        base: Plan::FULL.base,
    };
    let Some(report) = run("soak", plan) else {
        return;
    };
    println!("\n{}", report.render());
    if !report.problems.is_empty() {
        std::process::exit(1);
    }
}
