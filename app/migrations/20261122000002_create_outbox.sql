-- The transactional outbox: a row is written in the same transaction as the
-- change it describes, and the relay publishes rows to JetStream in `seq`
-- order, deleting each once JetStream has acknowledged it.
create table outbox (
    seq bigint generated always as identity primary key,
    event_id uuid not null unique,
    subject text not null,
    -- `json`, not `jsonb`: the bytes published are exactly the bytes written.
    payload json not null,
    created_at timestamptz not null default now()
);

-- Wakes the relay as soon as the writing transaction commits.
create function outbox_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('outbox', '');
    return null;
end;
$$;

create trigger outbox_notify
    after insert on outbox
    for each statement execute function outbox_notify();
