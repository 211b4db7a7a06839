//! Reading and filling tuple slots (the parts of C's inline slot functions the glue needs).

use pgrx::prelude::*;

/// The values of a slot, by column (`None`: NULL), all of them deformed.
///
/// # Safety
/// `slot` must be a valid slot holding a row; the Datums live as long as that row.
pub unsafe fn slot_values(slot: *mut pg_sys::TupleTableSlot) -> Vec<Option<pg_sys::Datum>> {
    let natts = (*(*slot).tts_tupleDescriptor).natts as usize;
    slot_prefix(slot, natts)
}

unsafe fn slot_prefix(slot: *mut pg_sys::TupleTableSlot, n: usize) -> Vec<Option<pg_sys::Datum>> {
    if ((*slot).tts_nvalid as usize) < n {
        pg_sys::slot_getsomeattrs_int(slot, n as i32);
    }
    let values = std::slice::from_raw_parts((*slot).tts_values, n);
    let nulls = std::slice::from_raw_parts((*slot).tts_isnull, n);
    values.iter().zip(nulls).map(|(v, null)| (!null).then_some(*v)).collect()
}

/// The value of attribute `attno` (from 1) of a slot.
///
/// # Safety
/// As [`slot_values`], and `attno` must be one of the slot's attributes.
pub unsafe fn slot_value(slot: *mut pg_sys::TupleTableSlot, attno: pg_sys::AttrNumber) -> Option<pg_sys::Datum> {
    slot_prefix(slot, attno as usize)[attno as usize - 1]
}

/// The slot, cleared, with every column NULL: its values and null flags to fill in (then
/// `ExecStoreVirtualTuple`).
///
/// # Safety
/// `slot` must be a valid virtual slot that outlives the slices.
pub unsafe fn emptied<'a>(slot: *mut pg_sys::TupleTableSlot) -> (&'a mut [pg_sys::Datum], &'a mut [bool]) {
    // ExecClearTuple, a static inline function in C.
    if let Some(clear) = (*(*slot).tts_ops).clear {
        clear(slot);
    }
    let natts = (*(*slot).tts_tupleDescriptor).natts as usize;
    let values = std::slice::from_raw_parts_mut((*slot).tts_values, natts);
    let nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, natts);
    nulls.fill(true);
    (values, nulls)
}
