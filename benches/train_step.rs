//! `cargo bench`: one training step of each flow at its default size, single thread, plus
//! sampling and density passes. Prints one JSON line per flow (medians in ms).
//! The reference model is RealNVP: 8 affine couplings, MLP 1→64→64→2 tanh, batch 512, Adam.
//! Each flow trains with the objective the app uses on two moons (`bench_objective`: flow
//! matching for the CNF); the CNF gets a second line: its maximum-likelihood step through RK4.

use flowlab::flows::{Family, FlowConfig};
use flowlab::train::ObjectiveKind;
use flowlab::train::bench::{bench_flow, bench_objective, bench_train_step};

fn main() {
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    for family in Family::ALL {
        if !only.is_empty() && !only.iter().any(|o| o == family.name()) {
            continue;
        }
        match bench_flow(
            &FlowConfig::reference(family),
            bench_objective(family),
            512,
            30,
            300,
        ) {
            Ok(r) => println!("{}", serde_json::to_string(&r).unwrap_or_default()),
            Err(e) => println!("{{\"flow\":\"{}\",\"error\":\"{e}\"}}", family.name()),
        }
        if family == Family::Cnf {
            let mle = ObjectiveKind::Mle;
            match bench_train_step(&FlowConfig::reference(family), mle, 512, 30, 300) {
                Ok(ms) => println!(
                    "{{\"flow\":\"cnf\",\"objective\":\"mle\",\"batch\":512,\"train_ms_per_step\":{ms}}}"
                ),
                Err(e) => println!("{{\"flow\":\"cnf\",\"objective\":\"mle\",\"error\":\"{e}\"}}"),
            }
        }
    }
}
