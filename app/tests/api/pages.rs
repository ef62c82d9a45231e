//! The browser UI: full pages, htmx fragments, plain-form fallbacks.

use reqwest::Method;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_page_shows_the_form_and_empty_lists() {
    let app = spawn_app().await;

    let response = app.get("/").await;

    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["vary"]
            .to_str()
            .unwrap()
            .contains("HX-Request")
    );
    let html = response.text().await.unwrap();
    assert!(
        html.contains(r#"<label for="todo-text">New todo</label>"#),
        "{html}"
    );
    assert!(html.contains("Nothing to do"), "{html}");
    assert!(html.contains("/static/htmx-2.0.8.min.js"), "{html}");
}

#[tokio::test]
async fn a_plain_form_post_stores_the_todo_and_redirects() {
    let app = spawn_app().await;

    let response = app.post_form("/todos", &[("text", "  Buy milk  ")]).await;

    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/");
    let stored: String = sqlx::query_scalar("select text from todos")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, "Buy milk");
    let page = app.get("/").await.text().await.unwrap();
    assert!(page.contains("Buy milk"), "{page}");
}

#[tokio::test]
async fn an_htmx_post_answers_a_cleared_form_and_the_page_re_fetches_the_lists() {
    let app = spawn_app().await;
    app.htmx(Method::POST, "/todos", &[("text", "Feed the cat")])
        .await;

    let response = app
        .htmx(Method::POST, "/todos", &[("text", "Walk the dog")])
        .await;

    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert!(headers["vary"].to_str().unwrap().contains("HX-Request"));
    // The page re-fetches the lists (and so the counts) on this trigger.
    assert_eq!(headers["hx-trigger"], "todos-changed");
    let html = response.text().await.unwrap();
    assert!(!html.contains("<html"), "a fragment, not a page: {html}");
    assert!(html.contains(r#"id="new-todo""#), "{html}");
    assert!(html.contains(r#"value="""#), "the input is cleared: {html}");
    // No item: the lists come whole from the re-fetch, so a re-fetch that
    // overtakes this answer cannot lead to the new item shown twice.
    assert!(!html.contains("Walk the dog"), "{html}");
    assert!(!html.contains("Feed the cat"), "{html}");
    assert_eq!(app.todo_count().await, 2);
}

/// 130 old open todos, 20 done, and one new open todo.
async fn seed_long_lists(app: &crate::helpers::TestApp) {
    sqlx::query(
        "insert into todos (id, text, done)
         select ('00000000-0000-7000-8000-' || lpad(n::text, 12, '0'))::uuid,
                'Old todo ' || n, n > 130
         from generate_series(1, 150) as n",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let newest = app.post_form("/todos", &[("text", "The newest one")]).await;
    assert_eq!(newest.status(), 303);
}

#[tokio::test]
async fn the_page_shows_the_newest_twenty_of_each_list_with_exact_counts_and_a_link_to_more() {
    let app = spawn_app().await;
    seed_long_lists(&app).await;

    let html = app.get("/").await.text().await.unwrap();

    assert!(
        html.contains(r#"<span data-test="open-count">131</span>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<span data-test="done-count">20</span>"#),
        "{html}"
    );
    assert_eq!(html.matches("data-todo-id=").count(), 20 + 20, "{html}");
    assert!(html.contains("The newest one"), "{html}");
    // The done list is whole: only the open list offers more.
    assert_eq!(html.matches(r#"data-test="more""#).count(), 1, "{html}");
    assert!(html.contains("and 111 older"), "{html}");
    assert!(
        html.contains(
            r##"<a href="/?show_open=40&amp;show_done=20" data-lengthens="show_open" data-test="show-more">Show 20 more</a>"##
        ),
        "{html}"
    );
    // What the page's re-fetch after a change sends along: the page's
    // lengths, beside the lists (no answer replaces them), raised by the
    // page's script when the link is clicked.
    assert!(
        html.contains(r##"hx-include="#live &gt; input.shown""##),
        "{html}"
    );
    assert!(
        html.contains(
            r#"hx-sync="this:queue last" hx-disinherit="*"><input class="shown" type="hidden" name="show_open" value="20">"#
        ),
        "{html}"
    );
    assert!(html.contains("lists-lengthened"), "{html}");
    let script = html
        .split_once(r#"<script src="/static/show-more-"#)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(name, _)| format!("/static/show-more-{name}"))
        .expect("the page loads its script");
    let script = app.get(&script).await.text().await.unwrap();
    for name in [
        "data-lengthens",
        "input.shown",
        "lists-lengthened",
        "htmx:abort",
    ] {
        assert!(script.contains(name), "{script}");
    }
}

#[tokio::test]
async fn asking_for_more_shows_more_of_that_list_in_the_page_and_the_fragment() {
    let app = spawn_app().await;
    seed_long_lists(&app).await;

    let page = app.get("/?show_open=40&show_done=20").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("data-todo-id=").count(), 40 + 20, "{html}");
    assert!(html.contains("and 91 older"), "{html}");
    // The page's lengths, which its re-fetches send along.
    assert!(
        html.contains(r#"<input class="shown" type="hidden" name="show_open" value="40">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"href="/?show_open=60&amp;show_done=20""#),
        "{html}"
    );

    // The re-fetch keeps the length it is asked for; past the end of the
    // list there is nothing more to offer.
    let fragment = app
        .get("/fragments/todo-lists?show_open=500&show_done=20")
        .await;
    assert_eq!(fragment.status(), 200);
    let html = fragment.text().await.unwrap();
    assert_eq!(html.matches("data-todo-id=").count(), 131 + 20, "{html}");
    assert!(!html.contains(r#"data-test="more""#), "{html}");
    assert!(html.contains("Old todo 1<"), "{html}");
    // The lengths are the page's, not the fragment's: a fragment that lands
    // late cannot shorten what the visitor asked for since.
    assert!(!html.contains(r#"class="shown""#), "{html}");
    // The counts are the same whatever the length shown.
    assert!(
        html.contains(r#"<span data-test="open-count">131</span>"#),
        "{html}"
    );
}

#[tokio::test]
async fn a_list_length_out_of_range_is_a_400_page_naming_it() {
    let app = spawn_app().await;

    for (path, name) in [
        ("/?show_open=0", "show_open"),
        ("/?show_done=501", "show_done"),
        ("/fragments/todo-lists?show_open=ten", "show_open"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        let html = response.text().await.unwrap();
        assert!(
            html.contains(&format!("`{name}` must be a whole number from 1 to 500")),
            "{path}: {html}"
        );
    }
}

#[tokio::test]
async fn a_141_character_todo_is_refused_and_nothing_is_stored_or_published() {
    let app = spawn_app().await;
    let text = "x".repeat(141);

    let plain = app.post_form("/todos", &[("text", &text)]).await;
    let htmx = app.htmx(Method::POST, "/todos", &[("text", &text)]).await;

    assert_eq!(plain.status(), 422);
    let page = plain.text().await.unwrap();
    assert!(page.contains("at most 140 characters"), "{page}");
    assert!(
        page.contains(&format!(r#"value="{text}""#)),
        "keeps the text: {page}"
    );
    assert_eq!(htmx.status(), 422);
    let fragment = htmx.text().await.unwrap();
    assert!(fragment.contains("at most 140 characters"), "{fragment}");
    assert!(
        fragment.contains(&format!(r#"value="{text}""#)),
        "{fragment}"
    );
    assert_eq!(app.todo_count().await, 0);
    assert_eq!(app.outbox_count().await, 0);
}

#[tokio::test]
async fn an_empty_todo_is_refused() {
    let app = spawn_app().await;

    let response = app.post_form("/todos", &[("text", "   ")]).await;

    assert_eq!(response.status(), 422);
    assert!(response.text().await.unwrap().contains("cannot be empty"));
    assert_eq!(app.todo_count().await, 0);
}

#[tokio::test]
async fn html_in_a_todo_is_shown_escaped() {
    let app = spawn_app().await;
    app.post_form("/todos", &[("text", "<script>alert('pwned')</script>")])
        .await;

    let page = app.get("/").await.text().await.unwrap();

    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("&lt;script&gt;alert"), "{page}");
}

#[tokio::test]
async fn marking_done_and_not_done_moves_the_todo_between_lists() {
    let app = spawn_app().await;
    let id = app.create_todo("Water plants").await;
    let path = format!("/todos/{id}");

    // The answer is the trigger on which the page re-fetches its lists.
    let done = app.htmx(Method::PUT, &path, &[("done", "true")]).await;
    assert_eq!(done.status(), 204);
    assert_eq!(done.headers()["hx-trigger"], "todos-changed");
    let lists = app.get("/fragments/todo-lists").await.text().await.unwrap();
    let done_section = lists.split(r#"id="done-todos""#).nth(1).unwrap();
    assert!(done_section.contains(&id.to_string()), "{lists}");

    let undone = app.htmx(Method::PUT, &path, &[("done", "false")]).await;
    assert_eq!(undone.status(), 204);
    let lists = app.get("/fragments/todo-lists").await.text().await.unwrap();
    let open_section = lists.split(r#"id="done-todos""#).next().unwrap();
    assert!(open_section.contains(&id.to_string()), "{lists}");

    let deleted = app.htmx(Method::DELETE, &path, &[]).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(deleted.headers()["hx-trigger"], "todos-changed");
    let lists = app.get("/fragments/todo-lists").await.text().await.unwrap();
    assert!(!lists.contains(&id.to_string()), "{lists}");
}

#[tokio::test]
async fn without_javascript_method_override_marks_done_and_deletes() {
    let app = spawn_app().await;
    let id = app.create_todo("Call mum").await;
    let path = format!("/todos/{id}");

    let done = app
        .post_form(&path, &[("_method", "put"), ("done", "true")])
        .await;
    assert_eq!(done.status(), 303);
    let is_done: bool = sqlx::query_scalar("select done from todos where id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(is_done);

    let deleted = app.post_form(&path, &[("_method", "delete")]).await;
    assert_eq!(deleted.status(), 303);
    assert_eq!(app.todo_count().await, 0);
}

#[tokio::test]
async fn an_unknown_todo_is_a_404_page_or_fragment() {
    let app = spawn_app().await;
    let missing = uuid::Uuid::now_v7();

    let plain = app
        .post_form(&format!("/todos/{missing}"), &[("_method", "delete")])
        .await;
    let htmx = app
        .htmx(Method::DELETE, &format!("/todos/{missing}"), &[])
        .await;
    let garbage = app.htmx(Method::DELETE, "/todos/not-a-uuid", &[]).await;

    assert_eq!(plain.status(), 404);
    assert!(plain.text().await.unwrap().contains("<html"));
    assert_eq!(htmx.status(), 404);
    let fragment = htmx.text().await.unwrap();
    assert!(fragment.contains(r#"id="todo-lists""#), "{fragment}");
    assert!(fragment.contains("No todo with that id"), "{fragment}");
    assert_eq!(garbage.status(), 404);
}

#[tokio::test]
async fn an_unknown_page_is_a_404() {
    let app = spawn_app().await;

    let response = app.get("/nope").await;

    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("Page not found"));
}

#[tokio::test]
async fn static_assets_are_cached_for_a_year() {
    let app = spawn_app().await;

    let response = app.get("/static/htmx-2.0.8.min.js").await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(response.text().await.unwrap().contains("htmx"));
}
