//! The web entry point (wasm32 only): starts eframe on `#the_canvas_id`, and publishes the
//! browser test hook.
//!
//! # Test hook
//! `window.flowlab.status()` returns a JSON **string**: the app's [`StatusSnapshot`] of the
//! latest frame (`backend`, `webgpu_available`, `renderer`, `step`, `loss`, `error`, `target`,
//! `flow`, `frames`, …). Before the first frame it is `{"loading":true,…}`; if eframe fails to
//! start or the app panics, `error` says so. The hook is installed before the app starts, so a
//! test can always poll it.
//!
//! Also: `hashchange` re-reads the URL fragment as a new scene, and the app rewrites the fragment
//! (`history.replaceState`) when the user changes the scene, so the URL always shares it.
//!
//! [`StatusSnapshot`]: crate::ui::status::StatusSnapshot

use std::cell::{Cell, RefCell};

use wasm_bindgen::{JsCast as _, JsValue, prelude::*};

use crate::app::FlowlabApp;
use crate::ui::status::StatusSnapshot;

thread_local! {
    /// The JSON `window.flowlab.status()` returns.
    static STATUS_JSON: RefCell<String> = RefCell::new(loading_json(None));
    /// Result of asking the browser for a WebGPU adapter; `None` until it answered.
    static WEBGPU_AVAILABLE: Cell<Option<bool>> = const { Cell::new(None) };
    /// A fragment from a `hashchange` the app has not applied yet.
    static PENDING_FRAGMENT: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The app's egui context, to wake it up from browser events.
    static EGUI_CTX: RefCell<Option<egui::Context>> = const { RefCell::new(None) };
}

const CANVAS_ID: &str = "the_canvas_id";
const LOADING_TEXT_ID: &str = "loading_text";

fn loading_json(error: Option<&str>) -> String {
    serde_json::json!({ "loading": true, "frames": 0, "error": error }).to_string()
}

/// Stores the latest status for the hook.
pub(crate) fn publish_status(status: &StatusSnapshot) {
    match serde_json::to_string(status) {
        Ok(json) => STATUS_JSON.with(|cell| *cell.borrow_mut() = json),
        Err(error) => log::error!("status not serialisable: {error}"),
    }
}

/// Whether the browser offers a WebGPU adapter (`None` while still asking).
pub(crate) fn webgpu_available() -> Option<bool> {
    WEBGPU_AVAILABLE.with(Cell::get)
}

/// Lets browser events wake the app.
pub(crate) fn register_context(ctx: &egui::Context) {
    EGUI_CTX.with(|cell| *cell.borrow_mut() = Some(ctx.clone()));
}

/// A fragment from a `hashchange` event, once.
pub(crate) fn take_pending_fragment() -> Option<String> {
    PENDING_FRAGMENT.with(|cell| cell.borrow_mut().take())
}

/// The page's URL fragment (with its `#`), or `""`.
pub(crate) fn location_fragment() -> String {
    web_sys::window()
        .and_then(|window| window.location().hash().ok())
        .unwrap_or_default()
}

/// Rewrites the URL fragment without a `hashchange` event or a history entry.
pub(crate) fn replace_location_fragment(fragment: &str) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let Ok(history) = window.history() else {
        return;
    };
    if let Err(error) =
        history.replace_state_with_url(&JsValue::NULL, "", Some(&format!("#{fragment}")))
    {
        log::warn!("could not update the URL: {error:?}");
    }
}

fn request_repaint() {
    EGUI_CTX.with(|cell| {
        if let Some(ctx) = cell.borrow().as_ref() {
            ctx.request_repaint();
        }
    });
}

/// Entry point, run by wasm-bindgen when the module loads.
#[wasm_bindgen(start)]
pub fn start() {
    // Why `.ok()`: a second init (e.g. hot reload) fails harmlessly.
    eframe::WebLogger::init(log::LevelFilter::Info).ok();
    let runner = eframe::WebRunner::new();
    if let Err(error) = install_status_hook(&runner) {
        log::error!("could not install window.flowlab: {error:?}");
    }
    wasm_bindgen_futures::spawn_local(async move {
        let result = start_app(&runner).await;
        match result {
            Ok(()) => {
                if let Some(loading) = element_by_id(LOADING_TEXT_ID) {
                    loading.remove();
                }
                if let Err(error) = install_hashchange_listener() {
                    log::warn!("no hashchange listener: {error:?}");
                }
            }
            Err(message) => show_failure(&message),
        }
        let available = probe_webgpu().await;
        WEBGPU_AVAILABLE.with(|cell| cell.set(Some(available)));
        request_repaint();
    });
}

async fn start_app(runner: &eframe::WebRunner) -> Result<(), String> {
    let canvas = element_by_id(CANVAS_ID)
        .ok_or_else(|| format!("the page has no element #{CANVAS_ID}"))?
        .dyn_into::<web_sys::HtmlCanvasElement>()
        .map_err(|_| format!("#{CANVAS_ID} is not a <canvas>"))?;
    runner
        .start(
            canvas,
            eframe::WebOptions::default(),
            Box::new(|cc| Ok(Box::new(FlowlabApp::new(cc)))),
        )
        .await
        .map_err(|error| format!("flowlab could not start: {}", js_error_text(&error)))
}

/// Shows `message` in the page (in place of the loading text) and in the status hook.
fn show_failure(message: &str) {
    log::error!("{message}");
    STATUS_JSON.with(|cell| *cell.borrow_mut() = loading_json(Some(message)));
    if let Some(loading) = element_by_id(LOADING_TEXT_ID) {
        loading.set_class_name("centered error");
        loading.set_text_content(Some(message));
    }
}

fn install_status_hook(runner: &eframe::WebRunner) -> Result<(), JsValue> {
    let window = web_sys::window().ok_or_else(|| JsValue::from_str("no window"))?;
    let runner = runner.clone();
    let status = Closure::<dyn Fn() -> String>::new(move || {
        if let Some(panic) = runner.panic_summary() {
            let message = format!("flowlab crashed: {}", panic.message());
            show_failure(&message);
        }
        STATUS_JSON.with(|cell| cell.borrow().clone())
    });
    let hook = js_sys::Object::new();
    js_sys::Reflect::set(&hook, &JsValue::from_str("status"), status.as_ref())?;
    let bench = Closure::<dyn Fn(String) -> String>::new(bench_json);
    js_sys::Reflect::set(&hook, &JsValue::from_str("bench"), bench.as_ref())?;
    js_sys::Reflect::set(&window, &JsValue::from_str("flowlab"), &hook)?;
    // Why: the hooks live as long as the page.
    status.forget();
    bench.forget();
    Ok(())
}

/// `window.flowlab.bench(flow)`: the same measurement as `flowlab bench --flow <flow> --json`
/// (batch 512, single thread), run in the page so wasm32 and native compare like for like.
/// Blocks the page for a second or two; meant for tests and the curious.
fn bench_json(flow: String) -> String {
    use crate::flows::{Family, FlowConfig};
    use crate::train::bench::{bench_flow, bench_objective};
    let report = Family::from_name(&flow)
        .map_err(|e| e.to_string())
        .and_then(|family| {
            bench_flow(
                &FlowConfig::new(family),
                bench_objective(family),
                512,
                20,
                200,
            )
            .map_err(|e| e.to_string())
        });
    match report {
        Ok(r) => serde_json::to_string(&r).unwrap_or_default(),
        Err(error) => serde_json::json!({ "error": error }).to_string(),
    }
}

fn install_hashchange_listener() -> Result<(), JsValue> {
    let window = web_sys::window().ok_or_else(|| JsValue::from_str("no window"))?;
    let on_change = Closure::<dyn Fn(web_sys::Event)>::new(|_event| {
        PENDING_FRAGMENT.with(|cell| *cell.borrow_mut() = Some(location_fragment()));
        request_repaint();
    });
    window.add_event_listener_with_callback("hashchange", on_change.as_ref().unchecked_ref())?;
    on_change.forget();
    Ok(())
}

/// Asks `navigator.gpu.requestAdapter()`; `false` if there is no `navigator.gpu`, it throws, or
/// it yields `null`.
async fn probe_webgpu() -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let get =
        |object: &JsValue, key: &str| js_sys::Reflect::get(object, &JsValue::from_str(key)).ok();
    let Some(gpu) = get(&window, "navigator").and_then(|navigator| get(&navigator, "gpu")) else {
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

fn element_by_id(id: &str) -> Option<web_sys::Element> {
    web_sys::window()?.document()?.get_element_by_id(id)
}

fn js_error_text(value: &JsValue) -> String {
    value
        .as_string()
        .or_else(|| {
            value
                .dyn_ref::<js_sys::Error>()
                .map(|error| String::from(error.message()))
        })
        .unwrap_or_else(|| format!("{value:?}"))
}
