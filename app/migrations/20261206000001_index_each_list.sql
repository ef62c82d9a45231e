-- An index per list, holding only that list's todos in the order the page
-- reads them (`db::todos::lists`: the newest of each list).
--
-- With one index on (done, id desc), PostgreSQL often read a list through
-- the primary key instead (the table's rows lie in id order, so it costs
-- that path less) and filtered on `done`, expecting done todos spread
-- evenly among the newest. They are not: the newest todos are mostly open.
-- After 150,000 creates on a million todos, reading the done list stepped
-- over all of them: 26 ms instead of 0.1 ms, and growing with every open
-- todo. A partial index needs no filter, so it is the cheapest path for
-- any spread of the lists.
--
-- Built in the migration's transaction, so writes wait for it: about a
-- second per million todos.
create index todos_open_idx on todos (id desc) where not done;
create index todos_done_idx on todos (id desc) where done;
drop index todos_done_id_idx;
