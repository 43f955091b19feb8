//! The browser (wasm32 only): the entry point, the test hook and the web side of the platform
//! seam.
//!
//! The same module runs twice: in the page, where [`start`] starts eframe on
//! `#the_canvas_id`, and in each training Web Worker, where [`start`] finds no `window` and
//! runs the trainer loop ([`worker`]). The page hands the worker its own compiled
//! `WebAssembly.Module` ([`link`]), so a worker downloads and compiles nothing.
//!
//! # Test hook
//! `window.flowlab.status()` returns a JSON **string**: the app's [`StatusSnapshot`] of the
//! latest frame (`backend`, `webgpu_available`, `renderer`, `step`, `loss`, `error`, `target`,
//! `flow`, `frame_ms`, `training_thread`, `models`, …). Before the first frame it is
//! `{"loading":true,…}`; if eframe fails to start or the app panics, `error` says so. The hook
//! is installed before the app starts, so a test can always poll it.
//! `window.flowlab.bench(flow)` times a training step in the page (see [`bench_json`]).
//! `window.flowlab.inject_fault(name)` injects a fault (see [`inject_fault_json`]). After a
//! panic the page shows what happened and the scene's link, and `status()` answers
//! `{"crashed":true,"error":…,"scene":<the link>}`.
//!
//! [`StatusSnapshot`]: crate::lab::StatusSnapshot

use std::cell::RefCell;

use wasm_bindgen::{JsCast as _, JsValue, prelude::*};

use crate::app::FlowlabApp;

mod link;
pub mod platform;
mod worker;

thread_local! {
    /// The JSON `window.flowlab.status()` returns.
    static STATUS_JSON: RefCell<String> = RefCell::new(loading_json(None));
    /// Whether the crash page is shown (its status then stands).
    static CRASHED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

const CANVAS_ID: &str = "the_canvas_id";
const LOADING_TEXT_ID: &str = "loading_text";

fn loading_json(error: Option<&str>) -> String {
    serde_json::json!({ "loading": true, "frames": 0, "error": error }).to_string()
}

/// Runs when the module is instantiated: in the page, starts the app; in a Web Worker the
/// page spawned, starts the trainer.
#[wasm_bindgen(start)]
pub fn start() {
    match web_sys::window() {
        Some(_) => start_page(),
        None => worker::run(),
    }
}

fn start_page() {
    // Why `.ok()`: a second init (e.g. hot reload) fails harmlessly.
    eframe::WebLogger::init(log::LevelFilter::Info).ok();
    let runner = eframe::WebRunner::new();
    // After `WebRunner::new`, which installs eframe's panic handler: ours runs after it.
    install_crash_page();
    if let Err(error) = install_status_hook(&runner) {
        log::error!("could not install window.flowlab: {error:?}");
    }
    wasm_bindgen_futures::spawn_local(async move {
        match start_app(&runner).await {
            Ok(()) => {
                if let Some(loading) = element_by_id(LOADING_TEXT_ID) {
                    loading.remove();
                }
                if let Err(error) = platform::install_hashchange_listener() {
                    log::warn!("no hashchange listener: {error:?}");
                }
            }
            Err(message) => show_failure(&message),
        }
        platform::probe_webgpu().await;
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

/// Where a panic leaves the page: eframe stops drawing, so without this the student sees a
/// frozen canvas. Instead the page says what happened, that nothing is lost (the settings and
/// a drawn target are written to the URL and to `localStorage` whenever they change, so they
/// are saved before any panic), and gives the link that reproduces the scene.
fn install_crash_page() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "an unknown error".to_owned());
        let place = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        show_crash(&format!("{message}{place}"));
    }));
}

/// The crash page over the dead canvas: the message, the reassurance, the scene's link.
fn show_crash(message: &str) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let Some(document) = window.document() else {
        return;
    };
    if CRASHED.replace(true) {
        return;
    }
    let link = window.location().href().unwrap_or_default();
    let build = || -> Result<(), JsValue> {
        let page = document.create_element("div")?;
        page.set_id(CRASH_ID);
        page.set_class_name("crash");
        let text = document.create_element("p")?;
        text.set_text_content(Some(&format!(
            "flowlab stopped: {message}\n\nYour settings and your drawn target are saved: \
             reload the page to go on where you were. This link reproduces the scene — \
             please send it with a bug report:"
        )));
        page.append_child(&text)?;
        let anchor = document.create_element("a")?;
        anchor.set_attribute("href", &link)?;
        anchor.set_text_content(Some(&link));
        page.append_child(&anchor)?;
        document
            .body()
            .ok_or_else(|| JsValue::from_str("no <body>"))?
            .append_child(&page)?;
        Ok(())
    };
    if let Err(error) = build() {
        log::error!("could not show the crash page: {error:?}");
    }
    STATUS_JSON.with(|cell| {
        if let Ok(mut json) = cell.try_borrow_mut() {
            *json = serde_json::json!({
                "loading": false,
                "error": format!("flowlab crashed: {message}"),
                "crashed": true,
                "scene": link,
            })
            .to_string();
        }
    });
}

/// The crash page's element.
const CRASH_ID: &str = "crash";

fn install_status_hook(runner: &eframe::WebRunner) -> Result<(), JsValue> {
    let window = web_sys::window().ok_or_else(|| JsValue::from_str("no window"))?;
    let runner = runner.clone();
    let status = Closure::<dyn Fn() -> String>::new(move || {
        // The crash page has replaced the status with the crash and its scene.
        if let Some(panic) = runner.panic_summary()
            && !CRASHED.get()
        {
            let message = format!("flowlab crashed: {}", panic.message());
            show_failure(&message);
        }
        STATUS_JSON.with(|cell| cell.borrow().clone())
    });
    let hook = js_sys::Object::new();
    js_sys::Reflect::set(&hook, &JsValue::from_str("status"), status.as_ref())?;
    let bench = Closure::<dyn Fn(String) -> String>::new(bench_json);
    js_sys::Reflect::set(&hook, &JsValue::from_str("bench"), bench.as_ref())?;
    let probe = Closure::<dyn Fn(f64, f64) -> String>::new(probe_json);
    js_sys::Reflect::set(&hook, &JsValue::from_str("probe"), probe.as_ref())?;
    let fault = Closure::<dyn Fn(String) -> String>::new(inject_fault_json);
    js_sys::Reflect::set(&hook, &JsValue::from_str("inject_fault"), fault.as_ref())?;
    let step = Closure::<dyn Fn(f64) -> String>::new(step_json);
    js_sys::Reflect::set(&hook, &JsValue::from_str("step"), step.as_ref())?;
    js_sys::Reflect::set(&window, &JsValue::from_str("flowlab"), &hook)?;
    // Why: the hooks live as long as the page.
    fault.forget();
    step.forget();
    status.forget();
    bench.forget();
    probe.forget();
    Ok(())
}

/// `window.flowlab.inject_fault(name)`: proves the app survives a fault — `"panic"` (the app
/// panics in its next frame: the crash page), `"trainer-crash"` (the first model's worker
/// dies), `"trainer-hang"` (it stops answering), `"gpu-lost"` (its GPU device is destroyed).
/// Answers `{"injected": name}` or `{"error": …}`.
fn inject_fault_json(name: String) -> String {
    match crate::lab::protocol::InjectedFault::from_name(&name) {
        Ok(fault) => {
            platform::HOOK_FAULTS.with(|cell| cell.borrow_mut().push(fault));
            platform::wake();
            serde_json::json!({ "injected": name }).to_string()
        }
        Err(error) => serde_json::json!({ "error": error }).to_string(),
    }
}

/// Most steps one `window.flowlab.step(n)` call asks for.
const MAX_HOOK_STEPS: f64 = 10_000.0;

/// `window.flowlab.step(n)`: pauses training and takes `n` single steps (1 … 10,000) with
/// every model, each reported on its own, as the Step button does: after them, `status()`'s
/// `loss` is the last step's loss. Answers `{"stepping": n}` or `{"error": …}`.
fn step_json(n: f64) -> String {
    if !((1.0..=MAX_HOOK_STEPS).contains(&n) && n.fract() == 0.0) {
        return serde_json::json!({ "error": "n must be a whole number from 1 to 10000" })
            .to_string();
    }
    platform::HOOK_STEPS.with(|cell| *cell.borrow_mut() += n as u32);
    platform::wake();
    serde_json::json!({ "stepping": n as u32 }).to_string()
}

/// `window.flowlab.probe(x, y)`: the point taken apart by every model (see
/// `lab::probe::probes_json`). The first call pins the point and answers
/// `{"point": [x, y], "pending": true, "models": []}`; once the trainers have taken it apart
/// (within a second or so), the same call answers with every model's values.
fn probe_json(x: f64, y: f64) -> String {
    let point = [x as f32, y as f32];
    let pending = || serde_json::json!({ "point": point, "pending": true, "models": [] });
    if !point.iter().all(|v| v.is_finite()) {
        return serde_json::json!({ "point": null, "error": "x and y must be finite numbers" })
            .to_string();
    }
    let known = platform::PROBES_JSON.with(|cell| {
        let json = cell.borrow();
        let entries: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap_or_default();
        entries.into_iter().find(|entry| {
            entry["point"].as_array().is_some_and(|p| {
                p.len() == 2
                    && p[0].as_f64().map(|v| v as f32) == Some(point[0])
                    && p[1].as_f64().map(|v| v as f32) == Some(point[1])
            })
        })
    });
    match known {
        Some(entry) if entry["models"].as_array().is_some_and(|m| !m.is_empty()) => {
            entry.to_string()
        }
        Some(_) => pending().to_string(),
        None => {
            platform::HOOK_PROBES.with(|cell| cell.borrow_mut().push(point));
            platform::wake();
            pending().to_string()
        }
    }
}

/// `window.flowlab.bench(flow)`: the same measurement as `flowlab bench --flow <flow> --json`
/// (batch 512, single thread), run on the page's thread so wasm32 and native compare like for
/// like. Blocks the page for a second or two; meant for tests and the curious.
fn bench_json(flow: String) -> String {
    use crate::flows::{Family, FlowConfig};
    use crate::train::bench::{bench_flow, bench_objective};
    let report = Family::from_name(&flow)
        .map_err(|e| e.to_string())
        .and_then(|family| {
            bench_flow(
                &FlowConfig::reference(family),
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
