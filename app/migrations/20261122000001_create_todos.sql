-- Todos. Ids are UUIDv7, made by the app: they sort by creation time, so
-- "newest first" and cursor pagination both order by id alone.
create table todos (
    id uuid primary key,
    text text not null check (char_length(text) between 1 and 140),
    done boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create index todos_done_id_idx on todos (done, id desc);
