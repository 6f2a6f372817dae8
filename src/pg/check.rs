//! The CHECK constraints of items, item_stripes, stock_levels and the
//! reservation tables, and the `WHEN` of the stock-event triggers, in C.

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

#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo_ai_stock_event_due() -> &'static pgrx::pg_sys::Pg_finfo_record {
    const V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

unsafe extern "C-unwind" {
    #[link_name = "numeric_sub"]
    fn pg_numeric_sub(fcinfo: pgrx::pg_sys::FunctionCallInfo) -> pgrx::pg_sys::Datum;
}

#[pgrx::pg_guard]
#[unsafe(no_mangle)]
#[doc(hidden)]
/// `atomic_inventory.stock_event_due(old_stripes, new_stripes, old_track,
/// new_track, old_quantity, old_reserved, old_unsellable, old_reorder_point,
/// new_quantity, new_reserved, new_unsellable, new_reorder_point)`: the
/// `WHEN` of the stock-event triggers of items and stock_levels. True when
/// a row that tracks stock and isn't striped (before and after) crosses
/// zero available (quantity - reserved - unsellable) either way, or falls
/// to or below its reorder point from above the old one.
///
/// In C rather than as the expression it computes because PostgreSQL reads
/// a trigger's `WHEN` back from its stored text in every statement that
/// writes the table (as it does CHECKs, see above): the expression, 18
/// column references and 15 operators, cost about 16 us of every statement
/// writing items (`perf` of a 5-line `decrement_inventory_many`,
/// docs/benchmarks.md), a call with its column references a fraction.
///
/// # Safety
/// Called by fmgr with twelve arguments (int2 x2, bool x2, numeric x8);
/// not STRICT: unsellable and the reorder points may be NULL (no units set
/// aside, no reorder point).
pub unsafe extern "C-unwind" fn ai_stock_event_due(
    fcinfo: pgrx::pg_sys::FunctionCallInfo,
) -> pgrx::pg_sys::Datum {
    use pgrx::pg_sys;
    // SAFETY: fcinfo is fmgr's with the twelve arguments above; NULLs are
    // checked before a value is read; numerics are detoasted before use.
    unsafe {
        let null = |n: usize| pgrx::fcinfo::pg_arg_is_null(fcinfo, n);
        let arg = |n: usize| pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, n);
        // striped or untracked rows (and NULLs there, which the table's
        // NOT NULL columns never hold) raise no event
        if null(0) || null(1) || null(2) || null(3) {
            return pg_sys::Datum::from(false);
        }
        if arg(0).value() as i16 != 0 || arg(1).value() as i16 != 0 {
            return pg_sys::Datum::from(false);
        }
        if arg(2).value() == 0 || arg(3).value() == 0 {
            return pg_sys::Datum::from(false);
        }
        if (4..=5).any(null) || (8..=9).any(null) {
            return pg_sys::Datum::from(false);
        }
        let num = |n: usize| -> Option<pg_sys::Datum> {
            if null(n) {
                None
            } else {
                let d = pg_sys::pg_detoast_datum(arg(n).cast_mut_ptr()) as pg_sys::Numeric;
                Some(pg_sys::Datum::from(d))
            }
        };
        let cmp = |a: pg_sys::Datum, b: pg_sys::Datum| -> i32 {
            pg_sys::DirectFunctionCall2Coll(Some(pg_numeric_cmp), pg_sys::InvalidOid, a, b).value()
                as i32
        };
        let zero = pg_sys::Datum::from(pg_sys::int64_to_numeric(0));
        let sub = |a: pg_sys::Datum, b: pg_sys::Datum| -> pg_sys::Datum {
            pg_sys::DirectFunctionCall2Coll(Some(pg_numeric_sub), pg_sys::InvalidOid, a, b)
        };
        // quantity - reserved - unsellable; the subtractions skipped for
        // the zeros most rows hold
        let available = |q: usize, r: usize, u: usize| -> pg_sys::Datum {
            let mut a = num(q).unwrap_or(zero);
            for n in [r, u] {
                if let Some(v) = num(n) {
                    if cmp(v, zero) != 0 {
                        a = sub(a, v);
                    }
                }
            }
            a
        };
        let before = available(4, 5, 6);
        let after = available(8, 9, 10);
        if (cmp(before, zero) > 0) != (cmp(after, zero) > 0) {
            return pg_sys::Datum::from(true);
        }
        let Some(point) = num(11) else {
            return pg_sys::Datum::from(false);
        };
        let old_point = num(7).unwrap_or(pg_sys::Datum::from(pg_sys::int64_to_numeric(-1)));
        pg_sys::Datum::from(cmp(after, point) <= 0 && cmp(before, old_point) > 0)
    }
}

/// Whether the text datum `d` is one of the reservation statuses.
///
/// # Safety
/// `d` is a non-NULL text datum.
unsafe fn reservation_status(d: pgrx::pg_sys::Datum) -> bool {
    use pgrx::pg_sys;
    // SAFETY: a text datum, detoasted to a plain varlena (header + bytes)
    unsafe {
        let t = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
        let bytes = pgrx::varlena::varlena_to_byte_slice(t);
        matches!(bytes, b"active" | b"committed" | b"released" | b"expired")
    }
}

#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo_ai_reservation_valid() -> &'static pgrx::pg_sys::Pg_finfo_record {
    const V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

#[pgrx::pg_guard]
#[unsafe(no_mangle)]
#[doc(hidden)]
/// `atomic_inventory.reservation_valid(status)`: the CHECK of
/// reservations, status one of active, committed, released, expired. In C
/// for the reason above (a plain `status IN (...)` is parsed from its text
/// in every statement writing the table: every hold and every commit).
///
/// # Safety
/// Called by fmgr with one non-NULL text argument (STRICT).
pub unsafe extern "C-unwind" fn ai_reservation_valid(
    fcinfo: pgrx::pg_sys::FunctionCallInfo,
) -> pgrx::pg_sys::Datum {
    // SAFETY: fcinfo is fmgr's; STRICT: the argument is a non-NULL text.
    unsafe {
        let status = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0);
        pgrx::pg_sys::Datum::from(reservation_status(status))
    }
}

#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo_ai_reservation_line_valid() -> &'static pgrx::pg_sys::Pg_finfo_record {
    const V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

#[pgrx::pg_guard]
#[unsafe(no_mangle)]
#[doc(hidden)]
/// `atomic_inventory.reservation_line_valid(quantity, status)`: the CHECK
/// of reservation_lines and bound_reservation_lines: quantity > 0 and
/// finite, status one of the reservation statuses.
///
/// # Safety
/// Called by fmgr with two non-NULL arguments (numeric, text; STRICT).
pub unsafe extern "C-unwind" fn ai_reservation_line_valid(
    fcinfo: pgrx::pg_sys::FunctionCallInfo,
) -> pgrx::pg_sys::Datum {
    use pgrx::pg_sys;
    // SAFETY: fcinfo is fmgr's; STRICT: both arguments are non-NULL.
    unsafe {
        let q = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0);
        let qn = pg_sys::pg_detoast_datum(q.cast_mut_ptr()) as pg_sys::Numeric;
        if pg_sys::numeric_is_nan(qn) || pg_sys::numeric_is_inf(qn) {
            return pg_sys::Datum::from(false);
        }
        let zero = pg_sys::Datum::from(pg_sys::int64_to_numeric(0));
        let positive = pg_sys::DirectFunctionCall2Coll(
            Some(pg_numeric_cmp),
            pg_sys::InvalidOid,
            pg_sys::Datum::from(qn),
            zero,
        )
        .value() as i32
            > 0;
        let status = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 1);
        pg_sys::Datum::from(positive && reservation_status(status))
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
    crate::pg::fmgr::Declared {
        symbol: "ai_stock_event_due",
        args: &[
            pgrx::pg_sys::INT2OID,
            pgrx::pg_sys::INT2OID,
            pgrx::pg_sys::BOOLOID,
            pgrx::pg_sys::BOOLOID,
            pgrx::pg_sys::NUMERICOID,
            pgrx::pg_sys::NUMERICOID,
            pgrx::pg_sys::NUMERICOID,
            pgrx::pg_sys::NUMERICOID,
            pgrx::pg_sys::NUMERICOID,
            pgrx::pg_sys::NUMERICOID,
            pgrx::pg_sys::NUMERICOID,
            pgrx::pg_sys::NUMERICOID,
        ],
    },
    crate::pg::fmgr::Declared {
        symbol: "ai_reservation_valid",
        args: &[pgrx::pg_sys::TEXTOID],
    },
    crate::pg::fmgr::Declared {
        symbol: "ai_reservation_line_valid",
        args: &[pgrx::pg_sys::NUMERICOID, pgrx::pg_sys::TEXTOID],
    },
];
