//! The GPU engine's foundation: a wgpu compute device (Vulkan, Metal or DX12),
//! tensors that live on it, and the kernels the network is built from
//! (`shaders/*.wgsl`). Everything here is fp32, like the CPU engine, which is
//! the oracle every kernel is tested against (`tests/gpu_ops.rs`).
//!
//! wgpu reports validation errors, running out of memory and a lost device
//! through callbacks, not return values: they are recorded here and every call
//! that waits on the GPU ([`Gpu::read`], [`Gpu::finish`]) returns them as
//! [`DemucsError::Gpu`], so a caller can fall back to the CPU instead of the
//! process aborting.

mod kernels;
pub mod layers;
pub mod model;
pub mod transformer;

#[cfg(test)]
pub(crate) mod testing;

pub use kernels::{ConvGeometry, Copy3, Epilogue, MatView};

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::DemucsError;

/// Where separation runs: `--device auto|cpu|gpu` and `$SONANTICA_DEVICE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// A hardware GPU when there is one, else the CPU.
    #[default]
    Auto,
    /// The CPU engine.
    Cpu,
    /// A GPU, a software one (Mesa's lavapipe) included; an error when there
    /// is none.
    Gpu,
}

impl FromStr for DeviceChoice {
    type Err = DemucsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            other => Err(DemucsError::Input(format!(
                "unknown device {other:?}: expected auto, cpu or gpu"
            ))),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
        })
    }
}

impl DeviceChoice {
    /// Opens what the choice asks for: `None` is the CPU. `auto` takes a
    /// hardware GPU when there is one and the CPU otherwise (a software
    /// adapter is slower than the CPU engine); `gpu` takes any adapter and
    /// fails, naming what it found, when there is none.
    ///
    /// `$SONANTICA_GPU_MEMORY_MB` bounds what the tensors may take at once
    /// (see [`Gpu::open_with_budget`]), for a GPU shared with other work.
    pub fn open(self) -> Result<Option<Gpu>, DemucsError> {
        let budget = match std::env::var("SONANTICA_GPU_MEMORY_MB") {
            Ok(v) => Some(
                v.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|mb| *mb > 0)
                    .ok_or_else(|| {
                        DemucsError::Input(format!(
                            "SONANTICA_GPU_MEMORY_MB={v:?}: expected a number of megabytes"
                        ))
                    })?
                    << 20,
            ),
            Err(_) => None,
        };
        match self {
            Self::Cpu => Ok(None),
            Self::Gpu => Gpu::open_with_budget(true, budget).map(Some),
            Self::Auto => Ok(Gpu::open_with_budget(false, budget).ok()),
        }
    }
}

/// What kind of device an adapter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterKind {
    /// A GPU of its own.
    Discrete,
    /// A GPU sharing the CPU's memory.
    Integrated,
    /// A virtualised GPU.
    Virtual,
    /// A software rasteriser on the CPU (Mesa's lavapipe, SwiftShader).
    Software,
    /// Unknown.
    Other,
}

impl AdapterKind {
    fn of(t: wgpu::DeviceType) -> Self {
        match t {
            wgpu::DeviceType::DiscreteGpu => Self::Discrete,
            wgpu::DeviceType::IntegratedGpu => Self::Integrated,
            wgpu::DeviceType::VirtualGpu => Self::Virtual,
            wgpu::DeviceType::Cpu => Self::Software,
            wgpu::DeviceType::Other => Self::Other,
        }
    }

    /// Preference order of `auto` and `gpu` (lower first).
    fn rank(self) -> u8 {
        match self {
            Self::Discrete => 0,
            Self::Integrated => 1,
            Self::Virtual => 2,
            Self::Other => 3,
            Self::Software => 4,
        }
    }
}

/// An adapter as the station reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    /// The driver's name for it ("NVIDIA H200", "llvmpipe (LLVM 15.0.6, 256 bits)").
    pub name: String,
    /// The graphics API (Vulkan, Metal, Dx12).
    pub backend: String,
    /// What kind of device it is.
    pub kind: AdapterKind,
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            AdapterKind::Discrete => "discrete GPU",
            AdapterKind::Integrated => "integrated GPU",
            AdapterKind::Virtual => "virtual GPU",
            AdapterKind::Software => "software renderer",
            AdapterKind::Other => "device",
        };
        write!(f, "{} ({kind}, {})", self.name, self.backend)
    }
}

/// wgpu's multi-line error reports ("Validation Error\n\nCaused by:\n  In …")
/// as one line for logs and job records.
fn one_line(report: &str) -> String {
    report
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "Caused by:")
        .collect::<Vec<_>>()
        .join(": ")
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    // GL has no compute worth the name; the browser backend is not ours.
    desc.backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    wgpu::Instance::new(desc)
}

fn summary(a: &wgpu::Adapter) -> AdapterSummary {
    let info = a.get_info();
    AdapterSummary {
        name: info.name,
        backend: format!("{:?}", info.backend),
        kind: AdapterKind::of(info.device_type),
    }
}

/// Every compute adapter this machine offers, best first.
pub fn adapters() -> Vec<AdapterSummary> {
    let mut found: Vec<AdapterSummary> =
        pollster::block_on(instance().enumerate_adapters(
            wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12,
        ))
        .iter()
        .map(summary)
        .collect();
    found.sort_by_key(|a| a.kind.rank());
    found
}

/// A compute device and the kernels compiled for it. Cloning shares it.
#[derive(Clone)]
pub struct Gpu {
    inner: Arc<Inner>,
}

struct Inner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    summary: AdapterSummary,
    limits: wgpu::Limits,
    /// The first error wgpu reported (validation, out of memory, device lost).
    error: Arc<Mutex<Option<String>>>,
    /// Bytes the tensors may take at once, and what they take now and took
    /// at most.
    budget: usize,
    memory: Arc<Memory>,
    /// Work recorded and not yet submitted.
    pending: Mutex<Pending>,
    pipelines: Mutex<HashMap<kernels::Kernel, Arc<wgpu::ComputePipeline>>>,
}

#[derive(Default)]
struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    passes: usize,
}

/// Passes recorded before they are submitted without waiting: a few hundred
/// keep the driver busy without building one enormous command buffer.
const PASSES_PER_SUBMIT: usize = 256;

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("adapter", &self.inner.summary)
            .finish()
    }
}

impl Gpu {
    /// Opens the best adapter: a hardware GPU, or with `allow_software` a
    /// software one when there is no other. The error names what was found.
    pub fn open(allow_software: bool) -> Result<Self, DemucsError> {
        Self::open_with_budget(allow_software, None)
    }

    /// [`Gpu::open`] with at most `budget` bytes of tensors at once (weights
    /// and activations): past it, a tensor is refused as out of memory, as the
    /// device itself would refuse it past its memory, and a separation goes on
    /// on the CPU. `None`: the device's own memory is the bound.
    pub fn open_with_budget(
        allow_software: bool,
        budget: Option<usize>,
    ) -> Result<Self, DemucsError> {
        let instance = instance();
        let mut all = pollster::block_on(instance.enumerate_adapters(
            wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12,
        ));
        all.sort_by_key(|a| AdapterKind::of(a.get_info().device_type).rank());
        let found: Vec<String> = all.iter().map(|a| summary(a).to_string()).collect();
        let adapter = all
            .into_iter()
            .find(|a| {
                allow_software || AdapterKind::of(a.get_info().device_type) != AdapterKind::Software
            })
            .ok_or_else(|| {
                DemucsError::Gpu(if found.is_empty() {
                    "no GPU found: no Vulkan, Metal or DX12 adapter (on Debian, \
                     `apt-get install mesa-vulkan-drivers libvulkan1` gives the drivers, \
                     and a software one, lavapipe)"
                        .into()
                } else {
                    format!(
                        "no hardware GPU found, only {} (ask for --device gpu to use it)",
                        found.join(", ")
                    )
                })
            })?;
        let summary = summary(&adapter);
        // Large tensors (the attention's scores, long convolutions) need the
        // adapter's real limits, not WebGPU's portable defaults.
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("sonantica-demucs"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| DemucsError::Gpu(format!("{summary}: cannot open it: {e}")))?;
        let error = Arc::new(Mutex::new(None::<String>));
        let sink = Arc::clone(&error);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = sink.lock() {
                slot.get_or_insert_with(|| match &e {
                    wgpu::Error::OutOfMemory { .. } => "the GPU ran out of memory".to_owned(),
                    other => one_line(&other.to_string()),
                });
            }
        }));
        let sink = Arc::clone(&error);
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut slot) = sink.lock() {
                // The loss explains every error reported since it happened.
                let how = match reason {
                    wgpu::DeviceLostReason::Destroyed => "the device was closed",
                    _ => "the driver reset it or the card went away",
                };
                let said = if msg.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {msg}")
                };
                *slot = Some(one_line(&format!("the GPU was lost ({how}){said}")));
            }
        });
        Ok(Self {
            inner: Arc::new(Inner {
                device,
                queue,
                summary,
                limits,
                error,
                budget: budget.unwrap_or(usize::MAX),
                memory: Arc::new(Memory::default()),
                pending: Mutex::new(Pending::default()),
                pipelines: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The adapter in use.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.inner.summary
    }

    /// The largest tensor one buffer can hold, in floats.
    pub fn max_floats(&self) -> usize {
        let l = &self.inner.limits;
        l.max_storage_buffer_binding_size.min(l.max_buffer_size) as usize / 4
    }

    fn check(&self) -> Result<(), DemucsError> {
        let read = || match self.inner.error.lock() {
            Ok(slot) => slot.clone(),
            Err(_) => Some("the GPU's error slot is poisoned".into()),
        };
        if read().is_none() {
            return Ok(());
        }
        // A lost device is told on a poll: give its callback the chance to
        // name the cause before the error is reported.
        let _ = self.inner.device.poll(wgpu::PollType::Poll);
        read().map_or(Ok(()), |e| Err(DemucsError::Gpu(e)))
    }

    fn buffer(&self, len: usize) -> Result<wgpu::Buffer, DemucsError> {
        if len > self.max_floats() {
            return Err(DemucsError::Gpu(format!(
                "a tensor of {} MB is larger than {} allows in one buffer ({} MB)",
                (len * 4) >> 20,
                self.inner.summary.name,
                (self.max_floats() * 4) >> 20
            )));
        }
        Ok(self.inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            // Zero-sized buffers cannot be bound.
            size: (len.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// A tensor of `len` zeros on the device.
    pub fn zeros(&self, len: usize) -> Result<GpuTensor, DemucsError> {
        let bytes = GpuTensor::bytes(len);
        let m = &self.inner.memory;
        let used = m.used.fetch_add(bytes, Ordering::SeqCst) + bytes;
        if used > self.inner.budget {
            m.used.fetch_sub(bytes, Ordering::SeqCst);
            return Err(DemucsError::Gpu(format!(
                "out of GPU memory: {} MB more needed with {} MB of the {} MB allowed in use",
                bytes.div_ceil(1 << 20),
                (used - bytes) >> 20,
                self.inner.budget >> 20
            )));
        }
        m.peak.fetch_max(used, Ordering::SeqCst);
        let buffer = match self.buffer(len) {
            Ok(b) => b,
            Err(e) => {
                m.used.fetch_sub(bytes, Ordering::SeqCst);
                return Err(e);
            }
        };
        Ok(GpuTensor {
            buffer,
            len,
            memory: Arc::clone(m),
        })
    }

    /// Bytes of tensors on the device now, and at most so far.
    pub fn memory(&self) -> (usize, usize) {
        let m = &self.inner.memory;
        (m.used.load(Ordering::SeqCst), m.peak.load(Ordering::SeqCst))
    }

    /// Copies `data` to the device.
    pub fn upload(&self, data: &[f32]) -> Result<GpuTensor, DemucsError> {
        let t = self.zeros(data.len())?;
        if !data.is_empty() {
            // Ordered before any later submission of recorded work, but after
            // work already submitted: flush what is recorded first, so that
            // a kernel recorded earlier never sees the new contents.
            self.submit()?;
            self.inner
                .queue
                .write_buffer(&t.buffer, 0, bytemuck::cast_slice(data));
        }
        Ok(t)
    }

    /// Submits the work recorded so far, without waiting for it.
    fn submit(&self) -> Result<(), DemucsError> {
        {
            // Submitted under the lock: a thread that took the commands and
            // submitted them after another thread's later commands (a read's
            // copy) had the read see the buffer before the kernel ran
            // (gpu_ops failed 3 runs in 40 with its tests in parallel).
            let mut p = self
                .inner
                .pending
                .lock()
                .map_err(|_| DemucsError::Gpu("the GPU's command list is poisoned".into()))?;
            p.passes = 0;
            if let Some(e) = p.encoder.take() {
                self.inner.queue.submit([e.finish()]);
            }
        }
        self.check()
    }

    /// Loses the device now, as a driver reset or a removed card would: every
    /// later call fails with the reason, and a separator on this GPU goes on
    /// on the CPU. This is how the tests check that path; nothing else needs
    /// it.
    pub fn destroy(&self) {
        self.inner.device.destroy();
    }

    /// Waits until every kernel recorded so far has run.
    pub fn finish(&self) -> Result<(), DemucsError> {
        self.submit()?;
        self.inner
            .device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: None,
            })
            .map_err(|e| DemucsError::Gpu(format!("waiting for the GPU: {e}")))?;
        self.check()
    }

    /// Copies a tensor back to the host (waiting for the work before it).
    pub fn read(&self, t: &GpuTensor) -> Result<Vec<f32>, DemucsError> {
        if t.len == 0 {
            return Ok(Vec::new());
        }
        let bytes = (t.len * 4) as u64;
        let staging = self.inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read-back"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.with_encoder(|e| e.copy_buffer_to_buffer(&t.buffer, 0, &staging, 0, bytes))?;
        self.submit()?;
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.finish()?;
        rx.recv()
            .map_err(|_| DemucsError::Gpu("the GPU never answered a read".into()))?
            .map_err(|e| DemucsError::Gpu(format!("reading from the GPU: {e}")))?;
        let out = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| DemucsError::Gpu(format!("reading from the GPU: {e}")))?;
            // The mapping's alignment is the driver's: copy through bytes.
            view.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        };
        staging.unmap();
        Ok(out)
    }

    fn with_encoder(&self, f: impl FnOnce(&mut wgpu::CommandEncoder)) -> Result<(), DemucsError> {
        let full = {
            let mut p = self
                .inner
                .pending
                .lock()
                .map_err(|_| DemucsError::Gpu("the GPU's command list is poisoned".into()))?;
            let device = &self.inner.device;
            let e = p.encoder.get_or_insert_with(|| {
                device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
            });
            f(e);
            p.passes += 1;
            p.passes >= PASSES_PER_SUBMIT
        };
        if full {
            self.submit()?;
        }
        Ok(())
    }

    fn pipeline(&self, k: kernels::Kernel) -> Result<Arc<wgpu::ComputePipeline>, DemucsError> {
        let mut cache = self
            .inner
            .pipelines
            .lock()
            .map_err(|_| DemucsError::Gpu("the GPU's kernel cache is poisoned".into()))?;
        if let Some(p) = cache.get(&k) {
            return Ok(Arc::clone(p));
        }
        let device = &self.inner.device;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(k.name()),
            source: wgpu::ShaderSource::Wgsl(k.source().into()),
        });
        let p = Arc::new(
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(k.name()),
                layout: None,
                module: &module,
                entry_point: Some(k.entry()),
                compilation_options: Default::default(),
                cache: None,
            }),
        );
        cache.insert(k, Arc::clone(&p));
        Ok(p)
    }

    /// Records one kernel: `params` (u32 words; floats as their bits) at
    /// binding 0, then `tensors` at bindings 1.., over `groups` workgroups.
    fn dispatch(
        &self,
        k: kernels::Kernel,
        params: &[u32],
        tensors: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Result<(), DemucsError> {
        if groups.contains(&0) {
            return Ok(());
        }
        let max = self.inner.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|g| *g > max) {
            return Err(DemucsError::Gpu(format!(
                "{}: {groups:?} workgroups, more than the adapter's {max} per dimension",
                k.name()
            )));
        }
        let pipeline = self.pipeline(k)?;
        // Uniform buffers are read in 16-byte rows.
        let mut words = params.to_vec();
        words.resize(params.len().div_ceil(4).max(1) * 4, 0);
        let uniform = wgpu::util::DeviceExt::create_buffer_init(
            &self.inner.device,
            &wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::cast_slice(&words),
                usage: wgpu::BufferUsages::UNIFORM,
            },
        );
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, t) in tensors.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: t.as_entire_binding(),
            });
        }
        let bind = self
            .inner
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            });
        self.with_encoder(|e| {
            let mut pass = e.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(k.name()),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        })
    }
}

/// What the tensors on a device take.
#[derive(Debug, Default)]
struct Memory {
    used: AtomicUsize,
    peak: AtomicUsize,
}

/// A tensor of f32 on the device (its shape is the caller's).
pub struct GpuTensor {
    buffer: wgpu::Buffer,
    len: usize,
    /// The device's count of memory in use, given back to when dropped.
    memory: Arc<Memory>,
}

impl GpuTensor {
    /// What it counts against the device's budget (an empty tensor still
    /// takes one float: buffers cannot be empty).
    fn bytes(len: usize) -> usize {
        len.max(1) * 4
    }
}

impl Drop for GpuTensor {
    fn drop(&mut self) {
        self.memory
            .used
            .fetch_sub(Self::bytes(self.len), Ordering::SeqCst);
    }
}

impl GpuTensor {
    /// How many floats it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for GpuTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuTensor({})", self.len)
    }
}
