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
use crate::source::{OrderState, PackLine, PackingSource};
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
    // 2. progress line, 3. its order and the basket: one statement when
    // both are there, else one step at a time, which says which is missing
    // (a product that isn't the line's: refused before its order is read)
    let own_product = |l: &PackLine<P::Key>| match product {
        Some(named) if Some(named) != l.product.as_ref() => Err(mismatch(session, line)),
        _ => Ok(()),
    };
    let (l, o) = match p.lock_line_and_order(c, line, session)? {
        Some(both) => both,
        None => {
            let l = lock_line(p, c, who, session, line)?;
            own_product(&l)?;
            let o = p
                .lock_order(c, l.order.as_ref(), session, &product_of(&l)?)?
                .ok_or_else(|| Error::OrderNotFound {
                    order_id: l.order.as_ref().map(|u| u.to_string()).unwrap_or_default(),
                })?;
            (l, o)
        }
    };
    own_product(&l)?;
    let line_product = product_of(&l)?;
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

/// The packing RPC's cross-session attempt: a line that isn't the
/// session's, or a product that isn't the line's.
fn mismatch<K: std::fmt::Display>(session: &K, line: &K) -> Error {
    Error::ProgressSessionMismatch {
        progress_id: line.to_string(),
        session_id: session.to_string(),
    }
}

fn product_of<K: Clone>(l: &PackLine<K>) -> Result<K> {
    l.product
        .clone()
        .ok_or_else(|| Error::Internal("progress without product".into()))
}

/// Lock the line if it is the session's, else say why not: another
/// session's line (one the caller may see) or none at all.
fn lock_line<P: PackingSource>(
    p: &P,
    c: &mut SpiClient<'_>,
    who: &Caller,
    session: &P::Key,
    line: &P::Key,
) -> Result<PackLine<P::Key>> {
    match p.lock_line(c, line, session)? {
        Some(l) => Ok(l),
        None if p.line_elsewhere(c, who, line)? => Err(mismatch(session, line)),
        None => Err(Error::ProgressNotFound {
            progress_id: line.to_string(),
        }),
    }
}
