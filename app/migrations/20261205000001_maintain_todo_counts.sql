-- Each list's total, kept exact by the change that alters it, in the same
-- transaction, so the page reads a few rows instead of counting a table that
-- only grows (a count of a million todos took ~45 ms of every page and
-- every toggle).
--
-- Totals are split into slots, one per connection (`pg_backend_pid()`
-- modulo 32), and a list's total is the sum of its slots. Every change adds
-- to its own connection's slot, so concurrent writers rarely wait on the
-- same row; a transaction always touches its slot's `false` row before its
-- `true` row, so two writers sharing a slot queue but never deadlock. A
-- slot may hold a negative number (a todo created on one connection and
-- deleted on another); only the sum means anything.
-- Writers wait for this migration's commit, so no change lands between
-- the triggers taking over and the count of the todos already stored.
lock table todos in share row exclusive mode;

create table todo_counts (
    done boolean not null,
    slot smallint not null,
    total bigint not null,
    primary key (done, slot)
);

create function todo_counts_after_insert() returns trigger language plpgsql as $$
begin
    insert into todo_counts as c (done, slot, total)
    select done, pg_backend_pid() % 32, count(*) from inserted group by done order by done
    on conflict (done, slot) do update set total = c.total + excluded.total;
    return null;
end;
$$;

create function todo_counts_after_update() returns trigger language plpgsql as $$
begin
    insert into todo_counts as c (done, slot, total)
    select done, pg_backend_pid() % 32, sum(delta)
    from (select done, 1 as delta from changed_to
          union all
          select done, -1 from changed_from) as moved
    group by done
    having sum(delta) <> 0
    order by done
    on conflict (done, slot) do update set total = c.total + excluded.total;
    return null;
end;
$$;

create function todo_counts_after_delete() returns trigger language plpgsql as $$
begin
    insert into todo_counts as c (done, slot, total)
    select done, pg_backend_pid() % 32, -count(*) from deleted group by done order by done
    on conflict (done, slot) do update set total = c.total + excluded.total;
    return null;
end;
$$;

create function todo_counts_after_truncate() returns trigger language plpgsql as $$
begin
    delete from todo_counts;
    return null;
end;
$$;

create trigger todo_counts_insert after insert on todos
    referencing new table as inserted
    for each statement execute function todo_counts_after_insert();
create trigger todo_counts_update after update on todos
    referencing old table as changed_from new table as changed_to
    for each statement execute function todo_counts_after_update();
create trigger todo_counts_delete after delete on todos
    referencing old table as deleted
    for each statement execute function todo_counts_after_delete();
create trigger todo_counts_truncate after truncate on todos
    for each statement execute function todo_counts_after_truncate();

-- The todos already stored.
insert into todo_counts (done, slot, total)
select done, 0, count(*) from todos group by done;
