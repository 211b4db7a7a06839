//! Execution callbacks. BeginForeignScan reads the plan's data and the credentials; the first
//! IterateForeignScan (and the first after each rescan) evaluates the request values and starts
//! the listings; each call then returns one row from the page at hand, while the I/O thread
//! fetches the next pages (see `client::listing`).

use super::catalog;
use super::plan_data::{PlanData, ScanPlan};
use super::{raise, OrRaise};
use crate::client::listing::{FetchConfig, Listing, ListingCache};
use crate::client::request::{GivenValues, DEFAULT_MAX_LISTINGS};
use crate::client::runtime::Interrupts;
use crate::client::source::{ListingSource, Request};
use crate::client::Stats;
use crate::convert::prepare::{ColumnRecipe, RowRecipe};
use crate::convert::{convert, Cell, TargetType};
use crate::error::FdwError;
use crate::fdw::datum::{param_values, ColumnWriter};
use crate::options::ServerOptions;
use crate::resources::{self, ColumnSource, Resource};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode::*;
use pgrx::{PgList, PgMemoryContexts};

/// The state of one execution of a foreign scan. It lives in the executor's query memory
/// context and is dropped with it, also when the query fails.
pub struct ScanState {
    pub plan: ScanPlan,
    resource: &'static Resource,
    server: ServerOptions,
    fetch: FetchConfig,
    columns: Vec<(ColumnWriter, ColumnSource)>,
    /// Initialised `fdw_exprs`, one per planned parameter.
    param_exprs: Vec<*mut pg_sys::ExprState>,
    listing: Option<Listing>,
    /// Listings finished earlier in this execution, when the plan may repeat them (handed to
    /// the open listing while there is one).
    cache: Option<ListingCache>,
    /// Totals of the listings already finished (rescans start new ones).
    pub finished: Stats,
    /// The scan raised an error from the API.
    failed: bool,
    /// Memory for the echoed columns' Datums, emptied whenever they are made for another
    /// listing, so rescans and long IN lists do not pile them up.
    /// A child of the query's memory context: it goes with it, also on error.
    echo_cxt: pg_sys::MemoryContext,
    /// Datums of the echoed columns for the listing being read: the same for all its rows, so
    /// made once instead of once per row.
    echo: Option<EchoDatums>,
    /// Counts listings started, so cached echo Datums are never taken for a later listing's.
    generation: u64,
    /// Conditions checked on each parent item before its listings are made.
    parent_filter: Option<crate::client::source::ParentFilter>,
    /// The statement changes Databricks: each listing is read whole first (fdw/snapshot.rs).
    snapshot: Option<super::snapshot::Snapshot>,
}

struct EchoDatums {
    generation: u64,
    target: usize,
    /// Per column of the scan: the Datum (None: NULL) for echoed columns.
    datums: Vec<Option<pg_sys::Datum>>,
}

impl Drop for ScanState {
    fn drop(&mut self) {
        // Runs when the query's memory goes away, after success or failure alike: no Postgres
        // calls here, only the backend's own counters.
        crate::stats::record(&self.server.server_name, self.resource.name, self.stats(), self.failed);
    }
}

impl ScanState {
    pub fn stats(&self) -> Stats {
        let mut s = self.finished;
        if let Some(l) = &self.listing {
            s += l.stats();
        }
        s
    }

    pub fn caches_responses(&self) -> bool {
        self.server.client.cache_ttl.is_some()
    }

    fn close_listing(&mut self) {
        self.finished = self.stats();
        if let Some(listing) = self.listing.take() {
            self.cache = listing.finish();
        }
    }
}

/// Postgres's interrupt flag and handler, for waits on the network.
pub(super) struct PgInterrupts;

impl Interrupts for PgInterrupts {
    fn pending(&self) -> bool {
        // SAFETY: plain reads of flags and counters of this backend (INTERRUPTS_PENDING_CONDITION
        // and INTERRUPTS_CAN_BE_PROCESSED in C). While interrupts are held off, processing
        // them does nothing and leaves the flag set: the wait then just goes on.
        unsafe {
            std::ptr::read_volatile(std::ptr::addr_of!(pg_sys::InterruptPending)) != 0
                && pg_sys::InterruptHoldoffCount == 0
                && pg_sys::CritSectionCount == 0
                && pg_sys::QueryCancelHoldoffCount == 0
        }
    }

    fn process(&self) {
        // Raises the cancel or timeout error, or returns after handling a harmless interrupt.
        pg_sys::check_for_interrupts!();
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn begin_foreign_scan(node: *mut pg_sys::ForeignScanState, eflags: std::ffi::c_int) {
    // Plain EXPLAIN never talks to the API.
    if eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0 {
        return;
    }
    let fsplan = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
    let plan = ScanPlan::from_list((*fsplan).fdw_private);
    let resource = resources::find(&plan.resource)
        .unwrap_or_else(|| raise(FdwError::new(ERRCODE_FDW_ERROR, format!("unknown resource \"{}\" in a cached plan", plan.resource))));

    let relation = (*node).ss.ss_currentRelation;
    let table = catalog::table((*relation).rd_id);
    let estate = (*node).ss.ps.state;
    let user = super::compat::check_as_user(fsplan, estate);
    let super::connect::Remote { server, client } = super::connect::open(table.server_id, user);

    let desc = (*relation).rd_att;
    let attrs = super::compat::attributes(desc);
    // The plan says where each column's value comes from: the executor only follows it.
    let columns: Vec<(ColumnWriter, ColumnSource)> = plan
        .columns
        .iter()
        .map(|c| {
            let attr = &attrs[c.attnum as usize - 1];
            (ColumnWriter::new(c.attnum as usize - 1, c.name.clone(), &plan.table, attr.atttypid, attr.atttypmod), c.source.clone())
        })
        .collect();
    // Wanted fields live as long as the backend's runtime needs them (a name only a column's
    // `path` gives is leaked once).
    let fields: Vec<&'static str> = plan.fields.iter().map(|f| resources::static_field(f)).collect();
    let param_exprs = PgList::<pg_sys::ExprState>::from_pg(pg_sys::ExecInitExprList((*fsplan).fdw_exprs, node as *mut pg_sys::PlanState))
        .iter_ptr()
        .collect();

    let recipe = RowRecipe {
        columns: columns
            .iter()
            .map(|(writer, source): &(ColumnWriter, ColumnSource)| match source {
                ColumnSource::Field { field, keys } => Some(ColumnRecipe { field: *field, path: keys.clone(), target: writer.target }),
                ColumnSource::Echo => None,
            })
            .collect(),
        // Elsewhere jsonb_in converts the escapes of non-ASCII characters to the database's encoding.
        binary_jsonb: pg_sys::GetDatabaseEncoding() == pg_sys::pg_enc::PG_UTF8 as i32,
    };
    let fetch = FetchConfig {
        client,
        prefetch: !plan.limited,
        list_key: resource.list_key,
        fields: fields.into(),
        max_in_flight: server.max_concurrent_requests,
        rows: Some(std::sync::Arc::new(recipe)),
    };
    let cache = plan.cache_listings.then(ListingCache::default);
    let parent_filter = super::parent_filter::for_scan(node, &plan, resource);
    let fdw = (*pg_sys::GetForeignServer(table.server_id)).fdwid;
    let snapshot =
        super::snapshot::needed(estate, fdw).then(|| super::snapshot::Snapshot::new((*(*node).ss.ss_ScanTupleSlot).tts_tupleDescriptor));
    let state = ScanState {
        plan,
        resource,
        server,
        fetch,
        columns,
        param_exprs,
        listing: None,
        cache,
        finished: Stats::default(),
        failed: false,
        echo_cxt: super::small_memory_context(c"databricks_fdw echoed values"),
        echo: None,
        generation: 0,
        parent_filter,
        snapshot,
    };
    (*node).fdw_state = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(state) as *mut std::ffi::c_void;
}

/// Evaluates the request values and builds the listings to follow.
unsafe fn start_listing(node: *mut pg_sys::ForeignScanState, state: &mut ScanState) -> Listing {
    let econtext = (*node).ss.ps.ps_ExprContext;
    let given: Vec<GivenValues> = PgMemoryContexts::For((*econtext).ecxt_per_tuple_memory).switch_to(|_| {
        state
            .plan
            .params
            .iter()
            .zip(&state.param_exprs)
            .map(|(param, &expr_state)| {
                let mut is_null = false;
                let datum = pg_sys::ExecEvalExpr(expr_state, econtext, &mut is_null);
                GivenValues { column: param.column.clone(), values: param_values(datum, is_null, param.list) }
            })
            .collect()
    });
    let request = Request {
        resource: state.resource,
        endpoint: &state.server.endpoint,
        page_size: state.plan.page_size,
        given,
        max_listings: state.plan.max_listings.or(state.server.max_listings).unwrap_or(DEFAULT_MAX_LISTINGS),
        list_parents: state.plan.list_parents,
        deployment_unbound: state.plan.deployment_unbound,
    };
    let mut source = ListingSource::new(request, &state.fetch)
        .unwrap_or_else(|e| raise(super::errors::request_error(e, &state.plan.table, &state.server.server_name)));
    if let Some(filter) = &state.parent_filter {
        source.set_parent_filter(filter.clone());
    }
    Listing::new(source, &state.fetch, state.cache.take())
}

#[pg_guard]
pub unsafe extern "C-unwind" fn iterate_foreign_scan(node: *mut pg_sys::ForeignScanState) -> *mut pg_sys::TupleTableSlot {
    let state = &mut *((*node).fdw_state as *mut ScanState);
    match state.snapshot.take() {
        None => next_row(node, state),
        Some(mut snapshot) => {
            let slot = snapshot.next((*node).ss.ss_ScanTupleSlot, || !super::snapshot::is_empty(next_row(node, state)));
            state.snapshot = Some(snapshot);
            slot
        }
    }
}

/// The next row of the listing into the scan's slot (emptied at the end).
unsafe fn next_row(node: *mut pg_sys::ForeignScanState, state: &mut ScanState) -> *mut pg_sys::TupleTableSlot {
    let slot = (*node).ss.ss_ScanTupleSlot;
    // An empty slot ends the scan; a row fills it.
    let (values, nulls) = super::slot::emptied(slot);
    if state.listing.is_none() {
        state.listing = Some(start_listing(node, state));
        state.generation += 1;
    }
    let ScanState { listing, columns, plan, failed, echo, generation, echo_cxt, .. } = state;
    let listing = listing.as_mut().expect("started above");
    // What the last call's listings skipped (told before the next row, or at the end).
    warn_skipped(listing, &plan.table);
    let (page, item, target) = match listing.next_item(&PgInterrupts) {
        Ok(Some(found)) => found,
        Ok(None) => {
            warn_skipped(listing, &plan.table);
            return slot;
        }
        Err(e) => {
            *failed = true;
            raise(super::errors::api_error(e, &plan.table))
        }
    };

    if !echo.as_ref().is_some_and(|e| e.generation == *generation && e.target == target.index) {
        pg_sys::MemoryContextReset(*echo_cxt);
        let datums = PgMemoryContexts::For(*echo_cxt).switch_to(|_| {
            columns
                .iter_mut()
                .map(|(writer, source)| match source {
                    ColumnSource::Echo => {
                        let cell = echoed(target.echo_value(&writer.name), writer.target)
                            .map_err(|e| writer.conversion_error(&plan.table, e))
                            .or_raise();
                        writer.datum(cell, &plan.table)
                    }
                    ColumnSource::Field { .. } => None,
                })
                .collect()
        });
        *echo = Some(EchoDatums { generation: *generation, target: target.index, datums });
    }
    let echo_datums = &echo.as_ref().expect("made above").datums;
    // The row was made ready on the I/O thread: one allocation and one copy, then pointers.
    let rows = page.prepared().expect("the scan's listings prepare their rows");
    let (bytes, cells) = rows.row(item);
    let row = if bytes.is_empty() {
        std::ptr::null_mut()
    } else {
        let row = pg_sys::palloc(bytes.len()) as *mut u8;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), row, bytes.len());
        row
    };
    for (i, (writer, source)) in columns.iter_mut().enumerate() {
        let datum = match source {
            ColumnSource::Echo => echo_datums[i],
            ColumnSource::Field { .. } => writer.prepared_datum(cells[i], row, rows, &plan.table),
        };
        if let Some(datum) = datum {
            values[writer.index] = datum;
            nulls[writer.index] = false;
        }
    }
    pg_sys::ExecStoreVirtualTuple(slot);
    slot
}

/// A WARNING for each parent item the listings could not follow: its rows are missing, and
/// the user is told so rather than handed a shorter result in silence.
fn warn_skipped(listing: &mut Listing, table: &str) {
    for notice in listing.take_notices() {
        pgrx::warning!("foreign table \"{table}\": {notice}");
    }
}

/// The cell for a value a listing was requested with: the text itself for a text column; for
/// any other declared type, the conversion a JSON string would get.
pub(super) fn echoed(value: Option<&str>, target: TargetType) -> Result<Cell<'static>, crate::convert::ConvertError> {
    match (value, target) {
        (None, _) => Ok(Cell::Null),
        (Some(v), TargetType::Text) => Ok(Cell::Text(std::borrow::Cow::Owned(v.to_string()))),
        (Some(v), _) => convert(Some(&serde_json::Value::from(v).to_string()), target).map(Cell::into_owned),
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn rescan_foreign_scan(node: *mut pg_sys::ForeignScanState) {
    if let Some(state) = ((*node).fdw_state as *mut ScanState).as_mut() {
        // Parameter values may have changed: evaluate them again on the next row.
        state.close_listing();
        if let Some(snapshot) = state.snapshot.as_mut() {
            snapshot.rescan((*node).ss.ps.chgParam.is_null());
        }
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn end_foreign_scan(node: *mut pg_sys::ForeignScanState) {
    // The state itself is freed with the query's memory context; release the page now.
    if let Some(state) = ((*node).fdw_state as *mut ScanState).as_mut() {
        state.close_listing();
        if let Some(mut snapshot) = state.snapshot.take() {
            snapshot.end();
        }
    }
}
