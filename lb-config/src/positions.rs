//! Where every node of the YAML file sits: a path → line:col index built from
//! yaml-rust2's marked events, so errors found on `serde_yaml::Value`s (which carry
//! no positions) can still be reported as `file:line:col`.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One step from a node to a child.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// The value under this key of a mapping.
    Key(String),
    /// The element at this index of a sequence.
    Index(usize),
}

/// Path from the document root to a node, displayed as `pools.web.backends[0].weight`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct YamlPath(Vec<Segment>);

impl YamlPath {
    /// The document itself.
    pub fn root() -> Self {
        YamlPath(Vec::new())
    }

    /// The value of `key` in the mapping at this path.
    pub fn key(&self, key: &str) -> Self {
        self.child(Segment::Key(key.to_owned()))
    }

    /// Element `index` of the sequence at this path.
    pub fn index(&self, index: usize) -> Self {
        self.child(Segment::Index(index))
    }

    /// This path extended by one segment.
    pub fn child(&self, segment: Segment) -> Self {
        let mut v = self.0.clone();
        v.push(segment);
        YamlPath(v)
    }

    /// The enclosing node, `None` at the root.
    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(YamlPath(rest.to_vec()))
    }

    /// The segments, root first.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A 1-based line and column (columns count characters, as editors do).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    /// Start of the file: where problems without a better place are reported.
    pub const START: Pos = Pos { line: 1, col: 1 };

    fn from_marker(m: Marker) -> Self {
        // yaml-rust2 counts lines from 1 and columns from 0.
        Pos {
            line: m.line(),
            col: m.col() + 1,
        }
    }
}

/// Which part of a mapping entry a problem is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spot {
    /// The key itself (unknown keys, unsupported sections).
    Key,
    /// The value (wrong type, out of range, …).
    Value,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    value: Pos,
    key: Option<Pos>,
}

/// Positions of the nodes of the first document of a YAML text.
#[derive(Debug, Default)]
pub struct Positions {
    nodes: HashMap<YamlPath, Node>,
    /// Keys that occur twice in one mapping: (path of the second, its key position).
    duplicates: Vec<(YamlPath, Pos)>,
    /// The text's lines, to place a word inside a string value.
    lines: Vec<String>,
}

impl Positions {
    /// Indexes `text`. On a syntax error the index holds what came before it;
    /// lookups then fall back to the nearest indexed ancestor.
    pub fn index(text: &str) -> Self {
        let mut builder = Builder::default();
        // A syntax error is reported from serde_yaml's own parse; ignore it here.
        let _ = Parser::new_from_str(text).load(&mut builder, false);
        builder.positions.lines = text.lines().map(str::to_owned).collect();
        builder.positions
    }

    /// Where `word` is, which starts `offset` bytes into the string value at
    /// `path` (an ACL line, a rule), when that can be told: the value is
    /// plain or quoted and `word` is written there on its first line.
    /// Otherwise (escapes before it, a folded or block scalar) where the
    /// value starts.
    pub fn locate_word(&self, path: &YamlPath, offset: usize, word: &str) -> Pos {
        let start = self.locate(path, Spot::Value);
        let Some(line) = self.lines.get(start.line.wrapping_sub(1)) else {
            return start;
        };
        let Some((at, _)) = line.char_indices().nth(start.col - 1) else {
            return start;
        };
        let value = &line[at..];
        let quote = usize::from(value.starts_with(['"', '\'']));
        let body = &value[quote..];
        match (body.get(offset..), body.get(..offset)) {
            (Some(rest), Some(before)) if !word.is_empty() && rest.starts_with(word) => Pos {
                line: start.line,
                col: start.col + quote + before.chars().count(),
            },
            _ => start,
        }
    }

    /// Where to report a problem about `path`: its key or its value, or failing
    /// that the nearest ancestor that has a position (nodes reached through an
    /// alias or a merge key have none of their own).
    pub fn locate(&self, path: &YamlPath, spot: Spot) -> Pos {
        if let Some(n) = self.nodes.get(path) {
            return match spot {
                Spot::Key => n.key.unwrap_or(n.value),
                Spot::Value => n.value,
            };
        }
        let mut p = path.parent();
        while let Some(q) = p {
            if let Some(n) = self.nodes.get(&q) {
                return n.value;
            }
            p = q.parent();
        }
        Pos::START
    }

    /// The first key that appears twice in a mapping, if any.
    pub fn first_duplicate_key(&self) -> Option<(&YamlPath, Pos)> {
        self.duplicates.first().map(|(p, pos)| (p, *pos))
    }

    /// Paths whose last segment is `key` (used to place merge-key errors).
    pub fn find_key(&self, key: &str) -> Option<Pos> {
        self.nodes
            .iter()
            .filter(|(p, _)| matches!(p.segments().last(), Some(Segment::Key(k)) if k == key))
            .filter_map(|(_, n)| n.key)
            .min()
    }
}

/// An open collection while walking the events.
enum Frame {
    Map {
        path: Option<YamlPath>,
        /// The key whose value comes next, with its position.
        pending: Option<(String, Pos)>,
        seen: Vec<String>,
    },
    Seq {
        path: Option<YamlPath>,
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    positions: Positions,
}

/// What a node is, as far as placing it goes.
enum Role {
    /// A mapping key (recorded when its value arrives).
    Key,
    /// A node with this path (`None`: inside a complex key, not recorded) and key position.
    Node(Option<YamlPath>, Option<Pos>),
}

impl Builder {
    /// Works out the role of the node starting at `pos` and advances its parent.
    fn place(&mut self, pos: Pos) -> Role {
        let Some(top) = self.stack.last_mut() else {
            return Role::Node(Some(YamlPath::root()), None);
        };
        match top {
            Frame::Seq { path, next } => {
                let p = path.as_ref().map(|p| p.index(*next));
                *next += 1;
                Role::Node(p, None)
            }
            Frame::Map { path, pending, .. } => match pending.take() {
                Some((key, key_pos)) => {
                    Role::Node(path.as_ref().map(|p| p.key(&key)), Some(key_pos))
                }
                None => {
                    // A block mapping's start mark lies after its first key's colon;
                    // the first key is where the mapping visibly starts.
                    if let Some(n) = path.as_ref().and_then(|p| self.positions.nodes.get_mut(p)) {
                        n.value = n.value.min(pos);
                    }
                    Role::Key
                }
            },
        }
    }

    fn record(&mut self, path: &Option<YamlPath>, value: Pos, key: Option<Pos>) {
        if let Some(p) = path {
            self.positions
                .nodes
                .entry(p.clone())
                .or_insert(Node { value, key });
        }
    }

    fn on_key(&mut self, text: String, pos: Pos) {
        if let Some(Frame::Map {
            path,
            pending,
            seen,
        }) = self.stack.last_mut()
        {
            if let Some(p) = path {
                if seen.contains(&text) {
                    self.positions.duplicates.push((p.key(&text), pos));
                } else {
                    seen.push(text.clone());
                }
            }
            *pending = Some((text, pos));
        }
    }

    fn on_scalar(&mut self, text: String, empty_plain: bool, pos: Pos) {
        match self.place(pos) {
            Role::Key => self.on_key(text, pos),
            Role::Node(path, key) => {
                // An empty plain scalar (`key:` and nothing more) is marked at the
                // next token, often on a later line; its key is the better place.
                let value = if empty_plain { key.unwrap_or(pos) } else { pos };
                self.record(&path, value, key);
            }
        }
    }

    fn on_collection_start(&mut self, is_map: bool, pos: Pos) {
        let path = match self.place(pos) {
            Role::Key => {
                // A complex key (`? [a, b]`): nothing we look up lives under it.
                self.on_key("?".to_owned(), pos);
                None
            }
            Role::Node(path, key) => {
                self.record(&path, pos, key);
                path
            }
        };
        self.stack.push(if is_map {
            Frame::Map {
                path,
                pending: None,
                seen: Vec::new(),
            }
        } else {
            Frame::Seq { path, next: 0 }
        });
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Pos::from_marker(mark);
        match ev {
            Event::Scalar(text, style, ..) => {
                let empty_plain = text.is_empty() && style == TScalarStyle::Plain;
                self.on_scalar(text, empty_plain, pos);
            }
            Event::Alias(_) => self.on_scalar("*".to_owned(), false, pos),
            Event::MappingStart(..) => self.on_collection_start(true, pos),
            Event::SequenceStart(..) => self.on_collection_start(false, pos),
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &[&str]) -> YamlPath {
        s.iter()
            .fold(YamlPath::root(), |p, seg| match seg.parse::<usize>() {
                Ok(i) => p.index(i),
                Err(_) => p.key(seg),
            })
    }

    #[test]
    fn nodes_are_placed() {
        let text = "# c\nvips:\n  - name: web\n    backends:\n      - {address: 1.2.3.4, weight: 2}\n      - address: x\n        empty:\n";
        let p = Positions::index(text);
        let cases: &[(&[&str], Spot, (usize, usize))] = &[
            (&["vips"], Spot::Key, (2, 1)),
            (&["vips"], Spot::Value, (3, 3)),
            // A block mapping starts at its first key.
            (&["vips", "0"], Spot::Value, (3, 5)),
            (&["vips", "0", "name"], Spot::Key, (3, 5)),
            (&["vips", "0", "name"], Spot::Value, (3, 11)),
            (&["vips", "0", "backends", "0"], Spot::Value, (5, 9)),
            (
                &["vips", "0", "backends", "0", "weight"],
                Spot::Value,
                (5, 36),
            ),
            (&["vips", "0", "backends", "1"], Spot::Value, (6, 9)),
            // An empty value is placed at its key, not at the next token.
            (
                &["vips", "0", "backends", "1", "empty"],
                Spot::Value,
                (7, 9),
            ),
            // Unknown paths fall back to the nearest known ancestor.
            (
                &["vips", "0", "backends", "1", "nope", "0"],
                Spot::Key,
                (6, 9),
            ),
            // … ultimately the document, which starts at its first key.
            (&["nothing"], Spot::Value, (2, 1)),
        ];
        for (segs, spot, (line, col)) in cases {
            let got = p.locate(&path(segs), *spot);
            assert_eq!((got.line, got.col), (*line, *col), "{segs:?} {spot:?}");
        }
    }

    #[test]
    fn duplicate_keys_are_found() {
        let p = Positions::index("a: 1\nb:\n  c: 1\n  c: 2\n");
        let (at, pos) = p.first_duplicate_key().expect("duplicate");
        assert_eq!(
            (at.to_string(), pos),
            ("b.c".to_owned(), Pos { line: 4, col: 3 })
        );
    }

    #[test]
    fn paths_display_like_accessors() {
        assert_eq!(
            path(&["vips", "1", "backends", "0", "weight"]).to_string(),
            "vips[1].backends[0].weight"
        );
        assert_eq!(YamlPath::root().to_string(), "");
    }
}
