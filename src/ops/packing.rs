//! Warehouse packing (the packing RPC of docs/background.md), written once
//! over a packing source: move picked units from a session's basket into
//! orders, one call per click, with all nine of its validations.
//!
//! Concurrency: the basket limit spans rows (all progress lines of a product
//! in a session), so row locks on the line alone can't protect it; two
//! workers packing the last unit into two different orders would both pass.
//! Every pack/unpack therefore locks, in this fixed order:
//!   1. the session row (FOR NO KEY UPDATE): serializes all packing of one
//!      session, which makes the basket sum stable, and lets us update
//!      last_activity_at without a lock upgrade (a shared lock upgraded by two
//!      packers would deadlock);
//!   2. the progress row (FOR UPDATE);
//!   3. the order row (FOR SHARE): its status can't change under us.
//!
//! Every path takes them in this order, so packing calls can't deadlock with
//! each other. Sessions don't block each other.
//!
//! `p_quantity_needed` and `p_picked_quantity` are accepted for the packing RPC's
//! signature, but the tables are the truth: a client's stale numbers can't
//! let it over-pack.

use crate::core::caller::Caller;
use crate::error::{Error, Result};
use crate::source::{OrderState, PackingSource};
use pgrx::spi::SpiClient;

/// Pack (`delta` > 0) or unpack (`delta` < 0) units on one progress line.
pub fn change<P: PackingSource>(
    p: &P,
    c: &mut SpiClient<'_>,
    who: &Caller,
    session: &P::Key,
    line: &P::Key,
    product: Option<&P::Key>,
    delta: i32,
) -> Result<String> {
    // 1. session
    let status = p
        .lock_session(c, who, session)?
        .ok_or_else(|| Error::SessionNotFound {
            session_id: session.to_string(),
        })?;
    if !p.is_packing(&status) {
        return Err(Error::SessionNotPacking {
            session_id: session.to_string(),
            status,
        });
    }
    // 2. progress line
    let mismatch = || Error::ProgressSessionMismatch {
        progress_id: line.to_string(),
        session_id: session.to_string(),
    };
    let Some(l) = p.lock_line(c, line, session)? else {
        // another session's record (the packing RPC's cross-session attack)
        return Err(if p.line_elsewhere(c, who, line)? {
            mismatch()
        } else {
            Error::ProgressNotFound {
                progress_id: line.to_string(),
            }
        });
    };
    if product.is_some() && product != l.product.as_ref() {
        // a product that isn't this line's
        return Err(mismatch());
    }
    let line_product = l
        .product
        .clone()
        .ok_or_else(|| Error::Internal("progress without product".into()))?;
    // 3. order and basket
    let o = p
        .lock_order(c, l.order.as_ref(), session, &line_product)?
        .ok_or_else(|| Error::OrderNotFound {
            order_id: l.order.as_ref().map(|u| u.to_string()).unwrap_or_default(),
        })?;
    match o.state {
        OrderState::Completed => {
            return Err(Error::OrderCompleted {
                order_number: o.number,
                status: o.status,
            })
        }
        OrderState::Closed => {
            return Err(Error::OrderClosed {
                order_number: o.number,
                status: o.status,
            })
        }
        OrderState::Open => {}
    }
    if delta > 0 {
        // in i64: an integer column's value plus delta may not fit i32
        if l.packed + i64::from(delta) > l.needed {
            return Err(Error::AlreadyFullyPacked {
                progress_id: line.to_string(),
                needed: l.needed,
                packed: l.packed,
                requested: delta,
            });
        }
        if o.packed_total + i64::from(delta) > o.picked {
            return Err(Error::BasketExhausted {
                product_id: line_product.to_string(),
                picked: o.picked,
                packed_total: o.packed_total,
                requested: delta,
            });
        }
    } else if l.packed + i64::from(delta) < 0 {
        return Err(Error::NothingToUnpack {
            progress_id: line.to_string(),
            packed: l.packed,
            requested: -delta,
        });
    }
    p.pack(c, line, delta, session)
}
