//! Reading and filling tuple slots (the parts of C's inline slot functions the glue needs).

use pgrx::prelude::*;

/// The values of a slot, by column (`None`: NULL), all of them deformed.
///
/// # Safety
/// `slot` must be a valid slot holding a row; the Datums live as long as that row.
pub unsafe fn slot_values(slot: *mut pg_sys::TupleTableSlot) -> Vec<Option<pg_sys::Datum>> {
    let natts = (*(*slot).tts_tupleDescriptor).natts as usize;
    if ((*slot).tts_nvalid as usize) < natts {
        pg_sys::slot_getsomeattrs_int(slot, natts as i32);
    }
    let values = std::slice::from_raw_parts((*slot).tts_values, natts);
    let nulls = std::slice::from_raw_parts((*slot).tts_isnull, natts);
    values.iter().zip(nulls).map(|(v, null)| (!null).then_some(*v)).collect()
}

/// The slot, cleared, with every column NULL: its values and null flags to fill in (then
/// `ExecStoreVirtualTuple`).
///
/// # Safety
/// `slot` must be a valid virtual slot that outlives the slices.
pub unsafe fn emptied<'a>(slot: *mut pg_sys::TupleTableSlot) -> (&'a mut [pg_sys::Datum], &'a mut [bool]) {
    // ExecClearTuple, a static inline function in C; called through pgrx's guard, so that an
    // ERROR raised in it becomes a Rust panic pgrx turns back into the ERROR, instead of a
    // longjmp across Rust frames.
    if let Some(clear) = (*(*slot).tts_ops).clear {
        pg_sys::ffi::pg_guard_ffi_boundary(|| clear(slot));
    }
    let natts = (*(*slot).tts_tupleDescriptor).natts as usize;
    let values = std::slice::from_raw_parts_mut((*slot).tts_values, natts);
    let nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, natts);
    nulls.fill(true);
    (values, nulls)
}
