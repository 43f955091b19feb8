//! A graph compiled for the GPU: its storage-buffer layout, its dispatch list, and replay.

use eframe::egui_wgpu::wgpu;

use super::lower::{self, Args, Dispatch, Kernel, Lowering, tag};
use super::{GpuContext, GpuError, ready_now};
use crate::engine::cpu::ExecError;
use crate::engine::graph::{Graph, Shape, Var};
use crate::engine::params::ParamStore;
use crate::engine::plan::{BufferInit, Plan, Source};

/// The four compute pipelines over one bind-group layout (the storage buffer, and a uniform
/// slot chosen per dispatch by a dynamic offset).
pub(crate) struct Pipelines {
    layout: wgpu::BindGroupLayout,
    pipelines: Vec<wgpu::ComputePipeline>,
}

impl Pipelines {
    pub(crate) fn new(device: &wgpu::Device) -> Result<Self, GpuError> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
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
                        min_binding_size: wgpu::BufferSize::new(ARGS_BYTES),
                    },
                ),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("flowlab kernels"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipelines = Kernel::ALL
            .iter()
            .map(|k| {
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(k.entry_point()),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(k.entry_point()),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        if let Some(Some(error)) = ready_now(scope.pop()) {
            return Err(GpuError::Validation(error.to_string()));
        }
        Ok(Self { layout, pipelines })
    }

    fn get(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        let index = Kernel::ALL.iter().position(|&k| k == kernel).unwrap_or(0);
        &self.pipelines[index]
    }
}

/// Argument slots beyond the graph's dispatches (the training state's optimizer and copies).
const SPARE_SLOTS: usize = 8;
const ARGS_BYTES: u64 = std::mem::size_of::<Args>() as u64;
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
    uniforms: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    slot_bytes: u64,
    pub(crate) dispatches: Vec<Dispatch>,
    sources: Vec<Source>,
    shapes: Vec<Shape>,
    buffer_offsets: Vec<u32>,
    param_len: usize,
    staging: Option<(wgpu::Buffer, u64)>,
}

impl std::fmt::Debug for GpuProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuProgram")
            .field("dispatches", &self.dispatches.len())
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
        let plan = Plan::new(graph, store, outputs)?;
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
        let slot_bytes = ARGS_BYTES.div_ceil(align) * align;
        // One slot per dispatch, and spares for the training state's own.
        let slots = (dispatches.len() + SPARE_SLOTS) as u64;
        let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("flowlab args"),
            size: slots * slot_bytes,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
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
                        size: wgpu::BufferSize::new(ARGS_BYTES),
                    }),
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
            bind_group,
            slot_bytes,
            dispatches: Vec::new(),
            sources: plan.sources,
            shapes: plan.shapes,
            buffer_offsets,
            param_len,
            staging: None,
        };
        program.set_dispatches(dispatches)?;
        Ok(program)
    }

    /// Replaces the dispatch list (the training state appends its optimizer's) and uploads
    /// every slot's arguments.
    pub(crate) fn set_dispatches(&mut self, dispatches: Vec<Dispatch>) -> Result<(), GpuError> {
        if dispatches.len() as u64 * self.slot_bytes > self.uniforms.size() {
            return Err(GpuError::Validation(format!(
                "{} dispatches exceed the program's argument slots",
                dispatches.len()
            )));
        }
        let mut bytes = vec![0u8; (dispatches.len() as u64 * self.slot_bytes) as usize];
        for (i, d) in dispatches.iter().enumerate() {
            let at = i * self.slot_bytes as usize;
            bytes[at..at + ARGS_BYTES as usize].copy_from_slice(bytemuck::bytes_of(&d.args));
        }
        if !bytes.is_empty() {
            self.ctx.queue.write_buffer(&self.uniforms, 0, &bytes);
        }
        self.dispatches = dispatches;
        Ok(())
    }

    /// Rewrites the arguments of dispatch `index` (lands before the next submission).
    pub(crate) fn set_args(&mut self, index: usize, args: Args) {
        if let Some(d) = self.dispatches.get_mut(index) {
            d.args = args;
            self.ctx.queue.write_buffer(
                &self.uniforms,
                index as u64 * self.slot_bytes,
                bytemuck::bytes_of(&args),
            );
        }
    }

    /// Runs every dispatch: one compute pass, one submission.
    pub fn run(&mut self) {
        self.submit(|node| node <= tag::AFTER_GRAPH);
    }

    /// Runs only the dispatches of nodes created before `v` (see
    /// [`crate::engine::CpuProgram::run_until`]).
    pub fn run_until(&mut self, v: Var) {
        let v = v.index() as u32;
        self.submit(|node| node < v);
    }

    /// Runs the dispatches of `v`, every later node and the work after the graph.
    pub fn run_from(&mut self, v: Var) {
        let v = v.index() as u32;
        self.submit(|node| node >= v && node <= tag::AFTER_GRAPH);
    }

    /// Records the selected dispatches into one compute pass and submits it.
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
            let mut current = None;
            for (i, d) in self.dispatches.iter().enumerate() {
                if !select(d.node) {
                    continue;
                }
                if current != Some(d.kernel) {
                    pass.set_pipeline(self.ctx.pipelines.get(d.kernel));
                    current = Some(d.kernel);
                }
                let offset = (i as u64 * self.slot_bytes) as u32;
                pass.set_bind_group(0, &self.bind_group, &[offset]);
                let x = d.groups.min(MAX_GROUPS_PER_DIM);
                pass.dispatch_workgroups(x, d.groups.div_ceil(x), 1);
            }
        }
        self.ctx.queue.submit([encoder.finish()]);
    }

    /// Dispatches per run of the graph.
    pub fn dispatch_count(&self) -> usize {
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
}
