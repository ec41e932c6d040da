//! A strict decoder of chunked request bodies (RFC 9112 §7.1): chunk sizes
//! are 1 to 16 hex digits and nothing else before `;` or CRLF, every line
//! ends in CRLF (a bare LF or CR is refused), data is followed by CRLF, and
//! trailer lines are well-formed header lines within the head size limit.
//! The body is re-framed towards the server, so extensions and trailers
//! are read and dropped here; nothing ambiguous passes through.

use bytes::{Buf as _, Bytes, BytesMut};

/// What one step of decoding produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Body data, in order.
    Data(Bytes),
    /// The buffer is used up: read more.
    More,
    /// The last chunk and the trailers were read.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Size {
        n: u64,
        digits: u8,
    },
    Ext(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    /// The start of a trailer line, or of the final empty line.
    LineStart,
    Name,
    Value,
    LineLf,
    EndLf,
    Done,
}

/// The decoder's position in a chunked body.
#[derive(Debug)]
pub struct Decoder {
    state: State,
    /// Trailer bytes still allowed.
    trailer_room: usize,
}

impl Decoder {
    /// `max_trailers`: how many bytes of trailer lines are accepted.
    pub fn new(max_trailers: usize) -> Decoder {
        Decoder {
            state: State::Size { n: 0, digits: 0 },
            trailer_room: max_trailers,
        }
    }

    /// Decodes from the front of `buf`, consuming what it used.
    pub fn step(&mut self, buf: &mut BytesMut) -> Result<Step, &'static str> {
        loop {
            match self.state {
                State::Done => return Ok(Step::Done),
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let take = left.min(buf.len() as u64);
                    let data = buf.split_to(take as usize).freeze();
                    self.state = if take == left {
                        State::DataCr
                    } else {
                        State::Data(left - take)
                    };
                    return Ok(Step::Data(data));
                }
                _ => {}
            }
            let Some(&b) = buf.first() else {
                return Ok(Step::More);
            };
            buf.advance(1);
            self.state = self.next(b)?;
        }
    }

    /// The state after control byte `b`.
    fn next(&mut self, b: u8) -> Result<State, &'static str> {
        use State::*;
        Ok(match (self.state, b) {
            (Size { n, digits }, _) if b.is_ascii_hexdigit() => {
                if digits == 16 {
                    return Err("chunk size over 16 hex digits");
                }
                let v = (b as char).to_digit(16).unwrap_or(0);
                Size {
                    n: (n << 4) | u64::from(v),
                    digits: digits + 1,
                }
            }
            (Size { digits: 1.., n }, b';') => Ext(n),
            (Size { digits: 1.., n }, b'\r') => SizeLf(n),
            (Size { .. }, _) => return Err("invalid chunk size"),
            (Ext(n), b'\r') => SizeLf(n),
            (Ext(n), _) if is_text(b) => Ext(n),
            (Ext(_), _) => return Err("invalid chunk extension"),
            (SizeLf(0), b'\n') => LineStart,
            (SizeLf(n), b'\n') => Data(n),
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Size { n: 0, digits: 0 },
            (LineStart, b'\r') => EndLf,
            (LineStart | Name, _) if is_token(b) => self.trailer(Name)?,
            (Name, b':') => self.trailer(Value)?,
            (Value, b'\r') => LineLf,
            (Value, _) if is_text(b) => self.trailer(Value)?,
            (LineLf, b'\n') => LineStart,
            (EndLf, b'\n') => Done,
            _ => return Err("malformed chunked body"),
        })
    }

    /// Counts one trailer byte against the limit.
    fn trailer(&mut self, next: State) -> Result<State, &'static str> {
        self.trailer_room = self
            .trailer_room
            .checked_sub(1)
            .ok_or("trailers over proxy.max_header_size")?;
        Ok(next)
    }
}

/// A byte allowed in a field value or extension: HTAB, SP, visible, obs-text.
fn is_text(b: u8) -> bool {
    b == b'\t' || (b >= b' ' && b != 0x7f)
}

/// A `tchar` (RFC 9110 §5.6.2).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes all of `input` at once: the data, or the error.
    fn decode(input: &[u8]) -> Result<Vec<u8>, &'static str> {
        let mut d = Decoder::new(64);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match d.step(&mut buf)? {
                Step::Data(b) => out.extend_from_slice(&b),
                Step::More => return Err("incomplete"),
                Step::Done => return Ok(out),
            }
        }
    }

    #[test]
    fn valid_bodies_decode() {
        let ok: &[(&[u8], &[u8])] = &[
            (b"0\r\n\r\n", b""),
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", b"abcde"),
            (b"A\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n", b"0123456789"),
            (b"0000000000000001\r\nz\r\n0\r\n\r\n", b"z"),
        ];
        for (input, want) in ok {
            assert_eq!(
                decode(input).as_deref(),
                Ok(*want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn ambiguous_bodies_are_refused() {
        let bad: &[&[u8]] = &[
            b"5\nhello\r\n0\r\n\r\n",        // bare LF after the size
            b"5\r\nhello\n0\r\n\r\n",        // bare LF after the data
            b"5\r\nhelloX\r\n0\r\n\r\n",     // data longer than the size
            b" 5\r\nhello\r\n0\r\n\r\n",     // space before the size
            b"5 \r\nhello\r\n0\r\n\r\n",     // space after the size
            b"-5\r\nhello\r\n0\r\n\r\n",     // sign
            b"0x5\r\nhello\r\n0\r\n\r\n",    // prefix
            b"\r\nhello\r\n0\r\n\r\n",       // no size
            b"10000000000000000\r\n",        // 17 digits
            b"5;a\0b\r\nhello\r\n0\r\n\r\n", // NUL in an extension
            b"0\r\nX-T 1\r\n\r\n",           // trailer without colon
            b"0\r\n X-T: 1\r\n\r\n",         // folded trailer
            b"0\r\n\n",                      // bare LF at the end
            b"5\rhello\r\n0\r\n\r\n",        // bare CR
        ];
        for input in bad {
            let r = decode(input);
            assert!(
                r.is_err() && r != Err("incomplete"),
                "{:?} gave {r:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn trailers_over_the_limit_are_refused() {
        let mut input = b"0\r\nX: ".to_vec();
        input.extend(std::iter::repeat_n(b'a', 100));
        input.extend_from_slice(b"\r\n\r\n");
        assert_eq!(decode(&input), Err("trailers over proxy.max_header_size"));
    }

    #[test]
    fn data_split_across_reads_arrives_in_order() {
        let mut d = Decoder::new(64);
        let mut buf = BytesMut::from(&b"5\r\nhel"[..]);
        assert_eq!(d.step(&mut buf), Ok(Step::Data(Bytes::from_static(b"hel"))));
        assert_eq!(d.step(&mut buf), Ok(Step::More));
        buf.extend_from_slice(b"lo\r\n0\r\n\r\n");
        assert_eq!(d.step(&mut buf), Ok(Step::Data(Bytes::from_static(b"lo"))));
        assert_eq!(d.step(&mut buf), Ok(Step::Done));
    }
}
