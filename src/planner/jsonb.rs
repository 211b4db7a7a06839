//! JSON text -> jsonb Datum without Postgres's JSON lexer: serde parses the text and the values
//! are pushed straight into a jsonb builder. About three times cheaper than `jsonb_in`, which
//! dominated the profile of a full-table COPY. Only what converts exactly takes this path:
//! anything with a non-integer or out-of-range number, a NUL character, or that does not parse
//! returns `None`, and the caller uses `jsonb_in`, whose result (or error) is the reference.

use pgrx::pg_sys;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The jsonb Datum for `text`, or `None` where `jsonb_in` must decide.
///
/// # Safety
/// Must run in a memory context that lives as long as the Datum is needed.
pub unsafe fn jsonb_datum(text: &str) -> Option<pg_sys::Datum> {
    let mut state: *mut pg_sys::JsonbParseState = std::ptr::null_mut();
    let mut de = serde_json::Deserializer::from_str(text);
    let top = Node { state: &mut state, token: None }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    if top.is_null() {
        return None;
    }
    Some(pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(top)))
}

/// One value to push: as a key's value, an array element, or (`None`) the whole document.
struct Node<'s> {
    state: &'s mut *mut pg_sys::JsonbParseState,
    token: Option<pg_sys::JsonbIteratorToken::Type>,
}

/// Refuses the fast path; the caller falls back to jsonb_in.
fn fallback<E: de::Error>() -> E {
    E::custom("not on the fast path")
}

fn string_value(s: &str, keep: bool) -> pg_sys::JsonbValue {
    // SAFETY of the pointer: a borrowed string points into the text, alive until the Datum is
    // built; anything else is copied into the current memory context first.
    let ptr = if keep { s.as_ptr() as *mut std::ffi::c_char } else { unsafe { pg_sys::pnstrdup(s.as_ptr() as *const std::ffi::c_char, s.len()) } };
    let mut v = pg_sys::JsonbValue { type_: pg_sys::jbvType::jbvString, ..Default::default() };
    v.val.string = pg_sys::JsonbValue__bindgen_ty_1__bindgen_ty_1 { len: s.len() as i32, val: ptr };
    v
}

impl Node<'_> {
    /// Pushes a scalar; at the top level, wrapped as jsonb stores a lone scalar.
    fn scalar<E: de::Error>(self, mut v: pg_sys::JsonbValue) -> Result<*mut pg_sys::JsonbValue, E> {
        // SAFETY: `state` is the builder of this document; `v` and what it points to live
        // until JsonbValueToJsonb copies them.
        unsafe {
            match self.token {
                Some(token) => Ok(pg_sys::pushJsonbValue(self.state, token, &mut v)),
                None => {
                    let mut wrapper = pg_sys::JsonbValue { type_: pg_sys::jbvType::jbvArray, ..Default::default() };
                    wrapper.val.array = pg_sys::JsonbValue__bindgen_ty_1__bindgen_ty_2 { nElems: 1, elems: std::ptr::null_mut(), rawScalar: true };
                    pg_sys::pushJsonbValue(self.state, pg_sys::JsonbIteratorToken::WJB_BEGIN_ARRAY, &mut wrapper);
                    pg_sys::pushJsonbValue(self.state, pg_sys::JsonbIteratorToken::WJB_ELEM, &mut v);
                    Ok(pg_sys::pushJsonbValue(self.state, pg_sys::JsonbIteratorToken::WJB_END_ARRAY, std::ptr::null_mut()))
                }
            }
        }
    }

    fn string<E: de::Error>(self, s: &str, borrowed: bool) -> Result<*mut pg_sys::JsonbValue, E> {
        if s.contains('\0') {
            return Err(fallback());
        }
        self.scalar(string_value(s, borrowed))
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = *mut pg_sys::JsonbValue;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = *mut pg_sys::JsonbValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.scalar(pg_sys::JsonbValue { type_: pg_sys::jbvType::jbvNull, ..Default::default() })
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        let mut v = pg_sys::JsonbValue { type_: pg_sys::jbvType::jbvBool, ..Default::default() };
        v.val.boolean = b;
        self.scalar(v)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        let mut v = pg_sys::JsonbValue { type_: pg_sys::jbvType::jbvNumeric, ..Default::default() };
        // SAFETY: a plain conversion that allocates the numeric in the current context.
        v.val.numeric = unsafe { pg_sys::int64_to_numeric(n) };
        self.scalar(v)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        match i64::try_from(n) {
            Ok(n) => self.visit_i64(n),
            Err(_) => Err(fallback()),
        }
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        // A decimal's exact digits are not kept by serde: jsonb_in takes it.
        Err(fallback())
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        self.string(s, true)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        self.string(s, false)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // SAFETY: as in `scalar`.
        unsafe { pg_sys::pushJsonbValue(self.state, pg_sys::JsonbIteratorToken::WJB_BEGIN_ARRAY, std::ptr::null_mut()) };
        while seq.next_element_seed(Node { state: &mut *self.state, token: Some(pg_sys::JsonbIteratorToken::WJB_ELEM) })?.is_some() {}
        let done = unsafe { pg_sys::pushJsonbValue(self.state, pg_sys::JsonbIteratorToken::WJB_END_ARRAY, std::ptr::null_mut()) };
        Ok(done)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // SAFETY: as in `scalar`.
        unsafe { pg_sys::pushJsonbValue(self.state, pg_sys::JsonbIteratorToken::WJB_BEGIN_OBJECT, std::ptr::null_mut()) };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key.contains('\0') {
                return Err(de::Error::custom("not on the fast path"));
            }
            let mut k = string_value(&key, matches!(key, Cow::Borrowed(_)));
            unsafe { pg_sys::pushJsonbValue(self.state, pg_sys::JsonbIteratorToken::WJB_KEY, &mut k) };
            map.next_value_seed(Node { state: &mut *self.state, token: Some(pg_sys::JsonbIteratorToken::WJB_VALUE) })?;
        }
        let done = unsafe { pg_sys::pushJsonbValue(self.state, pg_sys::JsonbIteratorToken::WJB_END_OBJECT, std::ptr::null_mut()) };
        Ok(done)
    }
}
