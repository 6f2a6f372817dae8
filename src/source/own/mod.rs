//! The extension's own tables as a source: items (with stripes and the
//! one-statement sale of many lines), reservation lines, batches and the
//! packing tables.

pub mod batches;
pub mod holds;
pub mod kits;
pub mod level_holds;
pub mod level_orders;
pub mod levels;
pub mod lines;
pub mod packing;
mod settle;
pub mod states;
pub mod stock;
pub mod stripes;
pub mod transfers;

/// The extension's own tables.
pub struct Own;
