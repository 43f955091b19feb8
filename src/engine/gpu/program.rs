//! A graph compiled for the GPU: its storage-buffer layout, its dispatch list, and replay.

use eframe::egui_wgpu::wgpu;

use super::fuse::{self, Launch};
use super::lower::{self, Args, Dispatch, Lowering, tag};
use super::order;
use super::{GpuContext, GpuError, ready_now};
use crate::engine::cpu::ExecError;
use crate::engine::graph::{Graph, Op, Shape, Var};
use crate::engine::params::ParamStore;
use crate::engine::plan::{BufferInit, Plan, Source};

/// The compute pipeline and its bind-group layout: the storage buffer, a launch's uniform
/// slot (a dynamic offset), the argument table and the schedule. One entry point runs every
/// kind of lane, so that lanes of different kinds share a launch.
pub(crate) struct Pipelines {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl Pipelines {
    /// Compiles the kernels; errors land in the caller's error scope (in a browser they are
    /// known only once the scope's future resolves, see [`GpuContext::request`]).
    pub(crate) fn compile(device: &wgpu::Device) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("flowlab kernels"),
            source: wgpu::ShaderSource::Wgsl(include_str!("kernels.wgsl").into()),
        });
        let entry = |binding, ty| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty,
            count: None,
        };
        let read_only = wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: true },
            has_dynamic_offset: false,
            min_binding_size: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("flowlab data + args"),
            entries: &[
                entry(
                    0,
                    wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                ),
                entry(
                    1,
                    wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: wgpu::BufferSize::new(LAUNCH_BYTES),
                    },
                ),
                entry(2, read_only),
                entry(3, read_only),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("flowlab kernels"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("flowlab kernels"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        Self { layout, pipeline }
    }
}

/// Argument slots beyond the graph's dispatches (the training state's optimizer and copies).
const SPARE_SLOTS: usize = 16;
const ARGS_BYTES: u64 = std::mem::size_of::<Args>() as u64;
/// `struct Launch` in kernels.wgsl.
const LAUNCH_BYTES: u64 = 16;
/// The most workgroups along one dimension of a dispatch (WebGPU's default limit).
const MAX_GROUPS_PER_DIM: u32 = 65_535;

/// Where the regions of a program's storage buffer begin (in floats).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Regions {
    /// Floats reserved after the parameters (the training state's regions).
    pub reserved: usize,
}

/// A graph compiled for the GPU.
pub struct GpuProgram {
    ctx: GpuContext,
    data: wgpu::Buffer,
    /// Each launch's header, a uniform slot of `slot_bytes`.
    uniforms: wgpu::Buffer,
    /// Every dispatch's [`Args`], in dispatch order.
    table: wgpu::Buffer,
    /// The lanes and chains of [`fuse::Schedule`].
    schedule: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    slot_bytes: u64,
    pub(crate) dispatches: Vec<Dispatch>,
    launches: Vec<Launch>,
    /// The graph's input nodes: no launch spans one (see [`Self::run_until`]).
    cuts: Vec<u32>,
    sources: Vec<Source>,
    shapes: Vec<Shape>,
    buffer_offsets: Vec<u32>,
    param_len: usize,
    staging: Option<(wgpu::Buffer, u64)>,
    /// Read-backs requested by [`Self::read_later`], oldest first.
    reads: std::collections::VecDeque<LaterRead>,
    /// Staging buffers of finished read-backs, kept for the next ones.
    spare: Vec<(wgpu::Buffer, u64)>,
}

impl std::fmt::Debug for GpuProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuProgram")
            .field("dispatches", &self.dispatches.len())
            .field("launches", &self.launches.len())
            .field("floats", &(self.data.size() / 4))
            .finish()
    }
}

impl GpuProgram {
    /// Compiles `graph` so that `outputs` (and every input node) can be read after a run.
    pub fn compile(
        ctx: &GpuContext,
        graph: &Graph,
        store: &ParamStore,
        outputs: &[Var],
    ) -> Result<Self, GpuError> {
        Self::compile_with(ctx, graph, store, outputs, Regions { reserved: 0 }, &[])
    }

    /// Compiles with `regions.reserved` floats after the parameters, and each `(node, offset)`
    /// of `placed` written at that absolute offset instead of a buffer of its own (gradients
    /// straight into the flat layout).
    pub(crate) fn compile_with(
        ctx: &GpuContext,
        graph: &Graph,
        store: &ParamStore,
        outputs: &[Var],
        regions: Regions,
        placed: &[(Var, u32)],
    ) -> Result<Self, GpuError> {
        let order = order::by_phase(graph);
        let plan = Plan::ordered(graph, store, outputs, Some(&order))?;
        let param_len = plan.param_len;
        let mut next = (param_len + regions.reserved) as u32;
        let step_buffers: std::collections::HashMap<u32, u32> =
            plan.steps.iter().map(|s| (s.out, s.node)).collect();
        // A placed node that a step computes writes at its place; any other (a constant
        // gradient, a node placed twice) is copied there after the graph.
        let mut buffer_offsets = vec![u32::MAX; plan.buffers.len()];
        let mut copies = Vec::new();
        for &(v, at) in placed {
            let buffer = plan.sources[v.index()].buffer();
            match buffer {
                Some(b)
                    if step_buffers.contains_key(&b)
                        && buffer_offsets[b as usize] == u32::MAX
                        && matches!(plan.sources[v.index()], Source::Buffer(_)) =>
                {
                    buffer_offsets[b as usize] = at
                }
                _ => copies.push((v, at)),
            }
        }
        for (offset, buffer) in buffer_offsets.iter_mut().zip(&plan.buffers) {
            if *offset == u32::MAX {
                *offset = next;
                next += buffer.len as u32;
            }
        }
        let mut lowering = Lowering {
            sources: &plan.sources,
            shapes: &plan.shapes,
            buffer_offsets: &buffer_offsets,
            params: 0,
            aux_base: next,
            aux: Vec::new(),
        };
        let mut dispatches = Vec::new();
        for step in &plan.steps {
            let out = buffer_offsets[step.out as usize];
            let shape = plan.shapes[step.node as usize];
            dispatches.extend(lowering.lower(step.node, &step.op, shape, out));
        }
        for (v, at) in copies {
            let src = lowering.offset(v);
            dispatches.push(lower::copy(
                tag::AFTER_GRAPH,
                src,
                at,
                plan.shapes[v.index()].len(),
            ));
        }
        let aux = std::mem::take(&mut lowering.aux);
        let total = next as usize + aux.len();

        let bytes = (total.max(1) * 4) as u64;
        if bytes > ctx.max_binding_bytes() {
            return Err(GpuError::TooLarge {
                needed: bytes.div_ceil(1 << 20),
                limit: ctx.max_binding_bytes() >> 20,
            });
        }
        let mut initial = vec![0.0f32; total.max(1)];
        initial[..param_len].copy_from_slice(store.values());
        for (buffer, &offset) in plan.buffers.iter().zip(&buffer_offsets) {
            let range = offset as usize..offset as usize + buffer.len;
            match &buffer.init {
                BufferInit::Zeros => {}
                BufferInit::Fill(v) => initial[range].fill(*v),
                BufferInit::Constant(values) => initial[range].copy_from_slice(values),
            }
        }
        initial[next as usize..total].copy_from_slice(&aux);

        let device = &ctx.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let data = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("flowlab data"),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        ctx.queue
            .write_buffer(&data, 0, bytemuck::cast_slice(&initial));
        let align = u64::from(device.limits().min_uniform_buffer_offset_alignment);
        let slot_bytes = LAUNCH_BYTES.div_ceil(align) * align;
        // One slot per dispatch, and spares for the training state's own: a launch has at
        // least one dispatch, a lane too.
        let slots = (dispatches.len() + SPARE_SLOTS) as u64;
        let buffer = |label, size, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: usage | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let uniforms = buffer(
            "flowlab launches",
            slots * slot_bytes,
            wgpu::BufferUsages::UNIFORM,
        );
        let table = buffer(
            "flowlab args",
            slots * ARGS_BYTES,
            wgpu::BufferUsages::STORAGE,
        );
        let schedule = buffer(
            "flowlab schedule",
            slots * (fuse::LANE_WORDS as u64 + 1) * 4,
            wgpu::BufferUsages::STORAGE,
        );
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("flowlab data + args"),
            layout: &ctx.pipelines.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: data.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &uniforms,
                        offset: 0,
                        size: wgpu::BufferSize::new(LAUNCH_BYTES),
                    }),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: table.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: schedule.as_entire_binding(),
                },
            ],
        });
        if let Some(Some(error)) = ready_now(scope.pop()) {
            return Err(GpuError::Validation(error.to_string()));
        }
        let mut program = Self {
            ctx: ctx.clone(),
            data,
            uniforms,
            table,
            schedule,
            bind_group,
            slot_bytes,
            dispatches: Vec::new(),
            launches: Vec::new(),
            cuts: graph
                .nodes()
                .iter()
                .enumerate()
                .filter(|(_, n)| matches!(n.op, Op::Input))
                .map(|(i, _)| i as u32)
                .collect(),
            sources: plan.sources,
            shapes: plan.shapes,
            buffer_offsets,
            param_len,
            staging: None,
            reads: std::collections::VecDeque::new(),
            spare: Vec::new(),
        };
        program.set_dispatches(dispatches)?;
        Ok(program)
    }

    /// Replaces the dispatch list (the training state appends its optimizer's), schedules it
    /// into launches and uploads the argument table, the schedule and the launch headers.
    pub(crate) fn set_dispatches(&mut self, dispatches: Vec<Dispatch>) -> Result<(), GpuError> {
        if dispatches.len() as u64 * ARGS_BYTES > self.table.size() {
            return Err(GpuError::Validation(format!(
                "{} dispatches exceed the program's argument slots",
                dispatches.len()
            )));
        }
        let schedule = fuse::schedule(&dispatches, &self.cuts);
        let queue = &self.ctx.queue;
        let args: Vec<Args> = dispatches.iter().map(|d| d.args).collect();
        if !args.is_empty() {
            queue.write_buffer(&self.table, 0, bytemuck::cast_slice(&args));
        }
        // Lane records first, then the chains' entries (a lane's index is absolute).
        let entries_at = (fuse::LANE_WORDS * schedule.lanes.len()) as u32;
        let mut words: Vec<u32> = schedule
            .lanes
            .iter()
            .flat_map(|&lane| {
                let mut lane = lane;
                lane[0] += entries_at;
                lane
            })
            .collect();
        words.extend(&schedule.entries);
        if !words.is_empty() {
            queue.write_buffer(&self.schedule, 0, bytemuck::cast_slice(&words));
        }
        let mut headers = vec![0u8; (schedule.launches.len() as u64 * self.slot_bytes) as usize];
        for (i, launch) in schedule.launches.iter().enumerate() {
            let at = i * self.slot_bytes as usize;
            let header = [launch.lanes.start, launch.lanes.len() as u32, 0, 0];
            headers[at..at + LAUNCH_BYTES as usize].copy_from_slice(bytemuck::cast_slice(&header));
        }
        if !headers.is_empty() {
            queue.write_buffer(&self.uniforms, 0, &headers);
        }
        self.dispatches = dispatches;
        self.launches = schedule.launches;
        Ok(())
    }

    /// Rewrites the arguments of dispatch `index` (lands before the next submission).
    pub(crate) fn set_args(&mut self, index: usize, args: Args) {
        if let Some(d) = self.dispatches.get_mut(index) {
            d.args = args;
            self.ctx.queue.write_buffer(
                &self.table,
                index as u64 * ARGS_BYTES,
                bytemuck::bytes_of(&args),
            );
        }
    }

    /// The device's loss or first uncaught error, if any (see [`GpuContext::fault`]).
    pub fn fault(&self) -> Option<String> {
        self.ctx.fault()
    }

    /// Runs every dispatch: one compute pass, one submission.
    pub fn run(&mut self) {
        self.submit(|node| node <= tag::AFTER_GRAPH);
    }

    /// Runs only the dispatches of nodes created before `v`, an input node (see
    /// [`crate::engine::CpuProgram::run_until`]; launches are never split at other nodes).
    pub fn run_until(&mut self, v: Var) {
        let v = v.index() as u32;
        self.submit(|node| node < v);
    }

    /// Runs the dispatches of `v`, every later node and the work after the graph.
    pub fn run_from(&mut self, v: Var) {
        let v = v.index() as u32;
        self.submit(|node| node >= v && node <= tag::AFTER_GRAPH);
    }

    /// Records the launches whose every dispatch is selected (by node or tag) into one compute
    /// pass and submits it.
    pub(crate) fn submit(&mut self, select: impl Fn(u32) -> bool) {
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("flowlab step"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("flowlab step"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.ctx.pipelines.pipeline);
            for (i, launch) in self.launches.iter().enumerate() {
                let (first, last) = launch.nodes;
                if !(select(first) && select(last)) {
                    continue;
                }
                let offset = (i as u64 * self.slot_bytes) as u32;
                pass.set_bind_group(0, &self.bind_group, &[offset]);
                let x = launch.groups.min(MAX_GROUPS_PER_DIM);
                pass.dispatch_workgroups(x, launch.groups.div_ceil(x), 1);
            }
        }
        self.ctx.queue.submit([encoder.finish()]);
    }

    /// Dispatches (launches) per run of the graph.
    pub fn dispatch_count(&self) -> usize {
        self.launches_up_to(tag::AFTER_GRAPH)
    }

    /// Launches of the graph and of the tags up to `last`.
    pub(crate) fn launches_up_to(&self, last: u32) -> usize {
        self.launches.iter().filter(|l| l.nodes.1 <= last).count()
    }

    /// Dispatches before fusion per run of the graph (one per op, roughly).
    pub fn unfused_dispatch_count(&self) -> usize {
        self.dispatches
            .iter()
            .filter(|d| d.node <= tag::AFTER_GRAPH)
            .count()
    }

    /// Bytes of the storage buffer.
    pub fn buffer_bytes(&self) -> u64 {
        self.data.size()
    }

    /// Where `v`'s kept value starts in the storage buffer.
    pub(crate) fn offset_of(&self, v: Var) -> Result<u32, GpuError> {
        Ok(self.readable(v)?.0)
    }

    /// Where `v`'s value lives in the storage buffer, if this program keeps it.
    fn readable(&self, v: Var) -> Result<(u32, usize), ExecError> {
        let len = self
            .shapes
            .get(v.index())
            .ok_or(ExecError::NotAvailable(v.index()))?
            .len();
        match self.sources[v.index()] {
            Source::Buffer(b) => Ok((self.buffer_offsets[b as usize], len)),
            _ => Err(ExecError::NotAvailable(v.index())),
        }
    }

    /// Writes `data` into input node `v` (lands before the next run).
    pub fn set_input(&mut self, v: Var, data: &[f32]) -> Result<(), GpuError> {
        let (offset, len) = self.readable(v)?;
        if len != data.len() {
            return Err(ExecError::WrongLength {
                node: v.index(),
                expected: len,
                given: data.len(),
            }
            .into());
        }
        self.write(offset, data);
        Ok(())
    }

    /// Writes the flat parameters.
    pub fn set_params(&mut self, params: &[f32]) -> Result<(), GpuError> {
        if params.len() != self.param_len {
            return Err(GpuError::Validation(format!(
                "{} parameters given, the model has {}",
                params.len(),
                self.param_len
            )));
        }
        self.write(0, params);
        Ok(())
    }

    pub(crate) fn write(&self, offset: u32, values: &[f32]) {
        if !values.is_empty() {
            self.ctx.queue.write_buffer(
                &self.data,
                u64::from(offset) * 4,
                bytemuck::cast_slice(values),
            );
        }
    }

    /// The value of `v` after the last run (an output or input of this program); waits for
    /// the GPU.
    pub fn read(&mut self, v: Var) -> Result<Vec<f32>, GpuError> {
        let (offset, len) = self.readable(v)?;
        self.read_range(offset, len)
    }

    /// The flat parameters; waits for the GPU.
    pub fn params(&mut self) -> Result<Vec<f32>, GpuError> {
        self.read_range(0, self.param_len)
    }

    /// `len` floats from `offset`; waits for the GPU (native only).
    pub(crate) fn read_range(&mut self, offset: u32, len: usize) -> Result<Vec<f32>, GpuError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = (len * 4) as u64;
        let device = &self.ctx.device;
        if self.staging.as_ref().is_none_or(|(_, size)| *size < bytes) {
            let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("flowlab read-back"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            self.staging = Some((buffer, bytes));
        }
        let Some((staging, _)) = &self.staging else {
            return Err(GpuError::Readback("no staging buffer".into()));
        };
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("flowlab read-back"),
        });
        encoder.copy_buffer_to_buffer(&self.data, u64::from(offset) * 4, staging, 0, bytes);
        self.ctx.queue.submit([encoder.finish()]);
        let slice = staging.slice(..bytes);
        let (sender, receiver) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        match receiver.try_recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(GpuError::Readback(e.to_string())),
            Err(_) => {
                return Err(GpuError::Readback(
                    "the map did not complete (only native wgpu can wait)".into(),
                ));
            }
        }
        let values = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| GpuError::Readback(format!("{e:?}")))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        Ok(values)
    }

    /// Requests `len` floats from `offset` without waiting: they come out of
    /// [`Self::finished_reads`] once the GPU has copied them (natively at a later poll; in the
    /// browser once its event loop has run). Why: the page's threads may never block on the
    /// GPU, and a trainer keeps the GPU busy while an earlier step's report travels.
    pub(crate) fn read_later(&mut self, offset: u32, len: usize) {
        let bytes = (len.max(1) * 4) as u64;
        let buffer = match self.spare.iter().position(|(_, size)| *size == bytes) {
            Some(i) => self.spare.swap_remove(i).0,
            None => self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("flowlab read-back ring"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("flowlab read-back"),
            });
        encoder.copy_buffer_to_buffer(&self.data, u64::from(offset) * 4, &buffer, 0, bytes);
        self.ctx.queue.submit([encoder.finish()]);
        let state = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(READ_PENDING));
        let done = state.clone();
        buffer
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |result| {
                let value = if result.is_ok() {
                    READ_DONE
                } else {
                    READ_FAILED
                };
                done.store(value, std::sync::atomic::Ordering::Release);
            });
        self.reads.push_back(LaterRead {
            buffer,
            bytes,
            state,
        });
    }

    /// Requests `v`'s value after the runs submitted so far, without waiting (see
    /// [`Self::read_later`]); it comes out of [`Self::finished_reads`] in request order.
    pub(crate) fn read_var_later(&mut self, v: Var) -> Result<(), GpuError> {
        let (offset, len) = self.readable(v)?;
        self.read_later(offset, len);
        Ok(())
    }

    /// Read-backs requested but not yet taken by [`Self::finished_reads`].
    pub(crate) fn reads_pending(&self) -> usize {
        self.reads.len()
    }

    /// The read-backs that have arrived, oldest first, stopping at the first still on its
    /// way (their order is the order of the steps they report). With `wait`, waits for all
    /// of them (native only; in the browser a wait would never end, so it is refused).
    pub(crate) fn finished_reads(&mut self, wait: bool) -> Vec<Result<Vec<f32>, GpuError>> {
        use std::sync::atomic::Ordering;
        if !self.reads.is_empty() {
            let poll = if wait {
                wgpu::PollType::wait_indefinitely()
            } else {
                wgpu::PollType::Poll
            };
            if let Err(e) = self.ctx.device.poll(poll) {
                log::warn!("flowlab: polling the GPU failed: {e}");
            }
        }
        let mut finished = Vec::new();
        while let Some(read) = self.reads.front() {
            let result = match read.state.load(Ordering::Acquire) {
                READ_PENDING if wait => Err(GpuError::Readback(
                    "the map did not complete (only native wgpu can wait)".into(),
                )),
                READ_PENDING => break,
                READ_DONE => {
                    let slice = read.buffer.slice(..);
                    let values = slice
                        .get_mapped_range()
                        .map(|view| bytemuck::cast_slice::<u8, f32>(&view).to_vec())
                        .map_err(|e| GpuError::Readback(format!("{e:?}")));
                    read.buffer.unmap();
                    values
                }
                _ => Err(GpuError::Readback(
                    "the GPU could not map a read-back".into(),
                )),
            };
            if let Some(read) = self.reads.pop_front()
                && result.is_ok()
            {
                self.spare.push((read.buffer, read.bytes));
            }
            finished.push(result);
        }
        finished
    }
}

const READ_PENDING: u8 = 0;
const READ_DONE: u8 = 1;
const READ_FAILED: u8 = 2;

/// A read-back on its way (see [`GpuProgram::read_later`]).
struct LaterRead {
    buffer: wgpu::Buffer,
    bytes: u64,
    state: std::sync::Arc<std::sync::atomic::AtomicU8>,
}
