-- Who made each todo and who changed it last, written by the statement that
-- makes the change (see `db::outbox`). jsonb in the event contract's shape
-- (`events::Actor`: `{"kind": "person", "subject", "name"}`,
-- `{"kind": "token", "name"}`, `{"kind": "anonymous"}`) rather than a pair
-- of text columns each: a row and its event then say the same thing the same
-- way, and a kind added later needs no migration. A person's name is kept as
-- it was at the change (the subject is what identifies them). Null for todos
-- made before these columns existed: nobody recorded who made them.
--
-- Nullable columns without a default: adding them rewrites no rows.
alter table todos
    add column created_by jsonb,
    add column updated_by jsonb;
