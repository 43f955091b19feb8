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
    /// Files the user picked or dropped, read, not yet taken by the app.
    static OPENED: RefCell<Vec<crate::lab::export::OpenedFile>> = const { RefCell::new(Vec::new()) };
    /// Points `window.flowlab.probe(x, y)` asked for, not yet pinned by the app.
    pub(super) static HOOK_PROBES: RefCell<Vec<[f32; 2]>> = const { RefCell::new(Vec::new()) };
    /// The pinned points' results as JSON, for `window.flowlab.probe`.
    pub(super) static PROBES_JSON: RefCell<String> = const { RefCell::new(String::new()) };
    /// Faults `window.flowlab.inject_fault(name)` asked for, not yet injected by the app.
    pub(super) static HOOK_FAULTS: RefCell<Vec<crate::lab::protocol::InjectedFault>> =
        const { RefCell::new(Vec::new()) };
    /// Steps `window.flowlab.step(n)` asked for, not yet sent by the app.
    pub(super) static HOOK_STEPS: RefCell<u32> = const { RefCell::new(0) };
}

/// Single steps the page's test hook asked for since the last call.
pub fn take_hook_steps() -> u32 {
    HOOK_STEPS.with(|cell| std::mem::take(&mut *cell.borrow_mut()))
}

/// Faults the page's test hook asked for since the last call.
pub fn take_hook_faults() -> Vec<crate::lab::protocol::InjectedFault> {
    HOOK_FAULTS.with(|cell| std::mem::take(&mut *cell.borrow_mut()))
}

/// Hands an exported file to the user as a download (a Blob behind an `<a download>`).
pub fn save_file(file: &crate::lab::export::ExportFile) -> Result<String, String> {
    let fail = |e: JsValue| format!("could not download {}: {e:?}", file.name);
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let bytes = js_sys::Uint8Array::from(file.bytes.as_slice());
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(file.mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(
        &js_sys::Array::of1(&bytes),
        &options,
    )
    .map_err(fail)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(fail)?;
    let anchor: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(fail)?
        .dyn_into()
        .map_err(|_| "no <a>".to_owned())?;
    anchor.set_href(&url);
    anchor.set_download(&file.name);
    anchor.click();
    web_sys::Url::revoke_object_url(&url).map_err(fail)?;
    Ok(format!("downloaded {}", file.name))
}

/// Opens the browser's file picker; the picked file arrives in [`take_opened_files`].
pub fn open_file() -> Result<(), String> {
    let fail = |e: JsValue| format!("could not open the file picker: {e:?}");
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let input: web_sys::HtmlInputElement = document
        .create_element("input")
        .map_err(fail)?
        .dyn_into()
        .map_err(|_| "no <input>".to_owned())?;
    input.set_type("file");
    input.set_accept(".png,.jpg,.jpeg,.gif,.webp,.bmp,.csv,.txt,.json");
    let picked = input.clone();
    let on_change = Closure::<dyn Fn()>::new(move || {
        let Some(file) = picked.files().and_then(|files| files.get(0)) else {
            return;
        };
        let name = file.name();
        wasm_bindgen_futures::spawn_local(async move {
            let content = match wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await {
                Ok(buffer) => content_of(&name, js_sys::Uint8Array::new(&buffer).to_vec()).await,
                Err(error) => Err(format!("{name}: the browser could not read it ({error:?})")),
            };
            OPENED.with(|cell| cell.borrow_mut().push((name, content)));
            wake();
        });
    });
    input.set_onchange(Some(on_change.as_ref().unchecked_ref()));
    // Why: the closure lives as long as the input, which the page drops after one use.
    on_change.forget();
    input.click();
    Ok(())
}

/// Reads files dropped on the page (the browser reads them asynchronously); they arrive in
/// [`take_opened_files`].
pub fn receive_dropped(files: Vec<egui::DroppedFileHandle>) {
    for file in files {
        wasm_bindgen_futures::spawn_local(async move {
            let name = file.path().to_string_lossy().into_owned();
            let content = match file.bytes_async().await {
                Ok(bytes) => content_of(&name, bytes).await,
                Err(error) => Err(error),
            };
            OPENED.with(|cell| cell.borrow_mut().push((name, content)));
            wake();
        });
    }
}

/// Endings of the files the page has the browser decode as images.
const IMAGE_ENDINGS: [&str; 6] = [".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"];

/// A read file's content: an image decoded by the browser into pixels (a file it cannot
/// decode stays bytes, for `lab::export::open` to explain), anything else as it is.
async fn content_of(name: &str, bytes: Vec<u8>) -> Result<crate::lab::export::FileContent, String> {
    use crate::lab::export::FileContent;
    let lower = name.to_ascii_lowercase();
    if !IMAGE_ENDINGS.iter().any(|ending| lower.ends_with(ending)) {
        return Ok(FileContent::Bytes(bytes));
    }
    let Ok(bitmap) = decode_bitmap(&bytes).await else {
        return Ok(FileContent::Bytes(bytes));
    };
    let (width, height) = (bitmap.width(), bitmap.height());
    // Why before drawing: a huge image is refused before its pixels are allocated.
    let checked = crate::targets::image::check_size(width, height);
    let pixels = checked
        .map_err(|e| format!("{name}: {e}"))
        .and_then(|()| pixels_of(&bitmap).map_err(|e| format!("{name}: {e:?}")));
    bitmap.close();
    pixels.map(|rgba| FileContent::Rgba {
        width,
        height,
        rgba,
    })
}

async fn decode_bitmap(bytes: &[u8]) -> Result<web_sys::ImageBitmap, JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let array = js_sys::Uint8Array::from(bytes);
    let blob = web_sys::Blob::new_with_u8_array_sequence(&js_sys::Array::of1(&array))?;
    let promise = window.create_image_bitmap_with_blob(&blob)?;
    wasm_bindgen_futures::JsFuture::from(promise)
        .await?
        .dyn_into()
        .map_err(|_| "not an image bitmap".into())
}

/// The bitmap's RGBA pixels, drawn on a canvas of its size.
fn pixels_of(bitmap: &web_sys::ImageBitmap) -> Result<Vec<u8>, JsValue> {
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let canvas: web_sys::HtmlCanvasElement = document
        .create_element("canvas")?
        .dyn_into()
        .map_err(|_| "no <canvas>")?;
    canvas.set_width(bitmap.width());
    canvas.set_height(bitmap.height());
    let context: web_sys::CanvasRenderingContext2d = canvas
        .get_context("2d")?
        .ok_or("no 2-D context")?
        .dyn_into()
        .map_err(|_| "no 2-D context")?;
    context.draw_image_with_image_bitmap(bitmap, 0.0, 0.0)?;
    let data = context.get_image_data(
        0.0,
        0.0,
        f64::from(bitmap.width()),
        f64::from(bitmap.height()),
    )?;
    Ok(data.data().0)
}

/// Files picked or dropped since the last call, with their bytes (or why they could not be
/// read).
pub fn take_opened_files() -> Vec<crate::lab::export::OpenedFile> {
    OPENED.with(|cell| std::mem::take(&mut *cell.borrow_mut()))
}

/// Wakes the app (for what the page's hooks asked).
pub(super) fn wake() {
    EGUI_CTX.with(|cell| {
        if let Some(ctx) = cell.borrow().as_ref() {
            ctx.request_repaint();
        }
    });
}

/// Points the test hook's `probe(x, y)` asked for since the last call.
pub fn take_hook_probes() -> Vec<[f32; 2]> {
    HOOK_PROBES.with(|cell| std::mem::take(&mut *cell.borrow_mut()))
}

/// Publishes the pinned points' results for `window.flowlab.probe`.
pub fn publish_probes(json: String) {
    PROBES_JSON.with(|cell| *cell.borrow_mut() = json);
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

/// The language the browser asks for (`navigator.language`).
pub fn preferred_language() -> crate::i18n::Lang {
    web_sys::window()
        .and_then(|window| window.navigator().language())
        .map_or(crate::i18n::Lang::En, |tag| {
            crate::i18n::Lang::from_locale(&tag)
        })
}

/// Where the Chinese glyphs stand: fetched only when Chinese is first spoken.
enum CjkFont {
    NotAsked,
    Loading,
    Ready(&'static [u8]),
    Failed,
}

thread_local! {
    static CJK_FONT: RefCell<CjkFont> = const { RefCell::new(CjkFont::NotAsked) };
}

/// The file the page fetches the Chinese glyphs from (web/index.html copies it beside the
/// wasm). Why not in the wasm: it would add its ~0.4 MB to every visit, in every language.
const CJK_FONT_URL: &str = "cjk.ttf";

/// The Chinese glyphs once fetched (`None` while loading, or if the fetch failed: then the
/// app stays in English and says so); the first call starts the fetch.
pub fn cjk_font() -> Option<&'static [u8]> {
    CJK_FONT.with(|state| {
        let mut state = state.borrow_mut();
        match *state {
            CjkFont::Ready(bytes) => return Some(bytes),
            CjkFont::Loading | CjkFont::Failed => return None,
            CjkFont::NotAsked => *state = CjkFont::Loading,
        }
        wasm_bindgen_futures::spawn_local(async {
            let fetched = fetch_bytes(CJK_FONT_URL).await;
            CJK_FONT.with(|state| {
                *state.borrow_mut() = match fetched {
                    Ok(bytes) => CjkFont::Ready(Box::leak(bytes.into_boxed_slice())),
                    Err(error) => {
                        log::error!("could not load the Chinese font {CJK_FONT_URL}: {error:?}");
                        CjkFont::Failed
                    }
                }
            });
            EGUI_CTX.with(|ctx| {
                if let Some(ctx) = ctx.borrow().as_ref() {
                    ctx.request_repaint();
                }
            });
        });
        None
    })
}

/// Whether fetching the Chinese glyphs failed.
pub fn cjk_font_failed() -> bool {
    CJK_FONT.with(|state| matches!(*state.borrow(), CjkFont::Failed))
}

async fn fetch_bytes(url: &str) -> Result<Vec<u8>, JsValue> {
    let window = web_sys::window().ok_or_else(|| JsValue::from_str("no window"))?;
    let response: web_sys::Response =
        wasm_bindgen_futures::JsFuture::from(window.fetch_with_str(url))
            .await?
            .dyn_into()?;
    if !response.ok() {
        return Err(JsValue::from_str(&format!("HTTP {}", response.status())));
    }
    let buffer = wasm_bindgen_futures::JsFuture::from(response.array_buffer()?).await?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}
