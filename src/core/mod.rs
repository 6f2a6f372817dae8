//! What every operation needs, whatever the source: who is calling,
//! validated inputs, idempotency keys, movements and their ledger rows.

pub mod caller;
pub mod idempotency;
pub mod movement;
pub mod validate;
