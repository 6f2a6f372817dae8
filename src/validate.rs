//! Input validation: every quantity, id and line list is checked before any
//! statement runs, so bad input never reaches the tables half-way.

use crate::errors::{Error, Result};
use pgrx::{AnyNumeric, Uuid};
use serde_json::Value;

/// Largest quantity one call may move. Far above any real stock movement,
/// far below numeric's limits; stops typos like 1e30 from reaching the row.
pub const MAX_QUANTITY: i64 = 1_000_000_000_000;
/// Lines per multi-line call: bounds lock count and statement size.
pub const MAX_LINES: usize = 1000;

fn shown(n: &AnyNumeric) -> String {
    n.normalize().to_string()
}

/// A quantity to move: finite, > 0, <= MAX_QUANTITY.
pub fn positive_quantity(v: Option<AnyNumeric>, field: &str) -> Result<AnyNumeric> {
    let n = finite(v, field)?;
    if n <= AnyNumeric::from(0) {
        return Err(Error::invalid_quantity(
            field,
            "must be greater than 0",
            Some(shown(&n)),
        ));
    }
    Ok(n)
}

/// A quantity to set (adjust): finite, >= 0, <= MAX_QUANTITY.
pub fn non_negative_quantity(v: Option<AnyNumeric>, field: &str) -> Result<AnyNumeric> {
    let n = finite(v, field)?;
    if n < AnyNumeric::from(0) {
        return Err(Error::invalid_quantity(
            field,
            "must not be negative",
            Some(shown(&n)),
        ));
    }
    Ok(n)
}

fn finite(v: Option<AnyNumeric>, field: &str) -> Result<AnyNumeric> {
    let n = v.ok_or_else(|| Error::invalid_quantity(field, "is required (got NULL)", None))?;
    if n.is_nan() {
        return Err(Error::invalid_quantity(
            field,
            "must be a number (got NaN)",
            Some("NaN".into()),
        ));
    }
    let text = shown(&n);
    if text.ends_with("Infinity") {
        return Err(Error::invalid_quantity(field, "must be finite", Some(text)));
    }
    if n > AnyNumeric::from(MAX_QUANTITY) || n < AnyNumeric::from(-MAX_QUANTITY) {
        return Err(Error::invalid_quantity(
            field,
            "exceeds the maximum of 1000000000000",
            Some(text),
        ));
    }
    Ok(n)
}

/// Parse a textual uuid (any case, with or without hyphens, as Postgres does
/// for the common forms).
pub fn parse_uuid(s: &str) -> Option<Uuid> {
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 || !(s.len() == 32 || s.len() == 36) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let txt = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(txt, 16).ok()?;
    }
    Some(Uuid::from_bytes(out))
}

/// Plain decimal syntax only: digits, one optional point, optional exponent.
fn is_decimal(s: &str) -> bool {
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
}

/// Lines as (id, normalized quantity) text pairs in id order: the form an
/// idempotency key compares, so `2` and `2.0`, or reordered lines, match.
pub fn canonical_lines(lines: &[Line]) -> Vec<(String, String)> {
    let mut canonical: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l.inventory_id.to_string(),
                l.quantity.normalize().to_string(),
            )
        })
        .collect();
    canonical.sort();
    canonical
}

/// `p_lines`: a non-empty JSON array of `{"inventory_id": uuid, "quantity": n}`.
/// Quantities may be JSON numbers or numeric strings ("2.5"). Duplicated ids
/// are allowed and merged by the statement (their quantities add up).
pub fn lines(v: Option<Value>, field: &str) -> Result<Vec<Line>> {
    let v = v.ok_or_else(|| Error::invalid_input(field, "is required (got NULL)"))?;
    let items = v.as_array().ok_or_else(|| {
        Error::invalid_input(
            field,
            "must be a JSON array of {\"inventory_id\": uuid, \"quantity\": number} objects",
        )
    })?;
    if items.is_empty() {
        return Err(Error::invalid_input(
            field,
            "must contain at least one line",
        ));
    }
    if items.len() > MAX_LINES {
        return Err(Error::invalid_input(
            field,
            format!("has {} lines; at most {MAX_LINES} are allowed", items.len()),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let obj = item
            .as_object()
            .ok_or_else(|| Error::invalid_input(&at, "must be an object"))?;
        let id = match obj.get("inventory_id") {
            Some(Value::String(s)) => parse_uuid(s).ok_or_else(|| {
                Error::invalid_input(&format!("{at}.inventory_id"), "is not a valid uuid")
            })?,
            Some(Value::Null) | None => {
                return Err(Error::invalid_input(
                    &format!("{at}.inventory_id"),
                    "is required",
                ))
            }
            Some(_) => {
                return Err(Error::invalid_input(
                    &format!("{at}.inventory_id"),
                    "must be a uuid string",
                ))
            }
        };
        let qfield = format!("{at}.quantity");
        let text = match obj.get("quantity") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) if is_decimal(s) => s.trim().to_string(),
            Some(Value::String(s)) => {
                return Err(Error::invalid_quantity(
                    &qfield,
                    "must be a finite decimal number",
                    Some(s.chars().take(64).collect()),
                ))
            }
            Some(Value::Null) | None => {
                return Err(Error::invalid_quantity(&qfield, "is required", None))
            }
            Some(_) => return Err(Error::invalid_quantity(&qfield, "must be a number", None)),
        };
        let n = AnyNumeric::try_from(text.as_str()).map_err(|_| {
            Error::invalid_quantity(&qfield, "must be a finite decimal number", Some(text))
        })?;
        out.push(Line {
            inventory_id: id,
            quantity: positive_quantity(Some(n), &qfield)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod unit {
    use super::*;

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
