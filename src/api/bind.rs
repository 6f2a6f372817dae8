//! bind_stock_source, bind_batch_source and unbind_source
//! (source/bound/bind.rs).

use crate::pg::fmgr::entry_points;
use crate::source::bound::bind::{bind_batch, bind_stock, unbind};

entry_points! {
    ai_bind_stock_source / pg_finfo_ai_bind_stock_source
        (TEXTOID, REGCLASSOID, NAMEOID, NAMEOID, NAMEOID, NAMEOID, NAMEOID, BOOLOID) => bind_stock;
    ai_bind_batch_source / pg_finfo_ai_bind_batch_source
        (TEXTOID, REGCLASSOID, NAMEOID, NAMEOID, NAMEOID, TEXTOID, TEXTOID, NAMEOID) => bind_batch;
    ai_unbind_source / pg_finfo_ai_unbind_source (TEXTOID) => unbind;
}
