//! Fuzzing of every parser a user can reach: the URL fragment (also the stored settings, which
//! are a fragment), an edited target's encoded record, `model.json`, CSV files, images (as
//! files natively, as browser-decoded pixels in the page) and the CLI's flags.
//!
//! Each parser must return a clear error or a valid value — never panic — and stay within a
//! memory bound while it works. Inputs come from proptest (generated, and mutated from valid
//! seeds so they get past the first checks), reproducibly seeded; a failure is shrunk to a
//! small input and printed. `FLOWLAB_FUZZ_CASES` sets the inputs per parser (default
//! [`DEFAULT_CASES`]: the test command stays fast), `FLOWLAB_FUZZ_SEED` the seed. Run
//! `cargo test --test fuzz -- --nocapture` to see how many inputs each parser tried.
#![allow(clippy::expect_used)] // Why: building the valid seeds cannot fail; if it did, the test should stop there.

mod memory;
mod seeds;

use std::fmt::Debug;

use clap::Parser as _;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use flowlab::cli::{Cli, Command, check_train_args};
use flowlab::lab::Spec;
use flowlab::lab::export::{FileContent, Opened, open, open_content};
use flowlab::targets::TargetSource;

/// Inputs per parser in the test command (~1–3 s each on the CI machine).
const DEFAULT_CASES: u32 = 1500;

/// The most a parser may allocate beyond what it was given (live bytes at its peak). Why
/// 96 MiB: the largest legitimate input, a 4096² image, decodes to 32 MiB of luminance and
/// alpha and a grid beside it; nothing a parser reads may cost more than a few times that.
const MEMORY_BOUND: usize = 96 << 20;

fn cases() -> u32 {
    std::env::var("FLOWLAB_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn seed() -> u64 {
    std::env::var("FLOWLAB_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED)
}

/// Runs `check` on `cases()` inputs from `strategy`; panics with the shrunk failing input.
/// `check` says whether the parser accepted the input (`Ok(true)`) or refused it with a
/// readable message (`Ok(false)`); `Err` or a panic is a failure, and so is a peak allocation
/// above [`MEMORY_BOUND`].
fn fuzz<S>(parser: &str, strategy: S, check: impl Fn(S::Value) -> Result<bool, TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let mut bytes = seed().to_le_bytes().repeat(4);
    bytes.truncate(32);
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    // Why cells: proptest takes the test as a `Fn`.
    let peak = std::cell::Cell::new(0usize);
    let tried = std::cell::Cell::new(0u32);
    let accepted = std::cell::Cell::new(0u32);
    let result = runner.run(&strategy, |input| {
        tried.set(tried.get() + 1);
        let (result, used) = memory::peak_during(|| check(input));
        peak.set(peak.get().max(used));
        if used > MEMORY_BOUND {
            return Err(TestCaseError::fail(format!(
                "allocated {used} bytes at its peak (bound {MEMORY_BOUND})"
            )));
        }
        accepted.set(accepted.get() + u32::from(result?));
        Ok(())
    });
    println!(
        "fuzz {parser}: {} inputs (shrinking included), {} accepted, peak allocation {:.2} MiB",
        tried.get(),
        accepted.get(),
        peak.get() as f64 / (1 << 20) as f64
    );
    if let Err(error) = result {
        panic!("{parser}: {error}");
    }
}

/// An error message a user can read: one non-empty line.
fn readable(message: &str) -> Result<(), TestCaseError> {
    prop_assert!(!message.trim().is_empty(), "empty error message");
    Ok(())
}

#[test]
fn url_fragments_and_stored_settings() {
    fuzz("URL fragment", seeds::fragment(), |fragment| {
        let lenient = Spec::from_fragment_lenient(&fragment);
        for error in &lenient.errors {
            readable(&error.to_string())?;
        }
        let spec = lenient.spec.clone();
        // What was read is valid: it writes a link that reads back as the same scene, and
        // every model's architecture passes the flow registry's checks.
        let written = spec.to_fragment();
        let again = Spec::from_fragment(&written);
        // Why not prop_assert_eq: a Spec's Debug holds a whole painted grid.
        prop_assert!(
            again.as_ref() == Ok(&spec),
            "the written scene reads back differently: {written}"
        );
        for model in spec.models() {
            prop_assert!(model.flow_config().validate().is_ok(), "{model:?}");
        }
        Ok(lenient.errors.is_empty())
    });
}

#[test]
fn encoded_targets() {
    fuzz("edited target (URL)", seeds::target_text(), |text| {
        match TargetSource::from_text(&text) {
            Ok(source) => {
                // A target that reads is one a trainer can build, and it links back to itself.
                let target = source.build();
                prop_assert!(target.is_ok(), "{:?}", target.err());
                let back = TargetSource::from_text(&source.to_text());
                prop_assert!(back.ok() == Some(source.canonical()), "{text}");
                Ok(true)
            }
            Err(error) => readable(&error.to_string()).map(|()| false),
        }
    });
}

#[test]
fn model_json_files() {
    fuzz("model.json", seeds::model_json(), |bytes| {
        check_opened("model.json", open("model.json", &bytes, false, 0.0))
    });
}

#[test]
fn csv_files() {
    fuzz("CSV", seeds::csv_text(), |text| {
        if let Ok(points) = flowlab::targets::csv::parse_points(&text) {
            prop_assert!(points.iter().flatten().all(|v| v.is_finite()), "{text}");
        }
        check_opened(
            "points.csv",
            open("points.csv", text.as_bytes(), false, 0.0),
        )
    });
}

#[test]
fn image_files() {
    fuzz(
        "image file",
        seeds::image_bytes(),
        |(bytes, invert, threshold)| {
            check_opened("image.png", open("image.png", &bytes, invert, threshold))
        },
    );
}

#[test]
fn browser_decoded_images() {
    fuzz(
        "decoded image",
        seeds::rgba(),
        |(width, height, rgba, invert, threshold)| {
            let content = FileContent::Rgba {
                width,
                height,
                rgba,
            };
            check_opened(
                "image.png",
                open_content("image.png", &content, invert, threshold),
            )
        },
    );
}

#[test]
fn cli_flags() {
    fuzz("CLI flags", seeds::cli_args(), |args| {
        let argv = std::iter::once("flowlab".to_owned()).chain(args);
        match Cli::try_parse_from(argv) {
            // clap's own message (usage, the flag, what it expects).
            Err(error) => readable(&error.to_string()).map(|()| false),
            Ok(cli) => {
                if let Some(Command::Train(args)) = &cli.command
                    && let Err(error) = check_train_args(args)
                {
                    return readable(&format!("{error:#}")).map(|()| false);
                }
                if let Some(scene) = &cli.scene {
                    let _ = Spec::from_fragment_lenient(scene);
                }
                Ok(true)
            }
        }
    });
}

/// What an opened file gave: a target that builds, a model that rebuilds, or a message
/// naming the file.
fn check_opened(name: &str, opened: Result<Opened, String>) -> Result<bool, TestCaseError> {
    let accepted = opened.is_ok();
    match opened {
        Ok(Opened::Target(source)) => {
            let target = source.build();
            prop_assert!(target.is_ok(), "{:?}", target.err());
        }
        Ok(Opened::Model(saved)) => {
            prop_assert_eq!(saved.dim, 2);
            let flow = saved.into_flow();
            prop_assert!(flow.is_ok(), "{:?}", flow.err());
        }
        Err(message) => {
            readable(&message)?;
            prop_assert!(message.starts_with(name), "{message}");
        }
    }
    Ok(accepted)
}
