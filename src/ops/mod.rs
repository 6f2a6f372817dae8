//! The operations, each protocol written once over the sources' primitives
//! (source/mod.rs): stock movements, orders across locations, kits, reservations,
//! batch claims, packing.

pub mod allocate;
pub mod batches;
pub mod kits;
pub mod packing;
pub mod reservations;
pub mod stock;
pub mod transfers;
