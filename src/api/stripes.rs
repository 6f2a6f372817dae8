//! stripe_item: striped mode for a hot item (source/own/stripes.rs).

use crate::core::caller::Caller;
use crate::error::{Error, Result};
use crate::pg::fmgr::{entry_points, Args};
use crate::pg::spi::with_spi;
use crate::source::own::stripes::{self, MAX_STRIPES};

/// stripe_item(p_inventory_id, p_stripes, p_lock_timeout_ms)
fn stripe_item(args: &Args) -> Result<String> {
    let id = args.uuid(0, "p_inventory_id")?;
    let n = match args.int(1) {
        Some(n) if (0..=MAX_STRIPES).contains(&n) && n != 1 => n,
        Some(n) => {
            return Err(Error::invalid_input(
                "p_stripes",
                format!("must be 0 (unstripe) or between 2 and {MAX_STRIPES} (got {n})"),
            ))
        }
        None => return Err(Error::invalid_input("p_stripes", "is required (got NULL)")),
    };
    let lock_ms = args.lock_timeout_ms(2)?;
    let who = Caller::current()?;
    with_spi(lock_ms, |c| stripes::stripe(c, &who, id, n))
}

entry_points! {
    ai_stripe_item / pg_finfo_ai_stripe_item (UUIDOID, INT4OID, INT4OID) => stripe_item;
}
