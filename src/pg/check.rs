//! The CHECK constraints of items, item_stripes and stock_levels, in C.

/// `atomic_inventory.stock_valid(quantity, reserved)`: the CHECK constraint of
/// items and item_stripes. quantity is finite (not NaN, not +/-Infinity) and
/// 0 <= reserved <= quantity, which makes quantity >= 0 too.
///
/// In C rather than as a plain CHECK expression because PostgreSQL 15 reads a
/// table's CHECK expressions back from their stored text on every statement
/// that writes the table: the two plain CHECKs of 0.2.0 (numeric constants,
/// four comparisons) took about 7 us of a 15 us stock update, a call with two
/// column references about 1.5 us (docs/benchmarks.md, "Changes made").
#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo_ai_stock_valid() -> &'static pgrx::pg_sys::Pg_finfo_record {
    const V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

unsafe extern "C-unwind" {
    /// PostgreSQL's numeric_cmp itself (pg_sys's binding is a Rust wrapper,
    /// which DirectFunctionCall can't take).
    #[link_name = "numeric_cmp"]
    fn pg_numeric_cmp(fcinfo: pgrx::pg_sys::FunctionCallInfo) -> pgrx::pg_sys::Datum;
}

#[pgrx::pg_guard]
#[unsafe(no_mangle)]
#[doc(hidden)]
/// # Safety
/// Called by fmgr with two non-NULL numeric arguments (the function is STRICT).
pub unsafe extern "C-unwind" fn ai_stock_valid(
    fcinfo: pgrx::pg_sys::FunctionCallInfo,
) -> pgrx::pg_sys::Datum {
    use pgrx::pg_sys;
    // SAFETY: fcinfo is fmgr's; STRICT guarantees both arguments are non-NULL
    // numerics; detoasting returns a palloc'd or in-place plain varlena.
    unsafe {
        let q = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0);
        let r = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 1);
        let qn = pg_sys::pg_detoast_datum(q.cast_mut_ptr()) as pg_sys::Numeric;
        let rn = pg_sys::pg_detoast_datum(r.cast_mut_ptr()) as pg_sys::Numeric;
        if pg_sys::numeric_is_nan(qn) || pg_sys::numeric_is_inf(qn) || pg_sys::numeric_is_nan(rn) {
            return pg_sys::Datum::from(false);
        }
        let cmp = |a: pg_sys::Datum, b: pg_sys::Datum| -> i32 {
            pg_sys::DirectFunctionCall2Coll(Some(pg_numeric_cmp), pg_sys::InvalidOid, a, b).value()
                as i32
        };
        let zero = pg_sys::Datum::from(pg_sys::int64_to_numeric(0));
        let qd = pg_sys::Datum::from(qn);
        let rd = pg_sys::Datum::from(rn);
        // reserved >= 0 and reserved <= quantity (reserved = +Infinity fails the
        // second, -Infinity the first)
        pg_sys::Datum::from(cmp(rd, zero) >= 0 && cmp(rd, qd) <= 0)
    }
}

#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo_ai_item_stock_valid() -> &'static pgrx::pg_sys::Pg_finfo_record {
    const V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

unsafe extern "C-unwind" {
    #[link_name = "numeric_add"]
    fn pg_numeric_add(fcinfo: pgrx::pg_sys::FunctionCallInfo) -> pgrx::pg_sys::Datum;
}

#[pgrx::pg_guard]
#[unsafe(no_mangle)]
#[doc(hidden)]
/// `atomic_inventory.stock_valid(quantity, reserved, backorder_limit, kit,
/// unsellable)`: the CHECK of items, one call for every rule of a row (each
/// CHECK of its own would be read back from its text on every write, see
/// above). quantity, backorder_limit and unsellable are finite, reserved >=
/// 0, unsellable >= 0, reserved + unsellable <= quantity + backorder_limit
/// (the units held and the on-hand units not for sale never exceed what is
/// on hand; quantity falls below 0 only by backorders), and a kit's row
/// holds nothing: quantity = reserved = unsellable = 0.
///
/// # Safety
/// Called by fmgr with five non-NULL arguments (numeric x3, boolean,
/// numeric; STRICT).
pub unsafe extern "C-unwind" fn ai_item_stock_valid(
    fcinfo: pgrx::pg_sys::FunctionCallInfo,
) -> pgrx::pg_sys::Datum {
    use pgrx::pg_sys;
    // SAFETY: as ai_stock_valid; the fourth argument is a by-value bool.
    unsafe {
        let arg = |n: usize| pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, n);
        let detoast =
            |d: pg_sys::Datum| pg_sys::pg_detoast_datum(d.cast_mut_ptr()) as pg_sys::Numeric;
        let (qn, rn, ln) = (detoast(arg(0)), detoast(arg(1)), detoast(arg(2)));
        let kit = arg(3).value() != 0;
        let un = detoast(arg(4));
        let bad = |n: pg_sys::Numeric| pg_sys::numeric_is_nan(n) || pg_sys::numeric_is_inf(n);
        if bad(qn) || bad(ln) || bad(un) || pg_sys::numeric_is_nan(rn) {
            return pg_sys::Datum::from(false);
        }
        let cmp = |a: pg_sys::Datum, b: pg_sys::Datum| -> i32 {
            pg_sys::DirectFunctionCall2Coll(Some(pg_numeric_cmp), pg_sys::InvalidOid, a, b).value()
                as i32
        };
        let add = |a: pg_sys::Datum, b: pg_sys::Datum| -> pg_sys::Datum {
            pg_sys::DirectFunctionCall2Coll(Some(pg_numeric_add), pg_sys::InvalidOid, a, b)
        };
        let zero = pg_sys::Datum::from(pg_sys::int64_to_numeric(0));
        let (qd, rd, ld, ud) = (
            pg_sys::Datum::from(qn),
            pg_sys::Datum::from(rn),
            pg_sys::Datum::from(ln),
            pg_sys::Datum::from(un),
        );
        if kit {
            return pg_sys::Datum::from(
                cmp(qd, zero) == 0 && cmp(rd, zero) == 0 && cmp(ud, zero) == 0,
            );
        }
        // no backorders and nothing set aside, the common case: no addition
        let cover = if cmp(ld, zero) == 0 { qd } else { add(qd, ld) };
        let unsellable = cmp(ud, zero);
        if unsellable < 0 {
            return pg_sys::Datum::from(false);
        }
        let held = if unsellable == 0 { rd } else { add(rd, ud) };
        pg_sys::Datum::from(cmp(rd, zero) >= 0 && cmp(held, cover) <= 0)
    }
}

/// The C functions outside `entry_points!`: their argument types.
#[cfg_attr(not(any(test, feature = "pg_test")), allow(dead_code))]
pub const DECLARED: &[crate::pg::fmgr::Declared] = &[
    crate::pg::fmgr::Declared {
        symbol: "ai_stock_valid",
        args: &[pgrx::pg_sys::NUMERICOID, pgrx::pg_sys::NUMERICOID],
    },
    crate::pg::fmgr::Declared {
        symbol: "ai_item_stock_valid",
        args: &[
            pgrx::pg_sys::NUMERICOID,
            pgrx::pg_sys::NUMERICOID,
            pgrx::pg_sys::NUMERICOID,
            pgrx::pg_sys::BOOLOID,
            pgrx::pg_sys::NUMERICOID,
        ],
    },
];
