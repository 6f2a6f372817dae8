//! The single-line sale's row update without the executor (ledger off).
//!
//! Why: a sale's own work is one index lookup and one heap update, but run as
//! an SQL statement through SPI it also pays the plan cache, the executor's
//! start and end (plan tree, quals and projections compiled, the CHECK read
//! back from its stored text) and a tuple table: about a third of the
//! backend CPU of a sale (docs/benchmarks.md, "The sale's row update through
//! the table AM"). Here the row is found through the primary key index and
//! updated through the table access method, as `UPDATE ... WHERE id = $1 AND
//! <checks>` would, with the same concurrency semantics:
//!
//! - the row version visible to a fresh snapshot (READ COMMITTED: taken now,
//!   after a CommandCounterIncrement, as SPI does per statement) is checked;
//!   a row that fails the checks is left alone, unlocked, like a WHERE clause
//!   that is false;
//! - the update is attempted on that version (no row lock taken before it, so
//!   no lock WAL record); if a concurrent transaction updated it, READ
//!   COMMITTED locks the newest version (TUPLE_LOCK_FLAG_FIND_LAST_VERSION,
//!   waiting for its updater as EvalPlanQual does), checks it again and
//!   updates that; REPEATABLE READ and SERIALIZABLE raise 40001 as UPDATE
//!   does; a deleted row counts as not found;
//! - index entries are written only when the table AM could not update in
//!   place (HOT), through ExecInsertIndexTuples.
//!
//! Only on the extension's own `items` table and only while it is "plain":
//! no trigger that an UPDATE of `quantity` and `updated_at` would fire
//! (foreign keys referencing `id` qualify: their triggers do nothing when
//! the key is unchanged), no rules, no inheritance children, its one CHECK
//! (items_stock_valid, checked here in code), no stored generated columns,
//! no deferrable unique or exclusion index, no row-level security applying
//! to the function's owner, and the owner holding SELECT and UPDATE on it.
//! Otherwise (a user added a trigger, say) the sale runs the SQL statement
//! (`Direct::Unavailable`), which does all of that. The layout is read once
//! per relcache version (a relcache invalidation callback resets it).

use crate::errors::Result;
use crate::validate::pg_numeric_cmp;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::{AnyNumeric, FromDatum, IntoDatum, PgLogLevel, PgSqlErrorCode, Uuid};
use std::cell::Cell;
use std::ffi::CStr;

/// What the direct update did.
pub(crate) enum Direct {
    /// Sold: the old and new quantity as numeric_out writes them.
    Done { old: String, new: String },
    /// The row was not changed: missing (for this caller), untracked,
    /// striped, or not enough stock; the caller's slow path says which.
    Refused,
    /// Not usable on the table as it is now: run the SQL statement.
    Unavailable,
}

/// Where the columns and the primary key index are, for one relcache
/// version of `items`.
#[derive(Clone, Copy)]
struct Layout {
    relid: Oid,
    pkey: Oid,
    /// 0-based column positions in the table's tuple descriptor
    quantity: usize,
    reserved: usize,
    tracked: usize,
    tenant: usize,
    updated_at: usize,
    stripes: usize,
    id: usize,
    /// the highest position read, + 1
    natts: usize,
    /// the table qualifies (module comment); if not, no use looking again
    /// until its relcache entry changes
    plain: bool,
}

thread_local! {
    /// The relid of atomic_inventory.items, and its layout, until a relcache
    /// invalidation of that relation (or of all) resets both.
    static ITEMS: Cell<Option<Oid>> = const { Cell::new(None) };
    static LAYOUT: Cell<Option<Layout>> = const { Cell::new(None) };
    static CALLBACK: Cell<bool> = const { Cell::new(false) };
}

unsafe extern "C-unwind" {
    #[link_name = "numeric_sub"]
    fn pg_numeric_sub(fcinfo: pg_sys::FunctionCallInfo) -> Datum;
    #[link_name = "numeric_add"]
    fn pg_numeric_add(fcinfo: pg_sys::FunctionCallInfo) -> Datum;
    #[link_name = "numeric_out"]
    fn pg_numeric_out(fcinfo: pg_sys::FunctionCallInfo) -> Datum;
}

/// Relcache invalidation: forget what we know of the relation (relid
/// InvalidOid: of every relation). Runs inside invalidation processing, so
/// it only resets two cells.
unsafe extern "C-unwind" fn relcache_changed(_arg: Datum, relid: Oid) {
    let ours = ITEMS.get();
    if relid == pg_sys::InvalidOid || Some(relid) == ours {
        ITEMS.set(None);
        LAYOUT.set(None);
    }
}

fn items_relid() -> Option<Oid> {
    if let Some(relid) = ITEMS.get() {
        return Some(relid);
    }
    if !CALLBACK.get() {
        // SAFETY: registers a plain function for the rest of the backend's
        // life; once per backend (PostgreSQL allows a fixed number).
        unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(relcache_changed), Datum::from(0)) };
        CALLBACK.set(true);
    }
    // SAFETY: catalog lookups by name inside a transaction; missing_ok.
    let relid = unsafe {
        let schema = pg_sys::get_namespace_oid(c"atomic_inventory".as_ptr(), true);
        if schema == pg_sys::InvalidOid {
            return None;
        }
        pg_sys::get_relname_relid(c"items".as_ptr(), schema)
    };
    if relid == pg_sys::InvalidOid {
        return None;
    }
    ITEMS.set(Some(relid));
    Some(relid)
}

/// The relation's column at 0-based position `i`.
unsafe fn attr(rel: pg_sys::Relation, i: usize) -> &'static pg_sys::FormData_pg_attribute {
    // SAFETY: i < natts of the open relation's descriptor.
    unsafe {
        #[cfg(feature = "pg15")]
        let a = (*(*rel).rd_att).attrs.as_ptr().add(i);
        #[cfg(not(feature = "pg15"))]
        let a = pg_sys::TupleDescAttr((*rel).rd_att, i as i32);
        &*a
    }
}

/// The column named `name` of type `typid`, as a 0-based position, if it
/// is as the extension made it: no typmod (UPDATE would coerce the value
/// to one), NOT NULL unless `nullable`, and a deterministic collation (the
/// tenant is compared byte for byte, as texteq does under one).
unsafe fn column(rel: pg_sys::Relation, name: &CStr, typid: Oid, nullable: bool) -> Option<usize> {
    // SAFETY: a syscache lookup and the open relation's descriptor.
    unsafe {
        let attnum = pg_sys::get_attnum((*rel).rd_id, name.as_ptr());
        if attnum <= 0 || attnum as i32 > (*(*rel).rd_att).natts {
            return None;
        }
        let i = attnum as usize - 1;
        let a = attr(rel, i);
        let ok = a.atttypid == typid
            && a.atttypmod == -1
            && (nullable || a.attnotnull)
            && (a.attcollation == pg_sys::InvalidOid
                || pg_sys::get_collation_isdeterministic(a.attcollation));
        ok.then_some(i)
    }
}

/// Read the layout of `rel` (open, locked) and whether it qualifies.
unsafe fn read_layout(rel: pg_sys::Relation) -> Layout {
    // SAFETY: rel is open and locked; its relcache entry and catalog rows
    // are read, nothing is changed.
    unsafe {
        let cols = [
            column(rel, c"quantity", pg_sys::NUMERICOID, false),
            column(rel, c"reserved", pg_sys::NUMERICOID, false),
            column(rel, c"track_inventory", pg_sys::BOOLOID, false),
            column(rel, c"tenant_id", pg_sys::TEXTOID, true),
            column(rel, c"updated_at", pg_sys::TIMESTAMPTZOID, false),
            column(rel, c"stripes", pg_sys::INT2OID, false),
            column(rel, c"id", pg_sys::UUIDOID, false),
        ];
        #[cfg(feature = "pg15")]
        let pkey = pg_sys::RelationGetPrimaryKeyIndex(rel);
        #[cfg(not(feature = "pg15"))]
        let pkey = pg_sys::RelationGetPrimaryKeyIndex(rel, false);
        let mut layout = Layout {
            relid: (*rel).rd_id,
            pkey,
            quantity: cols[0].unwrap_or(0),
            reserved: cols[1].unwrap_or(0),
            tracked: cols[2].unwrap_or(0),
            tenant: cols[3].unwrap_or(0),
            updated_at: cols[4].unwrap_or(0),
            stripes: cols[5].unwrap_or(0),
            id: cols[6].unwrap_or(0),
            natts: cols.iter().flatten().max().map_or(0, |m| m + 1),
            plain: false,
        };
        layout.plain = cols.iter().all(Option::is_some)
            && pkey != pg_sys::InvalidOid
            && (*(*rel).rd_rel).relkind == pg_sys::RELKIND_RELATION as std::ffi::c_char
            && !(*(*rel).rd_rel).relispartition
            && (*rel).rd_rules.is_null()
            && triggers_qualify(rel, pkey)
            && constraints_qualify(rel, &layout)
            && indexes_qualify(rel, pkey, layout.id);
        layout
    }
}

/// No trigger an UPDATE of quantity and updated_at would fire, but those of
/// foreign keys referencing items' primary key (id, which a sale leaves
/// alone: RI_FKey_pk_upd_check_required queues nothing for an unchanged key).
unsafe fn triggers_qualify(rel: pg_sys::Relation, pkey: Oid) -> bool {
    // SAFETY: reads the open relation's trigger descriptor.
    unsafe {
        let t = (*rel).trigdesc;
        if t.is_null() {
            return true;
        }
        let t = &*t;
        if t.trig_update_before_row
            || t.trig_update_instead_row
            || t.trig_update_before_statement
            || t.trig_update_after_statement
            || t.trig_update_old_table
            || t.trig_update_new_table
        {
            return false;
        }
        let row_update = (pg_sys::TRIGGER_TYPE_ROW | pg_sys::TRIGGER_TYPE_UPDATE) as i16;
        (0..t.numtriggers as usize).all(|i| {
            let trig = &*t.triggers.add(i);
            trig.tgtype & row_update != row_update
                || (pg_sys::RI_FKey_trigger_type(trig.tgfoid) == pg_sys::RI_TRIGGER_PK as i32
                    && trig.tgconstrindid == pkey)
        })
    }
}

/// Its one CHECK is the extension's, valid, and what it was made as:
/// atomic_inventory.stock_valid(quantity, reserved), enforced in
/// `update_found`; no generated column to compute or check.
unsafe fn constraints_qualify(rel: pg_sys::Relation, l: &Layout) -> bool {
    // SAFETY: reads the open relation's tuple descriptor; parses the
    // CHECK's stored expression (once per relcache version).
    unsafe {
        let constr = (*(*rel).rd_att).constr;
        if constr.is_null() {
            return true;
        }
        let c = &*constr;
        #[cfg(not(feature = "pg15"))]
        if c.has_generated_virtual {
            return false;
        }
        if c.has_generated_stored {
            return false;
        }
        (0..c.num_check as usize).all(|i| {
            let check = &*c.check.add(i);
            CStr::from_ptr(check.ccname) == c"items_stock_valid"
                && check.ccvalid
                && is_stock_valid_call(pg_sys::stringToNode(check.ccbin).cast(), l)
        })
    }
}

/// `expr` is atomic_inventory.stock_valid(quantity, reserved).
unsafe fn is_stock_valid_call(expr: *mut pg_sys::Node, l: &Layout) -> bool {
    // SAFETY: a node tree stringToNode just built.
    unsafe {
        if expr.is_null() || (*expr).type_ != pg_sys::NodeTag::T_FuncExpr {
            return false;
        }
        let f = &*(expr as *mut pg_sys::FuncExpr);
        let name = pg_sys::get_func_name(f.funcid);
        let schema = pg_sys::get_namespace_oid(c"atomic_inventory".as_ptr(), true);
        if name.is_null()
            || CStr::from_ptr(name) != c"stock_valid"
            || pg_sys::get_func_namespace(f.funcid) != schema
            || f.args.is_null()
            || (*f.args).length != 2
        {
            return false;
        }
        let arg_is = |n: usize, col: usize| {
            let a = (*(*f.args).elements.add(n)).ptr_value as *mut pg_sys::Node;
            !a.is_null()
                && (*a).type_ == pg_sys::NodeTag::T_Var
                && (*(a as *mut pg_sys::Var)).varattno as usize == col + 1
        };
        arg_is(0, l.quantity) && arg_is(1, l.reserved)
    }
}

/// The primary key is a btree on id alone, and no index defers its checks
/// (ExecInsertIndexTuples would hand those back for an after-trigger).
unsafe fn indexes_qualify(rel: pg_sys::Relation, pkey: Oid, id: usize) -> bool {
    // SAFETY: opens each index of the open, locked relation to read its
    // pg_index row; closed again, the lock kept to the end of the
    // transaction as the executor does.
    unsafe {
        let list = pg_sys::RelationGetIndexList(rel);
        let mut ok = true;
        let n = if list.is_null() { 0 } else { (*list).length };
        for i in 0..n {
            let oid = (*(*list).elements.add(i as usize)).oid_value;
            let index = pg_sys::index_open(oid, pg_sys::AccessShareLock as i32);
            let form = &*(*index).rd_index;
            if !form.indimmediate {
                ok = false;
            }
            if oid == pkey
                && (form.indnatts != 1
                    || (*(*index).rd_rel).relam != pg_sys::BTREE_AM_OID
                    || *form.indkey.values.as_ptr() as usize != id + 1)
            {
                ok = false;
            }
            pg_sys::index_close(index, pg_sys::NoLock as i32);
        }
        pg_sys::list_free(list);
        ok
    }
}

/// The caller and the sale, as decrement_one_bare's parameters.
pub(crate) struct Sale<'a> {
    pub id: Uuid,
    pub qty: &'a AnyNumeric,
    pub admin: bool,
    pub tenant: Option<&'a str>,
    /// a striped item may be sold from its row (its stripes gathered into it)
    pub gathered: bool,
}

/// Sell `sale` from the item's row (module comment); must run inside a
/// transaction, in the caller's memory context.
pub(crate) fn sell(sale: &Sale) -> Result<Direct> {
    // A read-only transaction (a standby's too) or parallel mode: the
    // statement raises what UPDATE raises there (the executor checks these,
    // heap_update does not).
    // SAFETY: reads two backend globals.
    if unsafe { pg_sys::XactReadOnly || pg_sys::IsInParallelMode() } {
        return Ok(Direct::Unavailable);
    }
    let Some(relid) = items_relid() else {
        return Ok(Direct::Unavailable);
    };
    // SAFETY: the whole update follows what ExecUpdate does for one row;
    // every pointer comes from PostgreSQL for this transaction. A PostgreSQL
    // error raised inside (lock timeout, deadlock, serialization failure)
    // leaves the relation, buffer pins and the pushed snapshot to the
    // (sub)transaction's abort, which releases them.
    unsafe {
        let rel = pg_sys::try_relation_open(relid, pg_sys::RowExclusiveLock as i32);
        if rel.is_null() {
            ITEMS.set(None);
            LAYOUT.set(None);
            return Ok(Direct::Unavailable);
        }
        // (opening took the lock, which processed pending invalidations:
        // a layout still cached is the current relcache entry's)
        let layout = match LAYOUT.get() {
            Some(l) if l.relid == relid => l,
            _ => {
                let l = read_layout(rel);
                LAYOUT.set(Some(l));
                l
            }
        };
        let usable = layout.plain && !(*(*rel).rd_rel).relhassubclass && permitted(rel, relid);
        if !usable {
            pg_sys::relation_close(rel, pg_sys::NoLock as i32);
            return Ok(Direct::Unavailable);
        }
        let out = update_row(rel, &layout, sale);
        pg_sys::relation_close(rel, pg_sys::NoLock as i32);
        Ok(out)
    }
}

/// The function's owner (the current user) may read and update the table,
/// and no row-level security policy applies to it: else the SQL statement
/// runs and raises or filters as it should.
unsafe fn permitted(rel: pg_sys::Relation, relid: Oid) -> bool {
    // SAFETY: catalog lookups for an open relation.
    unsafe {
        let want = (pg_sys::ACL_SELECT | pg_sys::ACL_UPDATE) as pg_sys::AclMode;
        let user = pg_sys::GetUserId();
        if pg_sys::pg_class_aclmask(relid, user, want, pg_sys::AclMaskHow::ACLMASK_ALL) != want {
            return false;
        }
        !(*(*rel).rd_rel).relrowsecurity
            || pg_sys::check_enable_rls(relid, pg_sys::InvalidOid, true)
                != pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
    }
}

/// The row's state, read from a slot holding one version of it.
struct Row {
    quantity: Datum,
    /// the WHERE clause of decrement_one_bare holds for this version
    passes: bool,
}

unsafe fn read_row(slot: *mut pg_sys::TupleTableSlot, l: &Layout, sale: &Sale, qty: Datum) -> Row {
    // SAFETY: slot holds a tuple of items (layout l); the columns read are
    // NOT NULL but tenant_id.
    unsafe {
        pg_sys::slot_getsomeattrs(slot, l.natts as i32);
        let values = (*slot).tts_values;
        let nulls = (*slot).tts_isnull;
        let at = |i: usize| (*values.add(i), *nulls.add(i));
        let (quantity, quantity_null) = at(l.quantity);
        let (reserved, reserved_null) = at(l.reserved);
        let tracked = at(l.tracked);
        let stripes = at(l.stripes);
        // After a concurrent update the newest version is checked again,
        // its id too (EvalPlanQual re-checks `id = $1`: an id changed by
        // that update leaves the row out).
        let (id, id_null) = at(l.id);
        let same_id = !id_null && Uuid::from_datum(id, false).as_ref() == Some(&sale.id);
        let tenant_ok = sale.admin || {
            let (t, null) = at(l.tenant);
            null || match sale.tenant {
                Some(mine) => String::from_datum(t, false).as_deref() == Some(mine),
                None => false,
            }
        };
        // (a NULL fails as it fails the WHERE clause; the columns are
        // NOT NULL while the layout qualifies)
        let passes = same_id
            && !quantity_null
            && !reserved_null
            && !tracked.1
            && bool::from_datum(tracked.0, false) == Some(true)
            && tenant_ok
            && (sale.gathered || (!stripes.1 && stripes.0.value() as i16 == 0))
            && cmp(numeric2(pg_numeric_sub, quantity, reserved), qty) >= 0;
        Row { quantity, passes }
    }
}

unsafe fn numeric2(
    f: unsafe extern "C-unwind" fn(pg_sys::FunctionCallInfo) -> Datum,
    a: Datum,
    b: Datum,
) -> Datum {
    // SAFETY: a and b are numeric datums; f is a numeric function of two.
    unsafe { pg_sys::DirectFunctionCall2Coll(Some(f), pg_sys::InvalidOid, a, b) }
}

unsafe fn cmp(a: Datum, b: Datum) -> i32 {
    // SAFETY: two numeric datums.
    unsafe { numeric2(pg_numeric_cmp, a, b).value() as i32 }
}

unsafe fn numeric_text(d: Datum) -> String {
    // SAFETY: a numeric datum; numeric_out returns a palloc'd C string.
    unsafe {
        let s = pg_sys::DirectFunctionCall1Coll(Some(pg_numeric_out), pg_sys::InvalidOid, d);
        CStr::from_ptr(s.cast_mut_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// Raise a PostgreSQL error, as the executor raises it.
fn raise(code: PgSqlErrorCode, message: String) -> ! {
    ErrorReport::new(code, message, "decrement_inventory").report(PgLogLevel::ERROR);
    unreachable!("ereport(ERROR) returned")
}

fn serialization_failure(what: &str) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
        format!("could not serialize access due to concurrent {what}"),
    )
}

/// The sale on an open, qualifying `items` (see `sell`).
unsafe fn update_row(rel: pg_sys::Relation, l: &Layout, sale: &Sale) -> Direct {
    // SAFETY: see sell().
    unsafe {
        // As SPI does before a writing statement: our own earlier writes
        // become visible, and the statement gets a fresh snapshot (READ
        // COMMITTED) or the transaction's with the current command id.
        pg_sys::CommandCounterIncrement();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        pg_sys::UpdateActiveSnapshotCommandId();
        let snapshot = pg_sys::GetActiveSnapshot();
        let cid = pg_sys::GetCurrentCommandId(true);

        let slot = pg_sys::table_slot_create(rel, std::ptr::null_mut());
        let found = fetch_visible(rel, l.pkey, snapshot, sale.id, slot);
        let out = if found {
            update_found(rel, l, sale, slot, snapshot, cid)
        } else {
            Direct::Refused
        };
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::PopActiveSnapshot();
        out
    }
}

/// The version of the row `id` visible to `snapshot`, into `slot`.
unsafe fn fetch_visible(
    rel: pg_sys::Relation,
    pkey: Oid,
    snapshot: pg_sys::Snapshot,
    id: Uuid,
    slot: *mut pg_sys::TupleTableSlot,
) -> bool {
    // SAFETY: an index scan of the open table's primary key, as the
    // executor's index scan runs it (AccessShareLock on the index).
    unsafe {
        let index = pg_sys::index_open(pkey, pg_sys::AccessShareLock as i32);
        #[cfg(feature = "pg15")]
        let scan = pg_sys::index_beginscan(rel, index, snapshot, 1, 0);
        #[cfg(not(feature = "pg15"))]
        let scan = pg_sys::index_beginscan(rel, index, snapshot, std::ptr::null_mut(), 1, 0);
        let mut key = pg_sys::ScanKeyData::default();
        pg_sys::ScanKeyInit(
            &mut key,
            1,
            pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
            Oid::from(pg_sys::F_UUID_EQ),
            id.into_datum().expect("a uuid converts to a datum"),
        );
        pg_sys::index_rescan(scan, &mut key, 1, std::ptr::null_mut(), 0);
        let found =
            pg_sys::index_getnext_slot(scan, pg_sys::ScanDirection::ForwardScanDirection, slot);
        pg_sys::index_endscan(scan);
        pg_sys::index_close(index, pg_sys::NoLock as i32);
        found
    }
}

unsafe fn update_found(
    rel: pg_sys::Relation,
    l: &Layout,
    sale: &Sale,
    slot: *mut pg_sys::TupleTableSlot,
    snapshot: pg_sys::Snapshot,
    cid: pg_sys::CommandId,
) -> Direct {
    // SAFETY: see sell(); slot holds a version of the row, pinned.
    unsafe {
        let desc = (*rel).rd_att;
        let qty = sale
            .qty
            .clone()
            .into_datum()
            .expect("a numeric converts to a datum");
        let newslot = pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsHeapTuple);
        let mut tid = (*slot).tts_tid;
        let outcome = loop {
            let row = read_row(slot, l, sale, qty);
            if !row.passes {
                break Direct::Refused;
            }
            let new_quantity = numeric2(pg_numeric_sub, row.quantity, qty);
            // items_stock_valid holds by construction (available >= qty > 0
            // makes quantity - qty >= reserved >= 0, both finite); the
            // statement would have checked it, so it is checked here too.
            let reserved = *(*slot).tts_values.add(l.reserved);
            if cmp(new_quantity, reserved) < 0 {
                raise(
                    PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
                    "new row for relation \"items\" violates check constraint \"items_stock_valid\""
                        .into(),
                );
            }
            let mut cols = [l.quantity as i32 + 1, l.updated_at as i32 + 1];
            let mut values = [
                new_quantity,
                Datum::from(pg_sys::GetCurrentTransactionStartTimestamp()),
            ];
            let mut nulls = [false, false];
            let old = pg_sys::ExecFetchSlotHeapTuple(slot, false, std::ptr::null_mut());
            let tuple = pg_sys::heap_modify_tuple_by_cols(
                old,
                desc,
                2,
                cols.as_mut_ptr(),
                values.as_mut_ptr(),
                nulls.as_mut_ptr(),
            );
            pg_sys::ExecStoreHeapTuple(tuple, newslot, true);
            let mut tmfd = pg_sys::TM_FailureData::default();
            let mut lockmode = pg_sys::LockTupleMode::LockTupleNoKeyExclusive;
            #[cfg(feature = "pg15")]
            let mut indexes = false;
            #[cfg(not(feature = "pg15"))]
            let mut indexes = pg_sys::TU_UpdateIndexes::TU_None;
            let result = pg_sys::table_tuple_update(
                rel,
                &mut tid,
                newslot,
                cid,
                snapshot,
                std::ptr::null_mut(),
                true,
                &mut tmfd,
                &mut lockmode,
                &mut indexes,
            );
            match result {
                pg_sys::TM_Result::TM_Ok => {
                    if let Some(summarizing) = entries_needed(indexes) {
                        index_entries(rel, newslot, summarizing);
                    }
                    let new = numeric_text(new_quantity);
                    // old as (new + qty), the text the statement returned
                    let old = numeric_text(numeric2(pg_numeric_add, new_quantity, qty));
                    break Direct::Done { old, new };
                }
                pg_sys::TM_Result::TM_SelfModified => break self_modified(&tmfd, cid),
                pg_sys::TM_Result::TM_Updated | pg_sys::TM_Result::TM_Deleted
                    if pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 =>
                {
                    serialization_failure(if result == pg_sys::TM_Result::TM_Updated {
                        "update"
                    } else {
                        "delete"
                    })
                }
                pg_sys::TM_Result::TM_Deleted => break Direct::Refused,
                pg_sys::TM_Result::TM_Updated => {
                    // EvalPlanQual's step: lock the newest version (waiting
                    // for its updater), then check and update that one.
                    let locked = pg_sys::table_tuple_lock(
                        rel,
                        &mut tid,
                        snapshot,
                        slot,
                        cid,
                        lockmode,
                        pg_sys::LockWaitPolicy::LockWaitBlock,
                        pg_sys::TUPLE_LOCK_FLAG_FIND_LAST_VERSION as u8,
                        &mut tmfd,
                    );
                    match locked {
                        pg_sys::TM_Result::TM_Ok => tid = (*slot).tts_tid,
                        pg_sys::TM_Result::TM_Deleted => break Direct::Refused,
                        pg_sys::TM_Result::TM_SelfModified => break self_modified(&tmfd, cid),
                        other => pgrx::error!("unexpected table_tuple_lock status: {other}"),
                    }
                }
                other => pgrx::error!("unrecognized table_tuple_update status: {other}"),
            }
        };
        pg_sys::ExecDropSingleTupleTableSlot(newslot);
        outcome
    }
}

/// The row was changed by this transaction after our snapshot: by a later
/// command (a trigger of ours? raised, as UPDATE raises it), or by this very
/// command (left alone, as UPDATE leaves it).
fn self_modified(tmfd: &pg_sys::TM_FailureData, cid: pg_sys::CommandId) -> Direct {
    if tmfd.cmax != cid {
        raise(
            PgSqlErrorCode::ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION,
            "tuple to be updated was already modified by an operation triggered by the current command"
                .into(),
        );
    }
    Direct::Refused
}

/// Which index entries the new version needs: None (a HOT update), or
/// Some(only the summarizing indexes' ones).
#[cfg(feature = "pg15")]
fn entries_needed(indexes: bool) -> Option<bool> {
    indexes.then_some(false)
}

#[cfg(not(feature = "pg15"))]
fn entries_needed(indexes: pg_sys::TU_UpdateIndexes::Type) -> Option<bool> {
    match indexes {
        pg_sys::TU_UpdateIndexes::TU_None => None,
        other => Some(other == pg_sys::TU_UpdateIndexes::TU_Summarizing),
    }
}

#[allow(unused_variables)]
unsafe fn index_entries(
    rel: pg_sys::Relation,
    slot: *mut pg_sys::TupleTableSlot,
    summarizing: bool,
) {
    // SAFETY: a throwaway executor state holding one result relation, as
    // ExecInsertIndexTuples needs (its per-tuple context evaluates index
    // expressions and partial-index predicates). `update` is passed false:
    // it only adds the hint that the key columns are unchanged (bottom-up
    // index deletion), which needs the statement's range table to compute.
    // No index defers its checks (indexes_qualify), so nothing comes back.
    unsafe {
        let estate = pg_sys::CreateExecutorState();
        let rri = pg_sys::palloc0(std::mem::size_of::<pg_sys::ResultRelInfo>())
            as *mut pg_sys::ResultRelInfo;
        (*rri).type_ = pg_sys::NodeTag::T_ResultRelInfo;
        pg_sys::InitResultRelInfo(rri, rel, 1, std::ptr::null_mut(), 0);
        pg_sys::ExecOpenIndices(rri, false);
        #[cfg(feature = "pg15")]
        pg_sys::ExecInsertIndexTuples(
            rri,
            slot,
            estate,
            false,
            false,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        #[cfg(not(feature = "pg15"))]
        pg_sys::ExecInsertIndexTuples(
            rri,
            slot,
            estate,
            false,
            false,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            summarizing,
        );
        pg_sys::ExecCloseIndices(rri);
        pg_sys::FreeExecutorState(estate);
    }
}
