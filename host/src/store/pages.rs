//! One page of a tenant's events or deliveries, newest first, under filters, resumed from a
//! cursor. Pages are keyed on (time, id), which never changes for a row, so a walk from page
//! to page returns each row at most once and skips none of the rows that existed when it
//! began, whatever is inserted meanwhile (newer rows sort before the walk's position).

use sqlx::{Database, Encode, QueryBuilder, Type};

use super::{DeliveryRow, EventRow, Result, Store};
use crate::event::TenantId;

/// Where the previous page ended: its last row's time (unix ms) and id. The next page holds
/// rows strictly older in (time, id) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    pub at: i64,
    pub id: String,
}

/// What to list. Every `Some` narrows; `since` is inclusive and `until` exclusive (unix ms,
/// on `received_at` for events and `created_at` for deliveries).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<String>,
    pub event_type: Option<String>,
    pub source: Option<String>,
    pub route: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub after: Option<PageCursor>,
}

/// A page and, when more rows may follow, where the next one starts.
#[derive(Debug)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<PageCursor>,
}

impl Store {
    pub async fn list_events(&self, tenant: &TenantId, filter: &ListFilter, limit: u32) -> Result<Page<EventRow>> {
        let rows: Vec<EventRow> =
            on_pool!(&self.db, p => events_query::<DB>("", tenant, filter, limit).build_query_as().fetch_all(p).await?);
        Ok(page(rows, limit, |r| PageCursor { at: r.received_at, id: r.id.as_str().to_owned() }))
    }

    pub async fn list_deliveries(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        limit: u32,
    ) -> Result<Page<DeliveryRow>> {
        let rows: Vec<DeliveryRow> = on_pool!(&self.db, p => deliveries_query::<DB>("", tenant, filter, limit)
            .build_query_as()
            .fetch_all(p)
            .await?);
        Ok(page(rows, limit, |r| PageCursor { at: r.created_at, id: r.id.as_str().to_owned() }))
    }
}

/// One page of events (one row more, to tell whether another page follows); `prefix` lets
/// the tests ask for the query plan.
fn events_query<'a, DB>(prefix: &str, tenant: &'a TenantId, filter: &'a ListFilter, limit: u32) -> QueryBuilder<'a, DB>
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    TenantId: Encode<'a, DB> + Type<DB>,
{
    let mut q = QueryBuilder::<DB>::new(format!(
        "{prefix}SELECT {} FROM events e JOIN tenants t ON t.id = e.tenant_id WHERE e.tenant_id = ",
        super::events::COLUMNS
    ));
    q.push_bind(tenant);
    narrow(&mut q, filter, "e.", "e.received_at");
    if let Some(source) = &filter.source {
        q.push(" AND e.source = ").push_bind(source);
    }
    if let Some(route) = &filter.route {
        q.push(" AND EXISTS (SELECT 1 FROM route_results r WHERE r.event_id = e.id AND r.route = ")
            .push_bind(route)
            .push(")");
    }
    q.push(" ORDER BY e.received_at DESC, e.id DESC LIMIT ").push_bind(i64::from(limit) + 1);
    q
}

/// One page of deliveries, like `events_query`.
fn deliveries_query<'a, DB>(
    prefix: &str,
    tenant: &'a TenantId,
    filter: &'a ListFilter,
    limit: u32,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    TenantId: Encode<'a, DB> + Type<DB>,
{
    let mut q = QueryBuilder::<DB>::new(format!(
        "{prefix}SELECT {} FROM deliveries d WHERE d.tenant_id = ",
        super::deliveries::ROW
    ));
    q.push_bind(tenant);
    narrow(&mut q, filter, "d.", "d.created_at");
    if let Some(source) = &filter.source {
        q.push(" AND EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id AND e.source = ")
            .push_bind(source)
            .push(")");
    }
    if let Some(route) = &filter.route {
        q.push(" AND d.route = ").push_bind(route);
    }
    q.push(" ORDER BY d.created_at DESC, d.id DESC LIMIT ").push_bind(i64::from(limit) + 1);
    q
}

/// Statuses of events and deliveries: safe to write into a query as literals.
const KNOWN_STATUSES: [&str; 5] = ["pending", "processed", "delivered", "dead", "superseded"];

/// The conditions events and deliveries share: status, type, time range and cursor. Each is
/// added only when given, so SQLite can pick the index that fits (a `? IS NULL OR` form
/// would hide the column from the planner).
fn narrow<'a, DB>(q: &mut QueryBuilder<'a, DB>, filter: &'a ListFilter, table: &str, time: &str)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    TenantId: Encode<'a, DB> + Type<DB>,
{
    if let Some(status) = &filter.status {
        // A status the API knows is written as a literal, so SQLite may use the partial
        // indexes for it (migration 0012); anything else is bound.
        match KNOWN_STATUSES.iter().find(|known| **known == status.as_str()) {
            Some(known) => q.push(format!(" AND {table}status = '{known}'")),
            None => q.push(format!(" AND {table}status = ")).push_bind(status.clone()),
        };
    }
    if let Some(event_type) = &filter.event_type {
        q.push(format!(" AND {table}event_type = ")).push_bind(event_type.clone());
    }
    if let Some(since) = filter.since {
        q.push(format!(" AND {time} >= ")).push_bind(since);
    }
    if let Some(until) = filter.until {
        q.push(format!(" AND {time} < ")).push_bind(until);
    }
    if let Some(after) = &filter.after {
        q.push(format!(" AND ({time}, {table}id) < ("))
            .push_bind(after.at)
            .push(", ")
            .push_bind(after.id.clone())
            .push(")");
    }
}

/// Cuts the one row fetched past `limit` and makes the cursor from the last row kept.
fn page<T>(mut rows: Vec<T>, limit: u32, cursor: impl Fn(&T) -> PageCursor) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(cursor) } else { None };
    Page { rows, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every common filter reads an index in page order: no table scan, no sort.
    #[tokio::test]
    async fn common_filters_use_an_index_in_page_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let tenant = store.create_tenant("acme").await.unwrap().id;
        let after = Some(PageCursor { at: 5, id: "evt_x".into() });
        let s = |v: &str| Some(v.to_owned());
        let filters = [
            ListFilter::default(),
            ListFilter { after: after.clone(), ..ListFilter::default() },
            ListFilter { status: s("pending"), after: after.clone(), ..ListFilter::default() },
            ListFilter { event_type: s("call.ended"), after, ..ListFilter::default() },
            ListFilter { status: s("dead"), since: Some(1), until: Some(9), ..ListFilter::default() },
            ListFilter { route: s("slack"), ..ListFilter::default() },
        ];
        for (i, f) in filters.iter().enumerate() {
            let mut queries = vec![deliveries_query::<sqlx::Sqlite>("EXPLAIN QUERY PLAN ", &tenant, f, 10)];
            // Events have no route column (that filter walks the time index) nor `dead`.
            if i < 4 {
                queries.push(events_query("EXPLAIN QUERY PLAN ", &tenant, f, 10));
            }
            for mut q in queries {
                let plan: Vec<(i64, i64, i64, String)> =
                    q.build_query_as().fetch_all(store.sqlite_pool()).await.unwrap();
                let plan: Vec<String> = plan.into_iter().map(|p| p.3).collect();
                let text = plan.join("\n");
                assert!(plan.iter().all(|step| !step.starts_with("SCAN")), "{f:?}:\n{text}");
                assert!(!text.contains("TEMP B-TREE"), "{f:?}:\n{text}");
            }
        }
    }
}
