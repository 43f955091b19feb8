//! The views' heavy pictures on the GPU: the particles and the warped grid pushed through
//! every layer, and the density grids (the learned density, the density and log-det after a
//! layer). A model trained by the GPU executor has them drawn on the same device.
//!
//! The graphs are the CPU's own ([`inspect::trace_graph`], [`inspect::depth_graph`]),
//! compiled once per shape and fed the current parameters; their outputs come back by
//! `map_async` over later ticks ([`ChunkedProgram`]), so the trainer never waits on the GPU
//! and keeps stepping while the pictures are drawn. The light parts (labels, probes, a CNF's
//! arrows and its adaptive solver's density) stay on the CPU, filled in before submission.
//!
//! Why read back rather than draw from the GPU's buffers: the trainer's device is its Web
//! Worker's, not the page's (see [`super::backend`]), and a picture is a few hundred KB
//! twice a second.

use super::views::Pictures;
use crate::engine::Graph;
use crate::engine::gpu::{ChunkedProgram, GpuContext, GpuError};
use crate::flows::{Flow, inspect};

/// Points per GPU run, at most. Why 16,384: a 128² grid in one run; the reference RealNVP's
/// density graph at this size needs 9 MB.
pub const GPU_ROWS: usize = 16_384;
/// Bytes one picture's program may take on the device; a graph that needs more runs on fewer
/// points at a time. Why: a CNF's density graph keeps every RK4 stage for its backward
/// integration, 40 KB a point (660 MB at 16,384 points), and the page's GPU memory is shared.
pub const PICTURE_BYTES: u64 = 64 << 20;
/// Points per run, at least, before a graph is called too large for the GPU.
const MIN_ROWS: usize = 64;

/// What the GPU draws of one set of pictures.
#[derive(Clone, Debug, PartialEq)]
pub struct HeavyParts<'a> {
    /// Base draws to push through every layer (`n × 2`), or none.
    pub trace_inputs: &'a [f32],
    /// The grid's cell centres (`cells × 2`), or none.
    pub cells: &'a [f32],
    /// The depth whose density and layer log-det are asked for.
    pub depth: Option<usize>,
    /// The learned density is asked for (and is not the adaptive solver's).
    pub density: bool,
}

/// The GPU's share of the views: programs compiled per shape, and the pictures on their way.
pub struct GpuPictures {
    /// The device, its bindings limited to [`PICTURE_BYTES`].
    ctx: GpuContext,
    /// The trace's program, with the points per run it was asked for.
    trace: Option<(usize, ChunkedProgram)>,
    /// By depth `0…K`, the same; only the depths of the latest request are kept.
    depths: Vec<Option<(usize, ChunkedProgram)>>,
    job: Option<Job>,
}

/// Pictures waiting for the GPU.
struct Job {
    pictures: Pictures,
    parts: Vec<Part>,
    /// The learned density is the last depth's, shown as the depth too.
    density_from_depth: bool,
    started_ms: f64,
}

/// One graph evaluation a job waits for.
struct Part {
    kind: PartKind,
    outputs: Option<Vec<Vec<f32>>>,
}

#[derive(Clone, Copy, PartialEq)]
enum PartKind {
    Trace,
    /// The density and layer log-det at this depth (also the learned density at depth `K`).
    Depth(usize),
    /// The learned density, from the last depth's program, when the depth shown is another.
    Density(usize),
}

impl GpuPictures {
    /// Pictures for a flow with `layers` layers on `ctx`. Compiles nothing yet.
    pub fn new(ctx: &GpuContext, layers: usize) -> Self {
        Self {
            ctx: ctx.clone().with_binding_limit(PICTURE_BYTES),
            trace: None,
            depths: (0..=layers).map(|_| None).collect(),
            job: None,
        }
    }

    /// Whether pictures are on their way.
    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    /// Starts drawing `heavy` for `flow` with its current parameters; `pictures` carries the
    /// rest (header and light parts) and comes back from [`Self::poll`] with the arrays.
    pub fn submit(
        &mut self,
        flow: &Flow,
        pictures: Pictures,
        heavy: &HeavyParts<'_>,
        now_ms: f64,
    ) -> Result<(), GpuError> {
        if self.job.is_some() {
            return Err(GpuError::Readback(
                "pictures are already on their way".into(),
            ));
        }
        let params = flow.store.values();
        let mut parts = Vec::new();
        if !heavy.trace_inputs.is_empty() {
            let rows = (heavy.trace_inputs.len() / flow.dim).clamp(1, GPU_ROWS);
            let program = match &mut self.trace {
                Some((wanted, p)) if *wanted == rows => p,
                slot => {
                    let compiled = compile(&self.ctx, flow, rows, |g, x| {
                        inspect::trace_graph(flow, g, x)
                    })?;
                    &mut slot.insert((rows, compiled)).1
                }
            };
            program.submit(params, heavy.trace_inputs)?;
            parts.push(PartKind::Trace);
        }
        if !heavy.cells.is_empty() {
            let layers = flow.layers.len();
            if let Some(depth) = heavy.depth {
                parts.push(PartKind::Depth(depth));
            }
            if heavy.density && heavy.depth != Some(layers) {
                parts.push(PartKind::Density(layers));
            }
            let rows = (heavy.cells.len() / flow.dim).clamp(1, GPU_ROWS);
            for kind in &parts {
                let (PartKind::Depth(depth) | PartKind::Density(depth)) = *kind else {
                    continue;
                };
                let slot = self
                    .depths
                    .get_mut(depth)
                    .ok_or_else(|| GpuError::Validation(format!("no depth {depth}")))?;
                let program = match slot {
                    Some((wanted, p)) if *wanted == rows => p,
                    slot => {
                        let compiled = compile(&self.ctx, flow, rows, |g, x| {
                            inspect::depth_graph(flow, g, x, depth).outputs()
                        })?;
                        &mut slot.insert((rows, compiled)).1
                    }
                };
                program.submit(params, heavy.cells)?;
            }
        }
        // Why drop the others: a scrubbed depth would keep its buffers otherwise (a CNF's are
        // up to 64 MB a depth); compiling one again takes a fraction of a second.
        for (depth, slot) in self.depths.iter_mut().enumerate() {
            let used = parts
                .iter()
                .any(|k| matches!(*k, PartKind::Depth(d) | PartKind::Density(d) if d == depth));
            if !used {
                *slot = None;
            }
        }
        self.job = Some(Job {
            pictures,
            parts: parts
                .into_iter()
                .map(|kind| Part {
                    kind,
                    outputs: None,
                })
                .collect(),
            density_from_depth: heavy.density && heavy.depth == Some(flow.layers.len()),
            started_ms: now_ms,
        });
        Ok(())
    }

    /// The pictures once the GPU has drawn every part, with the milliseconds since their
    /// submission; `None` while some part is on its way. Polls the device.
    pub fn poll(&mut self) -> Option<Result<(Pictures, f64), GpuError>> {
        let job = self.job.as_mut()?;
        for part in job.parts.iter_mut().filter(|p| p.outputs.is_none()) {
            let program = match part.kind {
                PartKind::Trace => self.trace.as_mut().map(|(_, p)| p),
                PartKind::Depth(d) | PartKind::Density(d) => self
                    .depths
                    .get_mut(d)
                    .and_then(Option::as_mut)
                    .map(|(_, p)| p),
            };
            let Some(program) = program else {
                self.job = None;
                return Some(Err(GpuError::Validation(
                    "a picture's program is gone".into(),
                )));
            };
            match program.poll() {
                Some(Ok(outputs)) => part.outputs = Some(outputs),
                Some(Err(error)) => {
                    self.job = None;
                    return Some(Err(error));
                }
                None => {}
            }
        }
        if job.parts.iter().any(|p| p.outputs.is_none()) {
            return None;
        }
        let job = self.job.take()?;
        let mut pictures = job.pictures;
        for part in job.parts {
            let mut outputs = part.outputs.unwrap_or_default().into_iter();
            match part.kind {
                PartKind::Trace => pictures.trace = outputs.flatten().collect(),
                PartKind::Depth(_) => {
                    pictures.depth_density = outputs.next().unwrap_or_default();
                    pictures.log_det = outputs.next().unwrap_or_default();
                    if job.density_from_depth {
                        pictures.density = pictures.depth_density.clone();
                    }
                }
                PartKind::Density(_) => pictures.density = outputs.next().unwrap_or_default(),
            }
        }
        Some(Ok((pictures, job.started_ms)))
    }
}

/// `build`'s graph over an input of `rows × dim` points, compiled for the GPU; over half as
/// many points at a time while its buffers exceed what `ctx` binds.
fn compile(
    ctx: &GpuContext,
    flow: &Flow,
    mut rows: usize,
    build: impl Fn(&mut Graph, crate::engine::Var) -> Vec<crate::engine::Var>,
) -> Result<ChunkedProgram, GpuError> {
    loop {
        let mut g = Graph::new();
        let x = g.input(rows, flow.dim);
        let outputs = build(&mut g, x);
        match ChunkedProgram::compile(ctx, &g, &flow.store, x, &outputs) {
            Err(GpuError::TooLarge { .. }) if rows / 2 >= MIN_ROWS => rows /= 2,
            result => return result,
        }
    }
}
