//! A scan in a statement that changes Databricks reads its whole listing before it returns its
//! first row. Postgres's executor interleaves reading and changing (row 1 is inserted before row
//! 2 is read), and the API has no snapshot: an `INSERT ... SELECT` from the table it inserts into
//! would read the rows it has just created, for ever, and a `DELETE` would fetch its later pages
//! after earlier rows were deleted, which moves offset-like page tokens past rows it never sees.
//! Read first, the statement changes exactly the rows that were there when it started reading.
//!
//! The rows wait in a tuplestore: in memory up to `work_mem`, then in a temporary file, so a
//! large listing costs disk, not memory.

use pgrx::prelude::*;
use pgrx::PgMemoryContexts;

/// Whether a scan of a table of foreign data wrapper `fdw` in this statement must read its
/// listing whole first: the statement changes a foreign table of the same wrapper, or a
/// partitioned table (whose rows may be routed into one).
///
/// # Safety
/// `estate` must be the executor state of the statement being started.
pub unsafe fn needed(estate: *mut pg_sys::EState, fdw: pg_sys::Oid) -> bool {
    let stmt = (*estate).es_plannedstmt;
    if stmt.is_null() || (*stmt).resultRelations.is_null() {
        return false;
    }
    let list = (*stmt).resultRelations;
    (0..(*list).length as usize).any(|i| {
        let rt_index = (*(*list).elements.add(i)).int_value as pg_sys::Index;
        let relid = (*pg_sys::exec_rt_fetch(rt_index, estate)).relid;
        match pg_sys::get_rel_relkind(relid) as u8 {
            pg_sys::RELKIND_PARTITIONED_TABLE => true,
            pg_sys::RELKIND_FOREIGN_TABLE => (*pg_sys::GetForeignServer(pg_sys::GetForeignServerIdByRelId(relid))).fdwid == fdw,
            _ => false,
        }
    })
}

/// The rows of one listing (one set of request values), read whole before the first is returned.
pub struct Snapshot {
    store: *mut pg_sys::Tuplestorestate,
    /// The query's memory, where rows read back from disk are made: IterateForeignScan runs
    /// in per-tuple memory, which is emptied before the reader slot frees the row it holds.
    cxt: pg_sys::MemoryContext,
    /// One row's values while the listing is read, emptied before the next (the per-tuple
    /// memory is not emptied until the whole listing has been read).
    row_cxt: pg_sys::MemoryContext,
    /// Reads rows back out of the store (which holds minimal tuples).
    reader: *mut pg_sys::TupleTableSlot,
    /// The store holds the whole listing.
    filled: bool,
}

impl Snapshot {
    /// # Safety
    /// Runs in the memory context of the query (the store and its slot live there).
    pub unsafe fn new(desc: pg_sys::TupleDesc) -> Snapshot {
        Snapshot {
            store: pg_sys::tuplestore_begin_heap(false, false, pg_sys::work_mem),
            cxt: pg_sys::CurrentMemoryContext,
            row_cxt: pg_sys::AllocSetContextCreateExtended(
                pg_sys::CurrentMemoryContext,
                c"databricks_fdw snapshot row".as_ptr(),
                pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
            ),
            reader: pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsMinimalTuple),
            filled: false,
        }
    }

    /// Puts the next row into `slot` (emptied at the end). The first call stores every row
    /// `fill` gives (it puts one row into `slot`, and says whether there was one).
    ///
    /// # Safety
    /// `slot` must be the scan's slot, of the descriptor the snapshot was made with.
    pub unsafe fn next(&mut self, slot: *mut pg_sys::TupleTableSlot, mut fill: impl FnMut() -> bool) -> *mut pg_sys::TupleTableSlot {
        if !self.filled {
            loop {
                pg_sys::MemoryContextReset(self.row_cxt);
                if !PgMemoryContexts::For(self.row_cxt).switch_to(|_| fill()) {
                    break;
                }
                // Copied into the store's own memory (or file).
                pg_sys::tuplestore_puttupleslot(self.store, slot);
            }
            self.filled = true;
        }
        let (values, nulls) = super::slot::emptied(slot);
        // The stored row stays valid until the next read, as long as the slot's row must.
        let (store, reader) = (self.store, self.reader);
        if PgMemoryContexts::For(self.cxt).switch_to(|_| pg_sys::tuplestore_gettupleslot(store, true, false, reader)) {
            for (i, value) in super::slot::slot_values(self.reader).into_iter().enumerate() {
                if let Some(datum) = value {
                    values[i] = datum;
                    nulls[i] = false;
                }
            }
            pg_sys::ExecStoreVirtualTuple(slot);
        }
        slot
    }

    /// A rescan: with the same request values, the same rows again; otherwise a new listing.
    ///
    /// # Safety
    /// In a backend, during the scan's execution.
    pub unsafe fn rescan(&mut self, same_values: bool) {
        if same_values && self.filled {
            pg_sys::tuplestore_rescan(self.store);
        } else {
            pg_sys::tuplestore_clear(self.store);
            self.filled = false;
        }
    }

    /// Frees the store now (its temporary file included) rather than with the query's memory.
    ///
    /// # Safety
    /// Once, at the end of the scan.
    pub unsafe fn end(&mut self) {
        pg_sys::tuplestore_end(self.store);
        pg_sys::ExecDropSingleTupleTableSlot(self.reader);
    }
}

/// Whether a slot holds no row (TupIsNull in C).
///
/// # Safety
/// `slot` is NULL or a valid slot.
pub unsafe fn is_empty(slot: *mut pg_sys::TupleTableSlot) -> bool {
    slot.is_null() || (*slot).tts_flags & pg_sys::TTS_FLAG_EMPTY as u16 != 0
}
