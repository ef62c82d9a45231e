//! Events of one todo reach the receiver in the order they happened.

use std::time::Duration;

use events::EventType;
use uuid::Uuid;

use crate::helpers::{Broadcaster, PrivateNats, Receiver, Reply, event};

#[tokio::test]
async fn each_event_of_a_todo_is_sent_only_after_the_previous_one_was_accepted() {
    // Arrange: every answer takes 200 ms, so overlapping sends would show.
    let nats = PrivateNats::start().await;
    let receiver = Receiver::start(|_| Reply::Slow(Duration::from_millis(200))).await;
    let _broadcaster = Broadcaster::forwarding(&nats.url(), &receiver.url, &[]).await;
    let todos: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    let steps = [
        (EventType::Created, false),
        (EventType::Updated, true),
        (EventType::Updated, false),
        (EventType::Deleted, false),
    ];

    // Act: the four steps of four todos, interleaved, published back to back.
    let mut published = Vec::new();
    for (kind, done) in steps {
        for todo in &todos {
            let event = event(kind, *todo, "Walk the dog", done);
            nats.publish(&event).await;
            published.push(event);
        }
    }

    // Assert
    nats.wait_until_drained(Duration::from_secs(30)).await;
    let seen = receiver.seen();
    assert_eq!(seen.len(), 16);
    for todo in &todos {
        let expected: Vec<String> = published
            .iter()
            .filter(|e| e.todo.id == *todo)
            .map(|e| e.id.to_string())
            .collect();
        let arrivals: Vec<_> = seen.iter().filter(|s| expected.contains(&s.key)).collect();
        let order: Vec<String> = arrivals.iter().map(|s| s.key.clone()).collect();
        assert_eq!(order, expected, "todo {todo}: events out of order");
        for pair in arrivals.windows(2) {
            let gap = pair[1].at - pair[0].at;
            assert!(
                gap >= Duration::from_millis(200),
                "todo {todo}: sent {gap:?} after the previous, before its answer"
            );
        }
    }
    // Different todos did not wait for each other: 16 sends of 200 ms took
    // far less than 16 x 200 ms.
    let span = seen.last().unwrap().at - seen.first().unwrap().at;
    assert!(
        span < Duration::from_millis(16 * 200),
        "took {span:?}: todos were serialised"
    );
}
