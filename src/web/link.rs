//! The page's side of a training Web Worker.
//!
//! The worker is a module worker made from a two-line Blob script that imports the page's own
//! wasm-bindgen glue (its URL is the glue's `import.meta.url`) and instantiates the page's
//! compiled `WebAssembly.Module` (`wasm_bindgen::module()`, posted to it first): no second
//! download, no second compile, no extra file, any file name. Commands wait in the link until
//! the worker says `Ready` (a message sent before it has a handler would be lost).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use wasm_bindgen::{JsCast as _, JsValue, prelude::*};

use crate::lab::protocol::{FromTrainer, RunError, Stage, ToTrainer, decode, encode};
use crate::lab::{TrainerLink, TrainingThread};

#[wasm_bindgen]
extern "C" {
    /// `import.meta.url` evaluated in the wasm-bindgen glue (`--target web`): the URL of the
    /// page's own `flowlab.js`, whatever trunk named it.
    #[wasm_bindgen(thread_local_v2, js_namespace = ["import", "meta"], js_name = url)]
    static GLUE_URL: String;
}

/// The worker's whole script: import the page's glue, take the page's `Module` from the first
/// message and instantiate it; that runs `web::start`, which finds no window and starts the
/// trainer (installing its own `onmessage`).
fn worker_script() -> String {
    // A JSON string is a valid JS string literal.
    let glue = serde_json::Value::String(GLUE_URL.with(String::clone));
    format!(
        "import init from {glue};\n\
         self.onmessage = (event) => {{ self.onmessage = null; init({{ module_or_path: event.data }}); }};\n"
    )
}

/// What the link and the worker's event handlers share.
struct Shared {
    worker: web_sys::Worker,
    ready: Cell<bool>,
    pending: RefCell<Vec<ToTrainer>>,
    inbox: RefCell<VecDeque<FromTrainer>>,
    /// The model last started, to name it if the worker fails.
    generation: Cell<u64>,
}

impl Shared {
    fn post(&self, command: &ToTrainer) {
        if let ToTrainer::Start { generation, .. } = command {
            self.generation.set(*generation);
        }
        if !self.ready.get() {
            self.pending.borrow_mut().push(command.clone());
        } else if let Err(error) = self
            .worker
            .post_message(&JsValue::from_str(&encode(command)))
        {
            self.fail(format!("postMessage to the worker failed: {error:?}"));
        }
    }

    fn fail(&self, message: String) {
        self.inbox.borrow_mut().push_back(FromTrainer::Failed {
            generation: self.generation.get(),
            error: RunError::new(Stage::Trainer, message),
        });
    }

    /// A message from the worker: `[json]`, or `[json, Float32Array]` for a report.
    fn receive(&self, data: &JsValue) -> Result<(), RunError> {
        let bad = |what: &str| RunError::new(Stage::Trainer, format!("worker message {what}"));
        let array: &js_sys::Array = data.dyn_ref().ok_or_else(|| bad("is not an array"))?;
        let json = array
            .get(0)
            .as_string()
            .ok_or_else(|| bad("lacks its JSON"))?;
        let mut message: FromTrainer = decode(&json)?;
        match &mut message {
            FromTrainer::Ready => {
                self.ready.set(true);
                for command in self.pending.take() {
                    self.post(&command);
                }
            }
            FromTrainer::Report(report) => {
                let bulk = array
                    .get(1)
                    .dyn_into::<js_sys::Float32Array>()
                    .map(|points| points.to_vec())
                    .unwrap_or_default();
                report.put_bulk(&bulk)?;
            }
            FromTrainer::Failed { .. } | FromTrainer::Model { .. } => {}
        }
        self.inbox.borrow_mut().push_back(message);
        Ok(())
    }
}

/// A trainer in a Web Worker.
pub struct WorkerLink {
    shared: Rc<Shared>,
}

impl WorkerLink {
    /// Starts a module worker running this page's wasm; it reports (and so wakes the app) at
    /// most every `wake_every`.
    pub fn spawn(wake_every: std::time::Duration) -> Result<Self, String> {
        Self::try_spawn(wake_every).map_err(|error| {
            error
                .as_string()
                .or_else(|| {
                    error
                        .dyn_ref::<js_sys::Error>()
                        .map(|e| String::from(e.message()))
                })
                .unwrap_or_else(|| format!("{error:?}"))
        })
    }

    fn try_spawn(wake_every: std::time::Duration) -> Result<Self, JsValue> {
        let script = js_sys::Array::of1(&JsValue::from_str(&worker_script()));
        let blob_options = web_sys::BlobPropertyBag::new();
        blob_options.set_type("text/javascript");
        let blob = web_sys::Blob::new_with_str_sequence_and_options(&script, &blob_options)?;
        let url = web_sys::Url::create_object_url_with_blob(&blob)?;
        // Why a module worker: the wasm-bindgen glue is an ES module (`--target web`).
        let options = web_sys::WorkerOptions::new();
        options.set_type(web_sys::WorkerType::Module);
        options.set_name("flowlab trainer");
        let worker = web_sys::Worker::new_with_options(&url, &options)?;
        let shared = Rc::new(Shared {
            worker: worker.clone(),
            ready: Cell::new(false),
            pending: RefCell::new(Vec::new()),
            inbox: RefCell::new(VecDeque::new()),
            generation: Cell::new(0),
        });
        // Sent once the worker is ready (the link queues it): report no more often than the
        // app will draw.
        shared.post(&ToTrainer::Pace {
            report_every_ms: wake_every.as_secs_f64() * 1e3,
        });
        let receiver = shared.clone();
        // Why a frame for every message: the worker reports no more often than the app should
        // draw (`ToTrainer::Pace` above), so its reports pace the frames.
        let on_message =
            Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
                if let Err(error) = receiver.receive(&event.data()) {
                    receiver.fail(error.message);
                }
                super::platform::request_repaint();
            });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let failer = shared.clone();
        let on_error =
            Closure::<dyn Fn(web_sys::ErrorEvent)>::new(move |event: web_sys::ErrorEvent| {
                failer.fail(format!(
                    "the training worker failed: {} ({}:{})",
                    event.message(),
                    event.filename(),
                    event.lineno()
                ));
                super::platform::request_repaint();
            });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        // Why forget: the handlers live as long as the worker (the link terminates it).
        on_message.forget();
        on_error.forget();
        // The worker instantiates the page's compiled module: a structured clone of a
        // `WebAssembly.Module`, no download and no compile.
        worker.post_message(&wasm_bindgen::module())?;
        // Why the Blob URL is not revoked: the worker fetches its script asynchronously, and
        // a revoked URL would fail that fetch; it is ~200 bytes per worker.
        Ok(Self { shared })
    }
}

impl TrainerLink for WorkerLink {
    fn send(&mut self, command: ToTrainer) {
        self.shared.post(&command);
    }

    fn poll(&mut self) -> Option<FromTrainer> {
        self.shared.inbox.borrow_mut().pop_front()
    }

    fn thread(&self) -> TrainingThread {
        TrainingThread::Worker
    }
}

impl Drop for WorkerLink {
    fn drop(&mut self) {
        self.shared.worker.terminate();
    }
}
