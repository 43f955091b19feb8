//! The platform seam: the one place that chooses between the browser (`crate::web`) and a
//! native build (`crate::native`). Both offer the same functions — the URL fragment, the
//! status hook, WebGPU detection, and trainers off the UI thread (a Web Worker, a thread) —
//! so nothing above this module needs a `cfg`.

#[cfg(not(target_arch = "wasm32"))]
pub use crate::native::*;
#[cfg(target_arch = "wasm32")]
pub use crate::web::platform::*;
