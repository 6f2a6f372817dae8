//! Reading a jsonb argument in place, through PostgreSQL's own jsonb
//! accessors, for the hot `p_lines` of the multi-line calls.
//!
//! Why not pgrx's `JsonB`: it prints the value with jsonb_out and parses the
//! text again into a serde_json tree (about 10 µs of a 5-line call in a
//! profile, jsonb_out half of it), and each quantity then went back through
//! numeric_in (docs/benchmarks.md, "Changes made because of a measurement").
//! Here each element is looked up in the binary container and a number
//! arrives as the numeric jsonb stores (exactly as written, as serde_json's
//! arbitrary_precision kept it).

use pgrx::datum::FromDatum;
use pgrx::pg_sys;
use pgrx::AnyNumeric;

/// A jsonb value, or a place inside one (a container: array or object).
#[derive(Clone, Copy)]
pub struct Container(*mut pg_sys::JsonbContainer);

/// One value read from a container.
pub enum Item<'a> {
    Null,
    Bool,
    Number(AnyNumeric),
    String(&'a [u8]),
    Array,
    Object(Container),
}

impl Container {
    /// The top-level container of a jsonb datum (detoasted in the current
    /// memory context, which outlives the call's use of it).
    ///
    /// # Safety
    /// `datum` must be a non-null jsonb datum.
    pub unsafe fn of_datum(datum: pg_sys::Datum) -> Container {
        let jb = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::Jsonb;
        Container(&raw mut (*jb).root)
    }

    fn header(&self) -> u32 {
        // SAFETY: self.0 points into a detoasted jsonb (of_datum, or a
        // nested container found by element/get)
        unsafe { (*self.0).header }
    }

    /// Number of elements if this is an array (a top-level scalar, which
    /// jsonb stores as a one-element array, is not one).
    pub fn array_len(&self) -> Option<usize> {
        let h = self.header();
        (h & pg_sys::JB_FARRAY != 0 && h & pg_sys::JB_FSCALAR == 0)
            .then_some((h & pg_sys::JB_CMASK) as usize)
    }

    /// The i-th element of an array (i < array_len()).
    pub fn element(&self, i: usize) -> Item<'_> {
        // SAFETY: an array container and an index inside it; the result is
        // palloc'd in the current memory context
        unsafe { item(pg_sys::getIthJsonbValueFromContainer(self.0, i as u32)) }
    }

    /// The value of `key` in an object (None if absent).
    pub fn get(&self, key: &str) -> Option<Item<'_>> {
        // SAFETY: an object container; the key is passed with its length (no
        // terminator needed); NULL result = absent
        let v = unsafe {
            pg_sys::getKeyJsonValueFromContainer(
                self.0,
                key.as_ptr().cast(),
                key.len() as i32,
                std::ptr::null_mut(),
            )
        };
        (!v.is_null()).then(|| unsafe { item(v) })
    }
}

/// # Safety
/// `v` is a JsonbValue from the accessors above (never null).
unsafe fn item<'a>(v: *mut pg_sys::JsonbValue) -> Item<'a> {
    let v = &*v;
    match v.type_ {
        pg_sys::jbvType::jbvNull => Item::Null,
        pg_sys::jbvType::jbvBool => Item::Bool,
        pg_sys::jbvType::jbvNumeric => {
            match AnyNumeric::from_datum(pg_sys::Datum::from(v.val.numeric), false) {
                Some(n) => Item::Number(n),
                None => Item::Null,
            }
        }
        pg_sys::jbvType::jbvString => Item::String(std::slice::from_raw_parts(
            v.val.string.val as *const u8,
            v.val.string.len.max(0) as usize,
        )),
        pg_sys::jbvType::jbvBinary => {
            let c = Container(v.val.binary.data);
            if c.header() & pg_sys::JB_FOBJECT != 0 {
                Item::Object(c)
            } else {
                Item::Array
            }
        }
        // jbvArray/jbvObject/jbvDatetime are not produced by reading a
        // stored jsonb's containers
        _ => Item::Array,
    }
}
