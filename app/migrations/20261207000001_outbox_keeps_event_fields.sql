-- The outbox keeps an event's fields, not its JSON: the relay serialises
-- each event (`events::TodoEvent`) as it publishes it. The statement that
-- edits or deletes todos can then write their events itself, from the rows
-- it changes, in one round trip with no transaction around it. Before, the
-- app read the locked rows, built the events and sent them back before
-- `COMMIT`, holding the rows' locks across three waits on the app; under
-- 64 connections toggling the same todos, writers queued on those locks.
--
-- Rows already waiting are converted, so none is lost or published in a
-- different shape.
alter table outbox
    add column event_type text,
    add column occurred_at timestamptz,
    add column todo_id uuid,
    add column todo_text text,
    add column todo_done boolean,
    add column todo_created_at timestamptz,
    add column todo_updated_at timestamptz,
    -- For `todo.updated`: the fields that changed value, in the contract's
    -- names; empty otherwise.
    add column changed text[] not null default '{}',
    -- `events::Actor`, as `todos.created_by` holds it; null in events
    -- written before actors were recorded.
    add column actor jsonb;

update outbox set
    event_type = payload ->> 'type',
    occurred_at = (payload ->> 'occurred_at')::timestamptz,
    todo_id = (payload -> 'todo' ->> 'id')::uuid,
    todo_text = payload -> 'todo' ->> 'text',
    todo_done = (payload -> 'todo' ->> 'done')::boolean,
    todo_created_at = (payload -> 'todo' ->> 'created_at')::timestamptz,
    todo_updated_at = (payload -> 'todo' ->> 'updated_at')::timestamptz,
    changed = coalesce(array(select json_array_elements_text(payload -> 'changed')), '{}'),
    actor = (payload -> 'actor')::jsonb;

alter table outbox
    drop column subject,
    drop column payload,
    alter column event_type set not null,
    add constraint outbox_event_type_known
        check (event_type in ('todo.created', 'todo.updated', 'todo.deleted')),
    add constraint outbox_changed_known
        check (changed <@ array['text', 'done']),
    alter column occurred_at set not null,
    alter column todo_id set not null,
    alter column todo_text set not null,
    alter column todo_done set not null,
    alter column todo_created_at set not null,
    alter column todo_updated_at set not null;
