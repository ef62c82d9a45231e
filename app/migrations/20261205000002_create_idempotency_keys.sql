-- `Idempotency-Key`s of `POST /api/todos`, per API token: a retry with the
-- same key within 24 hours is answered with the first answer instead of
-- making a second todo. A key is written in the transaction that creates
-- its todo, so neither is ever stored without the other; the primary key
-- makes a concurrent retry wait for that transaction and then find the key.
create table idempotency_keys (
    token_name text not null,
    key text not null check (char_length(key) between 1 and 255),
    -- SHA-256 of the request, to tell a retry from another request that
    -- reuses the key.
    request_hash bytea not null check (length(request_hash) = 32),
    todo_id uuid not null,
    -- The first answer, as sent: the todo as it was then, even if it has
    -- changed or gone since.
    status smallint not null,
    response json not null,
    created_at timestamptz not null default now(),
    primary key (token_name, key)
);

-- Expired keys are deleted oldest first (see `db::idempotency`).
create index idempotency_keys_created_at_idx on idempotency_keys (created_at);
