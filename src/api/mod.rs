//! SQL-callable functions: read the arguments, call the operation, answer.

mod caller;
mod stats;
