//! The native side of the platform seam (see `crate::platform`): trainers on `std::thread`s.
//! The URL, the status hook and WebGPU detection are the web's business; natively they are
//! no-ops here and the window takes its scene from `--scene`.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::time::Duration;

use crate::engine::gpu::GpuContext;
use crate::lab::protocol::{FromTrainer, RunError, Stage, ToTrainer};
use crate::lab::session::TrainLoop;
use crate::lab::{StatusSnapshot, TrainerLink, TrainingThread};

/// Whether this is the browser build.
pub const IS_WEB: bool = false;

/// The scene in the page's URL: natively there is none (the window gets `--scene`).
pub fn initial_fragment() -> Option<String> {
    None
}

/// A scene the user typed into the URL since the last call: never, natively.
pub fn take_fragment_change() -> Option<String> {
    None
}

/// Writes the scene into the URL: natively there is no URL.
pub fn write_fragment(_fragment: &str) {}

/// The file the spec is kept in between sessions: `$XDG_CONFIG_HOME/flowlab/spec` (or
/// `~/.config/flowlab/spec`, `%APPDATA%\flowlab\spec`).
fn spec_file() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("APPDATA").map(std::path::PathBuf::from))
        .or_else(|| {
            std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".config"))
        })?;
    Some(base.join("flowlab").join("spec"))
}

/// The spec stored by the last session (its fragment form), if any. Why not eframe's
/// storage: its `persistence` feature adds 145 KB (gzip) to the web build to keep one line.
pub fn stored_spec() -> Option<String> {
    let text = std::fs::read_to_string(spec_file()?).ok()?;
    // Why bounded: a hand-edited or damaged file should not be parsed at any length.
    // An edited target makes the line long (an image's grid is some 20 kB).
    (text.len() <= 4 * 1024 * 1024).then(|| text.trim().to_owned())
}

/// Keeps `fragment` for the next session (a failure only costs the next session's start).
pub fn store_spec(fragment: &str) {
    let Some(path) = spec_file() else {
        return;
    };
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, fragment));
    if let Err(error) = written {
        log::warn!("could not keep the settings in {}: {error}", path.display());
    }
}

/// Saves an exported file in the downloads folder (`$XDG_DOWNLOAD_DIR`, else `~/Downloads`,
/// else the working directory); returns where it went.
pub fn save_file(file: &crate::lab::export::ExportFile) -> Result<String, String> {
    let folder = std::env::var_os("XDG_DOWNLOAD_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| std::path::Path::new(&home).join("Downloads"))
                .filter(|dir| dir.is_dir())
        })
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    let path = folder.join(&file.name);
    std::fs::write(&path, &file.bytes)
        .map(|()| path.display().to_string())
        .map_err(|e| format!("could not save {}: {e}", path.display()))
}

/// Opens the file picker: natively files are dropped on the window (no dialog crate: see
/// the README), so this says so.
pub fn open_file() -> Result<(), String> {
    Err("drop the image, CSV or model.json on the window to open it".to_owned())
}

thread_local! {
    /// Files dropped on the window, read, not yet taken by the app.
    static OPENED: std::cell::RefCell<Vec<crate::lab::export::OpenedFile>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads files dropped on the window (each at most the targets' file limit); they arrive in
/// [`take_opened_files`].
pub fn receive_dropped(files: Vec<egui::DroppedFileHandle>) {
    OPENED.with(|cell| {
        for file in files {
            let path = file.path().to_string_lossy().into_owned();
            let bytes = crate::targets::read_limited(&path)
                .map(crate::lab::export::FileContent::Bytes)
                .map_err(|e| e.to_string());
            cell.borrow_mut().push((path, bytes));
        }
    });
}

/// Files dropped since the last call, with their bytes (or why they could not be read).
pub fn take_opened_files() -> Vec<crate::lab::export::OpenedFile> {
    OPENED.with(|cell| std::mem::take(&mut *cell.borrow_mut()))
}

/// Probes the page's test hook asked for: natively there is no hook.
pub fn take_hook_probes() -> Vec<[f32; 2]> {
    Vec::new()
}

/// Single steps the page's test hook asked for: natively there is no hook.
pub fn take_hook_steps() -> u32 {
    0
}

/// Faults the page's test hook asked for: natively there is no hook.
pub fn take_hook_faults() -> Vec<crate::lab::protocol::InjectedFault> {
    Vec::new()
}

/// Publishes the probes' results for the hook: natively there is none.
pub fn publish_probes(_json: String) {}

/// Publishes the status for the browser test hook: natively there is none (tests read
/// `FlowlabApp::status` directly).
pub fn publish_status(_status: &StatusSnapshot) {}

/// Whether the browser offers WebGPU: natively unknown here (the app asks its renderer).
pub fn webgpu_available() -> Option<bool> {
    None
}

/// Lets platform events wake the app: natively the trainer threads hold the context.
pub fn register_context(_ctx: &egui::Context) {}

/// How many trainers may run at once: one per core, less one for the UI (at least one).
pub fn max_parallel_trainers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

/// Starts a trainer on its own thread; it reports (and so wakes the UI, `ctx`) at most every
/// `wake_every`, and ends when the link is dropped.
pub fn spawn_trainer(
    ctx: &egui::Context,
    wake_every: std::time::Duration,
) -> Result<Box<dyn TrainerLink>, String> {
    ThreadLink::spawn(ctx.clone(), wake_every)
        .map(|link| Box::new(link) as Box<dyn TrainerLink>)
        .map_err(|error| format!("no thread: {error}"))
}

/// A trainer on a `std::thread`, talking through channels.
pub struct ThreadLink {
    commands: Sender<ToTrainer>,
    messages: Receiver<FromTrainer>,
    /// The model last started, to name it if the thread dies.
    generation: u64,
    stopped: bool,
}

impl ThreadLink {
    /// Starts the trainer thread.
    pub fn spawn(ctx: egui::Context, wake_every: std::time::Duration) -> std::io::Result<Self> {
        let (command_tx, command_rx) = channel::<ToTrainer>();
        let (message_tx, message_rx) = channel();
        std::thread::Builder::new()
            .name("flowlab-trainer".into())
            .spawn(move || run_trainer(&command_rx, &message_tx, &ctx))?;
        // Report no more often than the app will draw.
        let _ = command_tx.send(ToTrainer::Pace {
            report_every_ms: wake_every.as_secs_f64() * 1e3,
        });
        Ok(Self {
            commands: command_tx,
            messages: message_rx,
            generation: 0,
            stopped: false,
        })
    }
}

/// The trainer thread: takes commands between steps, blocks while idle, and stops when
/// either channel is closed.
fn run_trainer(
    commands: &Receiver<ToTrainer>,
    messages: &Sender<FromTrainer>,
    ctx: &egui::Context,
) {
    let mut train = TrainLoop::new();
    if messages.send(FromTrainer::Ready).is_err() {
        return;
    }
    loop {
        let command = if train.is_training() {
            // A capped speed waits for the next step here rather than spinning.
            let idle = Duration::from_secs_f64(train.idle_ms() / 1e3);
            if idle.is_zero() {
                commands.try_recv()
            } else {
                commands.recv_timeout(idle).map_err(|error| match error {
                    RecvTimeoutError::Timeout => TryRecvError::Empty,
                    RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
                })
            }
        } else {
            commands.recv().map_err(|_| TryRecvError::Disconnected)
        };
        match command {
            Ok(command) => train.handle(command),
            Err(TryRecvError::Empty) => train.tick(),
            Err(TryRecvError::Disconnected) => return,
        }
        if train.needs_gpu() {
            // A device of the thread's own (natively wgpu answers at once).
            train.set_gpu(GpuContext::headless().map_err(|e| e.to_string()));
        }
        let mut sent = false;
        for message in train.drain() {
            if messages.send(message).is_err() {
                return;
            }
            sent = true;
        }
        // Why a frame for every batch of messages: the trainer reports no more often than
        // the app should draw (`ToTrainer::Pace`), so its reports pace the frames.
        if sent {
            ctx.request_repaint_after(crate::lab::host::WAKE_DELAY);
        }
    }
}

impl TrainerLink for ThreadLink {
    fn send(&mut self, command: ToTrainer) {
        if let ToTrainer::Start { generation, .. } = &command {
            self.generation = *generation;
        }
        // Why ignore: a send fails only if the thread has stopped, which `poll` reports.
        let _ = self.commands.send(command);
    }

    fn poll(&mut self) -> Option<FromTrainer> {
        match self.messages.try_recv() {
            Ok(message) => Some(message),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) if !self.stopped => {
                self.stopped = true;
                Some(FromTrainer::Failed {
                    generation: self.generation,
                    error: RunError::new(Stage::Trainer, "the trainer thread stopped"),
                })
            }
            Err(TryRecvError::Disconnected) => None,
        }
    }

    fn thread(&self) -> TrainingThread {
        TrainingThread::Thread
    }
}

/// The language the system asks for (`LC_ALL`, `LC_MESSAGES`, `LANG`, as POSIX reads them).
pub fn preferred_language() -> crate::i18n::Lang {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .map_or(crate::i18n::Lang::En, |locale| {
            crate::i18n::Lang::from_locale(&locale)
        })
}

/// The Chinese glyphs (`assets/fonts/cjk.ttf`): in the binary natively.
pub fn cjk_font() -> Option<&'static [u8]> {
    Some(include_bytes!("../assets/fonts/cjk.ttf"))
}

/// Whether loading the Chinese glyphs failed: never, natively.
pub fn cjk_font_failed() -> bool {
    false
}
