//! Input validation: every quantity, id and line list is checked before any
//! statement runs, so bad input never reaches the tables half-way.

use crate::error::{Error, Result};
use crate::pg::jsonb::{Container, Item};
use pgrx::{AnyNumeric, Uuid};

/// Largest quantity one call may move. Far above any real stock movement,
/// far below numeric's limits; stops typos like 1e30 from reaching the row.
pub const MAX_QUANTITY: i64 = 1_000_000_000_000;
/// Lines per multi-line call: bounds lock count and statement size.
pub const MAX_LINES: usize = 1000;

thread_local! {
    // 0, MAX_QUANTITY and -MAX_QUANTITY as numerics, made once per backend:
    // every call validates a quantity, and building them each time was three
    // int8 -> numeric conversions per quantity (seen in a profile of
    // decrement_inventory, docs/benchmarks.md "Where the time goes").
    static LIMITS: [AnyNumeric; 3] = [
        AnyNumeric::from(0),
        AnyNumeric::from(MAX_QUANTITY),
        AnyNumeric::from(-MAX_QUANTITY),
    ];
}

/// `n` compared with 0, MAX_QUANTITY, -MAX_QUANTITY (LIMITS).
fn against_limit(n: &AnyNumeric, which: usize) -> std::cmp::Ordering {
    LIMITS.with(|l| n.cmp(&l[which]))
}

fn shown(n: &AnyNumeric) -> String {
    n.normalize().to_string()
}

/// A quantity to move: finite, > 0, <= MAX_QUANTITY.
pub fn positive_quantity(v: Option<AnyNumeric>, field: &str) -> Result<AnyNumeric> {
    positive_quantity_at(required(v, field)?, &|| field.to_string())
}

/// positive_quantity, with the field's name only spelled out for an error.
fn positive_quantity_at(n: AnyNumeric, field: &dyn Fn() -> String) -> Result<AnyNumeric> {
    finite(&n, field)?;
    if against_limit(&n, 0).is_le() {
        return Err(Error::invalid_quantity(
            &field(),
            "must be greater than 0",
            Some(shown(&n)),
        ));
    }
    Ok(n)
}

/// A quantity to set (adjust): finite, >= 0, <= MAX_QUANTITY.
pub fn non_negative_quantity(v: Option<AnyNumeric>, field: &str) -> Result<AnyNumeric> {
    let n = required(v, field)?;
    finite(&n, &|| field.to_string())?;
    if against_limit(&n, 0).is_lt() {
        return Err(Error::invalid_quantity(
            field,
            "must not be negative",
            Some(shown(&n)),
        ));
    }
    Ok(n)
}

fn required(v: Option<AnyNumeric>, field: &str) -> Result<AnyNumeric> {
    v.ok_or_else(|| Error::invalid_quantity(field, "is required (got NULL)", None))
}

fn finite(n: &AnyNumeric, field: &dyn Fn() -> String) -> Result<()> {
    if n.is_nan() {
        return Err(Error::invalid_quantity(
            &field(),
            "must be a number (got NaN)",
            Some("NaN".into()),
        ));
    }
    // +-Infinity is outside the range too; the text (an allocation and a
    // numeric_out) is only made for the error.
    if against_limit(n, 1).is_gt() || against_limit(n, 2).is_lt() {
        let text = shown(n);
        if text.ends_with("Infinity") {
            return Err(Error::invalid_quantity(
                &field(),
                "must be finite",
                Some(text),
            ));
        }
        return Err(Error::invalid_quantity(
            &field(),
            "exceeds the maximum of 1000000000000",
            Some(text),
        ));
    }
    Ok(())
}

/// The compare-and-set arguments of adjust_inventory and bound_adjust, from
/// position `first`: p_new_quantity, p_expected_quantity, p_force. Without
/// an expected quantity the caller must say p_force => true.
pub fn compare_and_set(
    args: &crate::pg::fmgr::Args,
    first: usize,
) -> Result<(AnyNumeric, Option<AnyNumeric>, bool)> {
    let new_qty = non_negative_quantity(args.numeric(first), "p_new_quantity")?;
    let expected = match args.numeric(first + 1) {
        Some(n) => Some(non_negative_quantity(Some(n), "p_expected_quantity")?),
        None => None,
    };
    let force = args.bool_or(first + 2, false);
    if expected.is_none() && !force {
        return Err(Error::invalid_input(
            "p_expected_quantity",
            "is required: pass the quantity you read (compare-and-set), or p_force => true to overwrite unconditionally",
        ));
    }
    Ok((new_qty, expected, force))
}

/// Parse a textual uuid exactly as PostgreSQL's `uuid` input does (so an id
/// in `p_lines` is read as `p_inventory_id` would be): an optional `{` and
/// matching `}`, 32 hex digits in any case, and a hyphen allowed after any
/// group of four digits but the last; nothing else.
pub fn parse_uuid(s: &str) -> Option<Uuid> {
    let b = s.as_bytes();
    let (b, braces) = match b {
        [b'{', rest @ ..] => (rest, true),
        _ => (b, false),
    };
    // one pass, no allocation (a profile of a 5-line sale showed per-pair
    // parsing with allocations at ~0.7 us a line)
    let mut out = [0u8; 16];
    let mut at = 0usize;
    for (k, byte) in out.iter_mut().enumerate() {
        *byte = (hex(*b.get(at)?)? << 4) | hex(*b.get(at + 1)?)?;
        at += 2;
        if k % 2 == 1 && k < 15 && b.get(at) == Some(&b'-') {
            at += 1;
        }
    }
    if braces {
        if b.get(at) != Some(&b'}') {
            return None;
        }
        at += 1;
    }
    (at == b.len()).then(|| Uuid::from_bytes(out))
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Plain decimal syntax only: digits, one optional point, optional exponent.
pub(crate) fn is_decimal(s: &str) -> bool {
    let s = s.trim();
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = mantissa.chars().filter(|c| c.is_ascii_digit()).count();
    let points = mantissa.chars().filter(|c| *c == '.').count();
    let mantissa_ok = digits > 0 && points <= 1 && digits + points == mantissa.len();
    let exp_ok = match exp {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.len() <= 4 && e.chars().all(|c| c.is_ascii_digit())
        }
    };
    mantissa_ok && exp_ok
}

/// One validated line of a multi-line call.
pub struct Line {
    pub inventory_id: Uuid,
    pub quantity: AnyNumeric,
    /// the line's `location_id`, if it names one other than the default
    /// location (None: the default location, or any when the order is
    /// allocated, docs/locations.md)
    pub location_id: Option<Uuid>,
}

/// Lines merged per item (quantities of repeated ids added up) and sorted by
/// id, PostgreSQL's uuid order (bytewise): the order rows are locked in.
pub fn merged_lines(lines: &[Line]) -> (Vec<Uuid>, Vec<AnyNumeric>) {
    let mut sorted: Vec<&Line> = lines.iter().collect();
    sorted.sort_by(|a, b| a.inventory_id.as_bytes().cmp(b.inventory_id.as_bytes()));
    let mut ids: Vec<Uuid> = Vec::with_capacity(sorted.len());
    let mut qtys: Vec<AnyNumeric> = Vec::with_capacity(sorted.len());
    for l in sorted {
        if ids.last() == Some(&l.inventory_id) {
            let last = qtys.last_mut().expect("ids and qtys grow together");
            *last = last.clone() + l.quantity.clone();
        } else {
            ids.push(l.inventory_id);
            qtys.push(l.quantity.clone());
        }
    }
    (ids, qtys)
}

/// Lines as (id, normalized quantity) text pairs in id order: the form an
/// idempotency key compares, so `2` and `2.0`, or reordered lines, match.
/// A line naming a location compares with it as `id@location`, so keys
/// first used without locations replay as before.
pub fn canonical_lines(lines: &[Line]) -> Vec<(String, String)> {
    let mut canonical: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            let id = match &l.location_id {
                Some(loc) => format!("{}@{}", l.inventory_id, loc),
                None => l.inventory_id.to_string(),
            };
            (id, l.quantity.normalize().to_string())
        })
        .collect();
    canonical.sort();
    canonical
}

/// A lines argument's array: present, an array, 1 to MAX_LINES elements
/// (`shape`: what each element looks like, for the error); it and its length.
fn line_array(v: Option<Container>, field: &str, shape: &str) -> Result<(Container, usize)> {
    let v = v.ok_or_else(|| Error::invalid_input(field, "is required (got NULL)"))?;
    let n = v.array_len().ok_or_else(|| {
        Error::invalid_input(field, format!("must be a JSON array of {shape} objects"))
    })?;
    if n == 0 {
        return Err(Error::invalid_input(
            field,
            "must contain at least one line",
        ));
    }
    if n > MAX_LINES {
        return Err(Error::invalid_input(
            field,
            format!("has {n} lines; at most {MAX_LINES} are allowed"),
        ));
    }
    Ok((v, n))
}

/// `p_lines`: a non-empty JSON array of `{"inventory_id": uuid, "quantity": n}`.
/// Quantities may be JSON numbers or numeric strings ("2.5"). Duplicated ids
/// are allowed and merged by the statement (their quantities add up).
/// Read in place from the jsonb (jsonb.rs), not through a JSON text.
pub fn lines(v: Option<Container>, field: &str) -> Result<Vec<Line>> {
    let (v, n) = line_array(v, field, "{\"inventory_id\": uuid, \"quantity\": number}")?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // field names are only spelled out for an error
        let at = || format!("{field}[{i}]");
        let Item::Object(obj) = v.element(i) else {
            return Err(Error::invalid_input(&at(), "must be an object"));
        };
        let id = match obj.get("inventory_id") {
            Some(Item::String(s)) => std::str::from_utf8(s)
                .ok()
                .and_then(parse_uuid)
                .ok_or_else(|| {
                    Error::invalid_input(&format!("{}.inventory_id", at()), "is not a valid uuid")
                })?,
            Some(Item::Null) | None => {
                return Err(Error::invalid_input(
                    &format!("{}.inventory_id", at()),
                    "is required",
                ))
            }
            Some(_) => {
                return Err(Error::invalid_input(
                    &format!("{}.inventory_id", at()),
                    "must be a uuid string",
                ))
            }
        };
        let qfield = || format!("{}.quantity", at());
        let n = line_quantity(obj.get("quantity"), &qfield)?;
        let location_id = match obj.get("location_id") {
            Some(Item::String(s)) => Some(
                std::str::from_utf8(s)
                    .ok()
                    .and_then(parse_uuid)
                    .ok_or_else(|| {
                        Error::invalid_input(
                            &format!("{}.location_id", at()),
                            "is not a valid uuid",
                        )
                    })?,
            ),
            Some(Item::Null) | None => None,
            Some(_) => {
                return Err(Error::invalid_input(
                    &format!("{}.location_id", at()),
                    "must be a uuid string",
                ))
            }
        }
        // the default location's stock is the item's own row: as no location
        .filter(|l| l.as_bytes() != &[0u8; 16]);
        out.push(Line {
            location_id,
            inventory_id: id,
            quantity: n,
        });
    }
    Ok(out)
}

/// A line's `quantity` (`qfield` names it): a JSON number or a numeric
/// string ("2.5"), finite and > 0 (positive_quantity).
pub fn line_quantity(v: Option<Item<'_>>, qfield: &dyn Fn() -> String) -> Result<AnyNumeric> {
    let n = match v {
        Some(Item::Number(n)) => n,
        Some(Item::String(s)) => {
            let s = String::from_utf8_lossy(s);
            if !is_decimal(&s) {
                return Err(Error::invalid_quantity(
                    &qfield(),
                    "must be a finite decimal number",
                    Some(s.chars().take(64).collect()),
                ));
            }
            let text = s.trim();
            AnyNumeric::try_from(text).map_err(|_| {
                Error::invalid_quantity(
                    &qfield(),
                    "must be a finite decimal number",
                    Some(text.to_string()),
                )
            })?
        }
        Some(Item::Null) | None => {
            return Err(Error::invalid_quantity(&qfield(), "is required", None))
        }
        Some(_) => return Err(Error::invalid_quantity(&qfield(), "must be a number", None)),
    };
    positive_quantity_at(n, qfield)
}

/// `p_lines` of a bound_* call that names rows by key: a non-empty JSON
/// array of `{"item_id": text or number, "quantity": n}` (quantities as
/// line_quantity reads them); the keys as written (at most 255 characters:
/// a longer one names no row), each line's quantity. Read before the
/// binding is known: the source checks the keys (HoldSource::stored_keys).
pub fn item_lines(v: Option<Container>, field: &str) -> Result<Vec<(String, AnyNumeric)>> {
    let (v, n) = line_array(v, field, "{\"item_id\": text, \"quantity\": number}")?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let at = || format!("{field}[{i}]");
        let Item::Object(obj) = v.element(i) else {
            return Err(Error::invalid_input(&at(), "must be an object"));
        };
        let key = match obj.get("item_id") {
            Some(Item::String(s)) => String::from_utf8_lossy(s).into_owned(),
            Some(Item::Number(n)) => n.to_string(),
            Some(Item::Null) | None => {
                return Err(Error::invalid_input(
                    &format!("{}.item_id", at()),
                    "is required",
                ))
            }
            Some(_) => {
                return Err(Error::invalid_input(
                    &format!("{}.item_id", at()),
                    "must be a string or a number",
                ))
            }
        };
        if key.is_empty() || key.chars().count() > 255 {
            return Err(Error::invalid_input(
                &format!("{}.item_id", at()),
                "must be 1 to 255 characters",
            ));
        }
        let qfield = || format!("{}.quantity", at());
        out.push((key, line_quantity(obj.get("quantity"), &qfield)?));
    }
    Ok(out)
}

/// A uuid in its canonical text form, without going through `fmt` (this is on
/// the hot path of every single-line call).
pub fn uuid_text(u: &Uuid) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, b) in u.as_bytes().iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn parse_uuid_takes_the_textual_forms_and_nothing_else() {
        let want = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        for ok in [
            want,
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
            "a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
        ] {
            assert_eq!(
                parse_uuid(ok).map(|u| u.to_string()).as_deref(),
                Some(want),
                "{ok}"
            );
        }
        for bad in [
            "",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", // 31 digits
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111", // 37 characters
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g", // not hex
            "a0eebc99-9c0b-4ef8-bb6d+6bb9bd380a11", // a sign is not a digit
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1é", // not ASCII
            "a0eebc999c0b4ef8bb6d6bb9bd380a11aaaa", // 36 digits, no hyphen
            "----a0eebc999c0b4ef8bb6d6bb9bd380a11", // hyphens not after a group
            "-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
            "a0e-ebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", // unbalanced braces
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "{{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}}",
            " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", // PostgreSQL trims nothing
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad}");
        }
    }

    #[test]
    fn decimal_syntax() {
        for ok in ["1", "2.5", ".5", "5.", "1e3", "-2", "+3.25E-2", " 7 "] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in [
            "", ".", "1..2", "abc", "NaN", "Infinity", "1e", "1e99999", "0x10", "1,5",
        ] {
            assert!(!is_decimal(bad), "{bad}");
        }
    }
}
