//! HTDemucs (Demucs v4) source separation, natively in Rust.
//!
//! - [`weights`], [`load`]: checkpoint loading: HF safetensors with JSON metadata,
//!   legacy `.th` torch packages (zip + pickle, read in Rust), bag `.yaml` files.
//! - [`config`]: the architecture, from the checkpoint's kwargs.
//! - [`model`]: the network ([`HTDemucs`]), layer for layer as the reference
//!   `htdemucs.py`, with weights named as in the PyTorch state dict.
//! - [`spec`]: the STFT/ISTFT as the reference calls torch.
//! - [`gpu`]: the GPU engine (wgpu compute: Vulkan, Metal, DX12).
//!
//! Inference is fp32; weights stored as fp16 are upcast on load.

pub mod apply;
pub mod config;
mod error;
pub mod gpu;
pub mod layers;
pub mod load;
pub mod model;
pub mod ops;
mod sgemm;
pub mod simd;
pub mod spec;
mod torch;
pub mod transformer;
pub mod weights;

pub use apply::{ApplyOptions, MemorySource, MixSource, Progress, Separator};
pub use config::Config;
pub use error::DemucsError;
pub use load::{bag_members, load_checkpoint, load_separator, load_separator_on};
pub use model::HTDemucs;
pub use weights::{Checkpoint, Tensor};
