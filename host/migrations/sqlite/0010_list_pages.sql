-- Lists of events and deliveries are paged newest first on (time, id) and filtered by status,
-- type and (deliveries) route. Each common filter gets an index that holds the page order,
-- so a page reads only its own rows and never walks the tenant's whole history. The
-- per-tenant time indexes gain the id, so a cursor's tie-break needs no sort either.
DROP INDEX events_by_tenant;
CREATE INDEX events_by_tenant ON events (tenant_id, received_at, id);
CREATE INDEX events_by_type ON events (tenant_id, event_type, received_at, id);
CREATE INDEX events_by_status ON events (tenant_id, status, received_at, id);

DROP INDEX deliveries_by_tenant;
CREATE INDEX deliveries_by_tenant ON deliveries (tenant_id, created_at, id);
CREATE INDEX deliveries_by_status ON deliveries (tenant_id, status, created_at, id);
CREATE INDEX deliveries_by_route ON deliveries (tenant_id, route, created_at, id);
