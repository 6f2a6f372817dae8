//! Adopted tables (docs/adopting.md): an app keeps its own stock or batch
//! table and binds it under a name (bind.rs checks and records it); the
//! binding (binding.rs, cached per backend with its prepared statements)
//! is then a source like the extension's own tables.

pub mod batches;
pub mod bind;
pub mod binding;
pub mod holds;
pub mod stock;
