//! A trained flow as data: the `model.json` format `flowlab train` writes and `--init` reads,
//! and that the app can save and load.
//!
//! Owns the format only (serde); reading and writing files is the caller's. Depends on the
//! flow registry and the engine's parameter store, nothing above them.

use super::Flow;
use super::registry::{FlowConfig, FlowError, build_flow};
use crate::engine::ParamStore;

/// A trained model as `model.json` holds it: the architecture, the data dimension and every
/// parameter (names, shapes and values). Its JSON form is pinned by tests; change it only with
/// a migration.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedModel {
    /// The architecture.
    pub config: FlowConfig,
    /// Data dimension.
    pub dim: usize,
    /// Every parameter.
    pub params: ParamStore,
}

impl SavedModel {
    /// A snapshot of `flow`'s architecture and current parameters.
    pub fn of(flow: &Flow) -> Self {
        Self {
            config: flow.config.clone(),
            dim: flow.dim,
            params: flow.store.clone(),
        }
    }

    /// Rebuilds the flow: validates the settings, builds the architecture and loads the
    /// parameters, refusing ones whose names, shapes or count do not fit
    /// ([`FlowError::Params`]) or that are not finite.
    pub fn into_flow(self) -> Result<Flow, FlowError> {
        self.config.validate()?;
        // Why seed 0: every parameter is replaced by the saved values just below.
        let mut flow = build_flow(&self.config, self.dim, 0)?;
        flow.store.load_from(&self.params)?;
        Ok(flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::{Family, FlowConfig};

    #[test]
    fn a_saved_flow_comes_back_with_its_parameters() {
        let flow = build_flow(&FlowConfig::new(Family::Maf), 2, 7).unwrap();
        let json = serde_json::to_string(&SavedModel::of(&flow)).unwrap();
        let saved: SavedModel = serde_json::from_str(&json).unwrap();
        let back = saved.into_flow().unwrap();
        assert_eq!(back.config, flow.config);
        assert_eq!(back.store.values(), flow.store.values());
    }

    #[test]
    fn a_spline_flow_saved_before_marginal_splines_loads_as_it_was() {
        let config = FlowConfig {
            marginal_splines: false,
            ..FlowConfig::new(Family::Nsf)
        };
        let flow = build_flow(&config, 2, 7).unwrap();
        let mut json = serde_json::to_value(SavedModel::of(&flow)).unwrap();
        json["config"]
            .as_object_mut()
            .unwrap()
            .remove("marginal_splines");
        let back = serde_json::from_value::<SavedModel>(json)
            .unwrap()
            .into_flow()
            .unwrap();
        assert!(!back.config.marginal_splines);
        assert_eq!(back.store.values(), flow.store.values());
        let with = build_flow(&FlowConfig::new(Family::Nsf), 2, 7).unwrap();
        assert!(
            with.n_params() > back.n_params(),
            "the new default has them"
        );
    }

    #[test]
    fn parameters_of_another_architecture_are_a_typed_error() {
        let flow = build_flow(&FlowConfig::new(Family::Maf), 2, 7).unwrap();
        let mut saved = SavedModel::of(&flow);
        saved.config.layers += 1;
        assert!(matches!(saved.into_flow(), Err(FlowError::Params(_))));
    }
}
