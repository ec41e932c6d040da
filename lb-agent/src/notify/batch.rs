//! Batching: a burst of events goes out as one mail or one POST. The first
//! event opens a window; every event that arrives within it joins, up to a
//! maximum, in the order published. A longer burst is split, each part
//! waiting its own window, so a flapping backend cannot flood an inbox.

use std::time::Duration;

use tokio::time::{Instant, timeout_at};

use super::queue::Queue;

/// Waits for the next event, then takes those that arrive within `window`
/// of it (or were already waiting), `max` at most.
pub async fn next<T>(queue: &Queue<T>, window: Duration, max: usize) -> Vec<T> {
    let first = queue.pop().await;
    let deadline = Instant::now() + window;
    let mut batch = vec![first];
    while batch.len() < max {
        match timeout_at(deadline, queue.pop()).await {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const WINDOW: Duration = Duration::from_secs(2);

    #[tokio::test(start_paused = true)]
    async fn events_within_the_window_go_together_in_order() {
        let q = Arc::new(Queue::new(100));
        q.push(1);
        let feeder = tokio::spawn({
            let q = q.clone();
            async move {
                for i in 2..=4 {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    q.push(i);
                }
                // After the window: the next batch.
                tokio::time::sleep(Duration::from_secs(2)).await;
                q.push(5);
            }
        });
        let start = Instant::now();
        assert_eq!(next(&q, WINDOW, 10).await, [1, 2, 3, 4]);
        assert_eq!(start.elapsed(), WINDOW);
        assert_eq!(next(&q, WINDOW, 10).await, [5]);
        feeder.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_burst_is_split_at_the_maximum() {
        let q = Queue::new(100);
        for i in 0..25 {
            q.push(i);
        }
        let start = Instant::now();
        let first = next(&q, WINDOW, 10).await;
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        assert_eq!(start.elapsed(), Duration::ZERO, "a full batch goes at once");
        assert_eq!(next(&q, WINDOW, 10).await, (10..20).collect::<Vec<_>>());
        assert_eq!(next(&q, WINDOW, 10).await, (20..25).collect::<Vec<_>>());
        assert_eq!(start.elapsed(), WINDOW, "the rest waited its window");
    }
}
