//! Adopted tables (docs/adopting.md): an app keeps its own stock, batch or
//! packing tables and binds it under a name (bind.rs checks and records it); the
//! binding (binding.rs, cached per backend with its prepared statements)
//! is then a source like the extension's own tables.

pub mod batches;
pub mod bind;
pub mod bind_packing;
pub mod binding;
pub mod holds;
pub mod packing;
pub mod stock;
