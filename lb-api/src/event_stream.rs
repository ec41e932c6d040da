//! The lines of `GET /v1/events` (see [`crate::paths::EventsQuery`]): one
//! JSON object each, an [`Event`], or a [`Lagged`] marker where a follower
//! lost events.

use serde::{Deserialize, Serialize};

use crate::events::Event;

/// In a followed stream, in place of events the reader lost by falling
/// behind: `{"type":"lagged","missed":N}`. The events after it follow on
/// (their `seq` shows the gap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "lagged")]
pub struct Lagged {
    pub missed: u64,
}

/// One line of the stream, as a reader sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Line {
    Event(Event),
    Lagged(Lagged),
    /// A line this version does not know (an event type added later).
    Other(serde_json::Value),
}

impl Line {
    /// Reads one line; `None` when it is not JSON at all.
    pub fn parse(text: &str) -> Option<Line> {
        serde_json::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventKind;

    #[test]
    fn lines_of_each_kind() {
        let lagged = serde_json::to_string(&Lagged { missed: 7 }).unwrap();
        assert_eq!(lagged, r#"{"type":"lagged","missed":7}"#);
        assert_eq!(
            Line::parse(&lagged),
            Some(Line::Lagged(Lagged { missed: 7 }))
        );

        let event = Event {
            seq: 3,
            time_ms: 1_700_000_000_000,
            kind: EventKind::PoolRemoved { pool: "web".into() },
        };
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(Line::parse(&text), Some(Line::Event(event)));

        let newer = r#"{"seq":4,"time_ms":1,"type":"vrrp_master"}"#;
        assert!(matches!(Line::parse(newer), Some(Line::Other(v)) if v["type"] == "vrrp_master"));
        assert_eq!(Line::parse("not json"), None);
    }
}
