//! `#[pg_test]` modules (they run inside the backend), by capability.

pub mod support;

mod backorders;
mod batches;
mod bound;
mod bound_locations;
mod bound_reservations;
mod events;
mod kits;
mod level_holds;
mod locations;
mod packing;
mod partial_commits;
mod preorders;
mod reservations;
mod sources;
mod states;
mod stats;
mod stock;
mod stripes;
mod transfers;
