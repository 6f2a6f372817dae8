//! stripe_item: striped mode for a hot stock level (source/own/stripes.rs).

use crate::core::caller::Caller;
use crate::error::{Error, Result};
use crate::pg::fmgr::{entry_points, Args};
use crate::pg::spi::with_spi;
use crate::source::own::levels::{self, Level, LevelKey};
use crate::source::own::stripes::{self, MAX_STRIPES};
use pgrx::AnyNumeric;

/// stripe_item(p_inventory_id, p_stripes, p_lock_timeout_ms, p_location_id)
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
    // NULL or the default location's id: the item's own row, as before
    // levels could be striped (and with NULL, the answer as before too)
    let named = args.get_uuid(3);
    let location = named.filter(|l| !levels::is_default(l));
    let who = Caller::current()?;
    with_spi(lock_ms, |c| match location {
        None => stripes::stripe(c, &who, id, n, named),
        Some(location) => {
            let key = LevelKey { item: id, location };
            // The level's row first (the lock order of stripes.rs), with
            // the errors of a movement there: NOT_FOUND for an unknown
            // item or location, LEVEL_NOT_FOUND where the item has no
            // level, LOCATION_UNAVAILABLE for an inactive location (whose
            // level may still be put back into one row).
            let row = Level { sale: false }.lock_at(c, &who, &key, &AnyNumeric::from(0), n == 0)?;
            if !row.tracked {
                return Err(stripes::untracked());
            }
            stripes::stripe_level(c, id, location, n)
        }
    })
}

entry_points! {
    ai_stripe_item / pg_finfo_ai_stripe_item (UUIDOID, INT4OID, INT4OID, UUIDOID) => stripe_item;
}
