//! The trainer's side of a Web Worker: [`run`] is called by `web::start` when the module is
//! instantiated in a worker.
//!
//! The loop: one training step per event-loop task, then it yields by posting to itself over
//! a `MessageChannel` (not `setTimeout(0)`, which browsers clamp to ≥ 4 ms once nested), so
//! the page's commands get in between two steps. Reports go out as `[json, Float32Array]`
//! with the array's buffer transferred (moved to the page, not copied).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::{JsCast as _, JsValue, prelude::*};

use crate::engine::gpu::GpuContext;
use crate::lab::protocol::{FromTrainer, RunError, Stage, ToTrainer, decode, encode};
use crate::lab::session::TrainLoop;

/// `log` has no logger in a worker (eframe's is the page's): print to the worker's console,
/// which browsers show beside the page's.
fn console_error(message: &str) {
    web_sys::console::error_1(&JsValue::from_str(message));
}

struct WorkerLoop {
    scope: web_sys::DedicatedWorkerGlobalScope,
    train: RefCell<TrainLoop>,
    /// The port the loop posts to itself through, and whether a tick is already queued.
    tick_port: web_sys::MessagePort,
    tick_queued: Cell<bool>,
    /// Whether the browser was asked for a GPU device.
    gpu_asked: Cell<bool>,
    /// Posts to `tick_port` (a `setTimeout` callback, for a capped speed).
    tick_timeout: js_sys::Function,
}

impl WorkerLoop {
    fn post(&self, message: FromTrainer) {
        let result = match message {
            FromTrainer::Report(mut report) => {
                let bulk = report.take_bulk();
                let header = JsValue::from_str(&encode(&FromTrainer::Report(report)));
                let points = js_sys::Float32Array::new_from_slice(&bulk);
                let transfer = js_sys::Array::of1(&points.buffer());
                self.scope
                    .post_message_with_transfer(&js_sys::Array::of2(&header, &points), &transfer)
            }
            other => self
                .scope
                .post_message(&js_sys::Array::of1(&JsValue::from_str(&encode(&other)))),
        };
        if let Err(error) = result {
            console_error(&format!("flowlab worker: postMessage failed: {error:?}"));
        }
    }

    fn flush(&self) {
        let messages: Vec<FromTrainer> = self.train.borrow_mut().drain().collect();
        for message in messages {
            self.post(message);
        }
    }

    /// Queues the next tick unless one is queued or there is nothing to train: at once, or
    /// after a timeout when a speed cap makes the trainer wait.
    fn schedule(&self) {
        if self.tick_queued.get() || !self.train.borrow().is_training() {
            return;
        }
        self.tick_queued.set(true);
        let idle_ms = self.train.borrow().idle_ms();
        let queued = if idle_ms >= 1.0 {
            self.scope
                .set_timeout_with_callback_and_timeout_and_arguments_0(
                    &self.tick_timeout,
                    idle_ms.ceil() as i32,
                )
                .map(drop)
        } else {
            self.tick_port.post_message(&JsValue::NULL)
        };
        if let Err(error) = queued {
            console_error(&format!(
                "flowlab worker: could not schedule a step: {error:?}"
            ));
        }
    }

    fn tick(&self) {
        self.tick_queued.set(false);
        self.train.borrow_mut().tick();
        self.flush();
        self.schedule();
    }

    fn command(self: &Rc<Self>, data: &JsValue) {
        let command = data
            .as_string()
            .ok_or_else(|| RunError::new(Stage::Trainer, "a command that is not a string"))
            .and_then(|json| decode::<ToTrainer>(&json));
        match command {
            Ok(command) => self.train.borrow_mut().handle(command),
            Err(error) => console_error(&format!("flowlab worker: {error}")),
        }
        self.ask_for_gpu();
        self.flush();
        self.schedule();
    }

    /// Asks the browser for this worker's WebGPU device when a model may use one (once: the
    /// loop keeps the answer), and hands the answer to the loop when it comes.
    fn ask_for_gpu(self: &Rc<Self>) {
        if !self.train.borrow().needs_gpu() || self.gpu_asked.replace(true) {
            return;
        }
        let worker = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let gpu = GpuContext::request().await.map_err(|e| e.to_string());
            worker.train.borrow_mut().set_gpu(gpu);
            worker.flush();
            worker.schedule();
        });
    }
}

/// Starts the trainer in this worker: installs the command handler, says `Ready`, and waits
/// for its first model.
pub fn run() {
    if let Err(error) = try_run() {
        console_error(&format!("flowlab worker: could not start: {error:?}"));
    }
}

fn try_run() -> Result<(), JsValue> {
    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().dyn_into()?;
    let channel = web_sys::MessageChannel::new()?;
    let port = channel.port2();
    let tick_timeout = Closure::<dyn Fn()>::new(move || {
        let _ = port.post_message(&JsValue::NULL);
    })
    .into_js_value()
    .unchecked_into::<js_sys::Function>();
    let worker = Rc::new(WorkerLoop {
        scope: scope.clone(),
        train: RefCell::new(TrainLoop::new()),
        tick_port: channel.port2(),
        tick_queued: Cell::new(false),
        gpu_asked: Cell::new(false),
        tick_timeout,
    });
    let ticker = worker.clone();
    let on_tick = Closure::<dyn Fn()>::new(move || ticker.tick());
    channel
        .port1()
        .set_onmessage(Some(on_tick.as_ref().unchecked_ref()));
    let commander = worker.clone();
    let on_command =
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            commander.command(&event.data());
        });
    scope.set_onmessage(Some(on_command.as_ref().unchecked_ref()));
    // Why forget: the handlers live as long as the worker.
    on_tick.forget();
    on_command.forget();
    worker.post(FromTrainer::Ready);
    Ok(())
}
