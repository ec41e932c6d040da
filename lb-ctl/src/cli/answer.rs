//! API answers as the agent sent them: `-o json` prints the very bytes,
//! re-indented (field order and fields this CLI does not know are kept);
//! tables parse them into the API's types.

use anyhow::Context as _;
use bytes::Bytes;
use hyper::Method;
use serde::{Serialize, de::DeserializeOwned};

use super::{Exit, Output};
use lb_api::client::{Client, ClientError, json_body};

/// A successful answer's JSON body.
#[derive(Clone, Debug)]
pub struct Answer(Bytes);

impl Answer {
    /// The typed form, for table output.
    pub fn typed<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_slice(&self.0)
            .context("the agent's answer has an unexpected shape (is it another lb version?)")
    }

    /// Prints the answer, pretty, on stdout.
    pub fn print_json(&self) {
        println!("{}", pretty(&self.0));
    }

    /// Prints the answer: as the agent sent it with `-o json`, else as
    /// `render` writes its typed form.
    pub fn show<T: DeserializeOwned>(
        &self,
        out: Output,
        render: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<Exit> {
        match out {
            Output::Json => self.print_json(),
            Output::Table => print!("{}", render(&self.typed()?)),
        }
        Ok(Exit::Ok)
    }

    /// The raw JSON text.
    pub fn raw(&self) -> &[u8] {
        &self.0
    }
}

pub async fn get(client: &Client, path: &str) -> Result<Answer, ClientError> {
    client.fetch(Method::GET, path, None).await.map(Answer)
}

pub async fn delete(client: &Client, path: &str) -> Result<Answer, ClientError> {
    client.fetch(Method::DELETE, path, None).await.map(Answer)
}

/// A POST without a body (`/v1/reload`, `/v1/teardown`).
pub async fn post_empty(client: &Client, path: &str) -> Result<Answer, ClientError> {
    client.fetch(Method::POST, path, None).await.map(Answer)
}

pub async fn post(
    client: &Client,
    path: &str,
    body: &impl Serialize,
) -> Result<Answer, ClientError> {
    let body = json_body(path, body)?;
    client
        .fetch(Method::POST, path, Some(body))
        .await
        .map(Answer)
}

pub async fn put(
    client: &Client,
    path: &str,
    body: &impl Serialize,
) -> Result<Answer, ClientError> {
    let body = json_body(path, body)?;
    client
        .fetch(Method::PUT, path, Some(body))
        .await
        .map(Answer)
}

/// Re-indents JSON text the way `serde_json::to_string_pretty` writes it
/// (two spaces, `"key": value`, `[]`/`{}` when empty) without parsing it into
/// a map, so keys keep their order. Text that is not JSON is returned as is.
pub fn pretty(json: &[u8]) -> String {
    if serde_json::from_slice::<serde::de::IgnoredAny>(json).is_err() {
        return String::from_utf8_lossy(json).into_owned();
    }
    let mut out = Vec::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.extend(std::iter::repeat_n(b' ', depth * 2));
    };
    let mut i = 0;
    while i < json.len() {
        let c = json[i];
        i += 1;
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            continue;
        }
        match c {
            b'"' => {
                in_string = true;
                out.push(c);
            }
            b'{' | b'[' => {
                out.push(c);
                let close = if c == b'{' { b'}' } else { b']' };
                let next = json[i..].iter().position(|b| !b.is_ascii_whitespace());
                if let Some(n) = next.filter(|n| json[i + n] == close) {
                    out.push(close);
                    i += n + 1;
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            b',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    // Only whole bytes of valid UTF-8 input were copied.
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_serde_json_pretty_and_keeps_key_order() {
        let compact = r#"{"zeta":1,"alpha":{"list":[1,{"a":"x,y:{z}"}],"empty":[],"none":{}},"s":"q\"[,]","u":"é","n":null}"#;
        let compact = compact.as_bytes();
        let expected = r#"{
  "zeta": 1,
  "alpha": {
    "list": [
      1,
      {
        "a": "x,y:{z}"
      }
    ],
    "empty": [],
    "none": {}
  },
  "s": "q\"[,]",
  "u": "é",
  "n": null
}"#;
        assert_eq!(pretty(compact), expected);
        // Same text as serde_json's own pretty printer, where order agrees.
        let v: serde_json::Value =
            serde_json::from_str(r#"{"a":[1,2,{"b":[]}],"c":{"d":"e"}}"#).unwrap();
        assert_eq!(
            pretty(serde_json::to_string(&v).unwrap().as_bytes()),
            serde_json::to_string_pretty(&v).unwrap()
        );
        assert_eq!(pretty(b" [ ] "), "[]");
        assert_eq!(pretty(b"not json"), "not json");
    }
}
