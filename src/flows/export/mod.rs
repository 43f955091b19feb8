//! Exporting a trained flow for use outside flowlab: [`pytorch_script`] writes a self-contained
//! PyTorch module (one `.py` file, weights embedded) that rebuilds the flow layer for layer and
//! reproduces flowlab's `log p(x)` to 1e-4.
//!
//! Owns the text of the exports only; reading `model.json` and writing files is the caller's
//! (the CLI's `flowlab export`). Depends on the flow registry and [`SavedModel`], nothing above.

mod pytorch;

pub use pytorch::pytorch_script;

use super::registry::FlowError;
use crate::engine::ParamError;

#[cfg(doc)]
use super::SavedModel;

/// Why a model could not be exported. `Display` is one sentence for the user.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ExportError {
    /// The settings name no flow flowlab can build (an unknown family, an out-of-range option).
    #[error("cannot export the model: {0}")]
    Settings(FlowError),
    /// The saved parameters do not fit the architecture their settings describe (wrong names,
    /// shapes or count, or values that are not finite).
    #[error("cannot export the model: {0}")]
    Parameters(ParamError),
}

impl From<FlowError> for ExportError {
    fn from(error: FlowError) -> Self {
        match error {
            FlowError::Params(p) => ExportError::Parameters(p),
            other => ExportError::Settings(other),
        }
    }
}
