//! What the user can pick: the names of targets and flows, and loading a target by name.
//!
//! This is the one place the UI and the CLI learn which targets and flows exist, so that the
//! pickers, the URL parser and `flowlab render` always agree.

use std::sync::Arc;

use crate::targets::{self, Target, TargetError};

/// Flow families, by their URL/CLI names (issue 4). The first is the default.
pub const FLOW_NAMES: &[&str] = &[
    "realnvp", "planar", "radial", "nice", "glow", "maf", "iaf", "nsf", "cnf",
];

/// The default target's name.
pub const DEFAULT_TARGET: &str = "moons";

/// The default flow's name.
pub const DEFAULT_FLOW: &str = "realnvp";

/// The names of all built-in targets, in menu order.
pub fn target_names() -> &'static [&'static str] {
    targets::NAMES
}

/// Whether `name` is a flow family the app knows.
pub fn is_flow_name(name: &str) -> bool {
    FLOW_NAMES.contains(&name)
}

/// Whether `name` is a built-in target.
pub fn is_target_name(name: &str) -> bool {
    target_names().contains(&name)
}

/// Loads the built-in target called `name`. Shared (`Arc`) because the plot and the trainer
/// both read it.
pub fn load_target(name: &str) -> Result<Arc<dyn Target>, TargetError> {
    targets::by_name(name).map(Arc::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_target_loads() {
        for name in target_names() {
            let target = load_target(name).unwrap();
            assert_eq!(target.name(), *name);
        }
    }

    #[test]
    fn unknown_target_names_the_known_ones() {
        let err = load_target("nope").err().unwrap();
        assert!(err.to_string().contains("nope"), "{err}");
        assert!(err.to_string().contains(DEFAULT_TARGET), "{err}");
    }

    #[test]
    fn default_names_are_listed() {
        assert!(is_target_name(DEFAULT_TARGET));
        assert!(is_flow_name(DEFAULT_FLOW));
        assert_eq!(FLOW_NAMES[0], DEFAULT_FLOW);
    }
}
