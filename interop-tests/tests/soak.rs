//! The soak's one-minute variant (the full run is `cargo bench -p
//! interop-tests --bench soak`): a few cycles of batches announced and
//! withdrawn by a real FRR and a real GoBGP with their sessions reset in
//! between; then tern's RIB and kernel hold exactly the base routes with
//! no orphan nexthop object, its RSS is within 10% of its value after the
//! first cycle, and its open files and attribute sets are back where they
//! were.

use interop_tests::soak::{Plan, run};

#[test]
fn soak_short() {
    let plan = Plan {
        cycles: 3,
        rounds: 1,
        frr_resets: 3,
        batch: 2_000,
        base: 100,
    };
    let Some(report) = run("soak", plan) else {
        return;
    };
    let text = report.render();
    println!("{text}");
    assert!(report.problems.is_empty(), "{text}");
}
