-- The pipeline reads each tenant's oldest pending events: one index seek per tenant, however
-- long any tenant's backlog is.
CREATE INDEX events_pending_by_tenant ON events (tenant_id, received_at, id) WHERE status = 'pending';
