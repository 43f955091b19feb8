//! The web side of the platform seam (see `crate::platform`): the URL fragment, the status
//! hook's JSON, WebGPU detection, and trainers in Web Workers.

use std::cell::{Cell, RefCell};

use wasm_bindgen::{JsCast as _, JsValue, prelude::*};

use super::STATUS_JSON;
use crate::lab::{StatusSnapshot, TrainerLink};

thread_local! {
    /// Result of asking the browser for a WebGPU adapter; `None` until it answered.
    static WEBGPU_AVAILABLE: Cell<Option<bool>> = const { Cell::new(None) };
    /// A fragment from a `hashchange` the app has not applied yet.
    static PENDING_FRAGMENT: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The app's egui context, to wake it up from browser events and workers.
    static EGUI_CTX: RefCell<Option<egui::Context>> = const { RefCell::new(None) };
}

/// Whether this is the browser build.
pub const IS_WEB: bool = true;

/// The page's URL fragment (with its `#`), if it has one.
pub fn initial_fragment() -> Option<String> {
    let hash = web_sys::window()?.location().hash().ok()?;
    (!hash.trim_start_matches('#').is_empty()).then_some(hash)
}

/// A fragment from a `hashchange` event (the user edited the URL), once.
pub fn take_fragment_change() -> Option<String> {
    PENDING_FRAGMENT.with(|cell| cell.borrow_mut().take())
}

/// Rewrites the URL fragment without a `hashchange` event or a history entry.
pub fn write_fragment(fragment: &str) {
    let Some(history) = web_sys::window().and_then(|window| window.history().ok()) else {
        return;
    };
    if let Err(error) =
        history.replace_state_with_url(&JsValue::NULL, "", Some(&format!("#{fragment}")))
    {
        log::warn!("could not update the URL: {error:?}");
    }
}

/// Where the spec is kept between visits (`localStorage`).
const SPEC_STORAGE_KEY: &str = "flowlab.spec";

/// The spec stored by the last visit (its fragment form), if any.
pub fn stored_spec() -> Option<String> {
    let storage = web_sys::window()?.local_storage().ok()??;
    storage.get_item(SPEC_STORAGE_KEY).ok()?
}

/// Keeps `fragment` for the next visit. Why not eframe's storage: its `persistence` feature
/// adds 145 KB (gzip) of serialisation code to the page to keep this one line.
pub fn store_spec(fragment: &str) {
    let storage = web_sys::window().and_then(|window| window.local_storage().ok().flatten());
    if let Some(storage) = storage
        && let Err(error) = storage.set_item(SPEC_STORAGE_KEY, fragment)
    {
        // Private browsing or a full quota: the scene is still in the URL.
        log::warn!("could not keep the settings: {error:?}");
    }
}

/// Stores the latest status for `window.flowlab.status()`.
pub fn publish_status(status: &StatusSnapshot) {
    match serde_json::to_string(status) {
        Ok(json) => STATUS_JSON.with(|cell| *cell.borrow_mut() = json),
        Err(error) => log::error!("status not serialisable: {error}"),
    }
}

/// Whether the browser offers a WebGPU adapter (`None` while still asking).
pub fn webgpu_available() -> Option<bool> {
    WEBGPU_AVAILABLE.with(Cell::get)
}

/// Lets browser events and workers wake the app.
pub fn register_context(ctx: &egui::Context) {
    EGUI_CTX.with(|cell| *cell.borrow_mut() = Some(ctx.clone()));
}

/// How many trainers may run at once: `navigator.hardwareConcurrency − 1` (the page keeps a
/// core), at least one.
pub fn max_parallel_trainers() -> usize {
    let cores = web_sys::window().map_or(1.0, |w| w.navigator().hardware_concurrency());
    (cores as usize).saturating_sub(1).max(1)
}

/// Starts a trainer in a new Web Worker running this page's wasm module; it reports (and so
/// wakes the app) at most every `wake_every`.
pub fn spawn_trainer(
    _ctx: &egui::Context,
    wake_every: std::time::Duration,
) -> Result<Box<dyn TrainerLink>, String> {
    super::link::WorkerLink::spawn(wake_every).map(|link| Box::new(link) as Box<dyn TrainerLink>)
}

/// Asks the app for a frame (a browser event, a worker's message).
pub(super) fn request_repaint() {
    EGUI_CTX.with(|cell| {
        if let Some(ctx) = cell.borrow().as_ref() {
            ctx.request_repaint_after(crate::lab::host::WAKE_DELAY);
        }
    });
}

pub(super) fn install_hashchange_listener() -> Result<(), JsValue> {
    let window = web_sys::window().ok_or_else(|| JsValue::from_str("no window"))?;
    let on_change = Closure::<dyn Fn(web_sys::Event)>::new(|_event| {
        let hash = web_sys::window()
            .and_then(|window| window.location().hash().ok())
            .unwrap_or_default();
        PENDING_FRAGMENT.with(|cell| *cell.borrow_mut() = Some(hash));
        request_repaint();
    });
    window.add_event_listener_with_callback("hashchange", on_change.as_ref().unchecked_ref())?;
    on_change.forget();
    Ok(())
}

/// Asks `navigator.gpu.requestAdapter()` and records the answer: `false` if there is no
/// `navigator.gpu`, it throws, or it yields `null`.
pub(super) async fn probe_webgpu() {
    let available = ask_for_webgpu_adapter().await;
    WEBGPU_AVAILABLE.with(|cell| cell.set(Some(available)));
    request_repaint();
}

async fn ask_for_webgpu_adapter() -> bool {
    let get =
        |object: &JsValue, key: &str| js_sys::Reflect::get(object, &JsValue::from_str(key)).ok();
    let Some(gpu) =
        get(&js_sys::global(), "navigator").and_then(|navigator| get(&navigator, "gpu"))
    else {
        return false;
    };
    if gpu.is_undefined() || gpu.is_null() {
        return false;
    }
    let Some(request) =
        get(&gpu, "requestAdapter").and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    else {
        return false;
    };
    let Ok(promise) = request.call0(&gpu) else {
        return false;
    };
    let Ok(promise) = promise.dyn_into::<js_sys::Promise>() else {
        return false;
    };
    match wasm_bindgen_futures::JsFuture::from(promise).await {
        Ok(adapter) => !(adapter.is_null() || adapter.is_undefined()),
        Err(_) => false,
    }
}
