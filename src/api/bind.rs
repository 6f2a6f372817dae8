//! bind_stock_source, bind_batch_source, bind_packing_source and
//! unbind_source (source/bound/bind.rs, bind_packing.rs).

use crate::pg::fmgr::entry_points;
use crate::source::bound::bind::{bind_batch, bind_stock, unbind};
use crate::source::bound::bind_packing::bind_packing;

entry_points! {
    ai_bind_stock_source / pg_finfo_ai_bind_stock_source
        (TEXTOID, REGCLASSOID, NAMEOID, NAMEOID, NAMEOID, NAMEOID, NAMEOID, BOOLOID, NAMEOID)
        => bind_stock;
    ai_bind_batch_source / pg_finfo_ai_bind_batch_source
        (TEXTOID, REGCLASSOID, NAMEOID, NAMEOID, NAMEOID, TEXTOID, TEXTOID, NAMEOID) => bind_batch;
    ai_bind_packing_source / pg_finfo_ai_bind_packing_source
        (TEXTOID, REGCLASSOID, REGCLASSOID, REGCLASSOID, REGCLASSOID,
         NAMEOID, NAMEOID, NAMEOID, NAMEOID, NAMEOID, NAMEOID, NAMEOID, NAMEOID, NAMEOID,
         NAMEOID, NAMEOID, NAMEOID, NAMEOID, NAMEOID, NAMEOID, NAMEOID,
         TEXTOID, TEXTARRAYOID, TEXTARRAYOID, NAMEOID) => bind_packing;
    ai_unbind_source / pg_finfo_ai_unbind_source (TEXTOID) => unbind;
}
