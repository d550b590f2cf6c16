//! Reply lines and whole replies ([`ReplyLine`], [`Reply`]), and the
//! `Assembler` that the reader thread feeds line by line: `NNN-` mid lines,
//! `NNN+` data blocks ending in `.`, the `NNN ` end line. A line that is no
//! reply line is logged and skipped rather than ending the connection.

/// One line of a reply, with its data block if it had one (`250+`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    /// The status code.
    pub code: u16,
    /// The text after the code and separator.
    pub text: String,
    /// The data block's lines, dot-unescaped; empty for `-` and ` ` lines.
    pub data: Vec<String>,
}

/// A whole reply or asynchronous message: its last line ends with `NNN `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The lines in order; never empty.
    pub lines: Vec<ReplyLine>,
}

impl Reply {
    /// The status code of the last line.
    pub fn code(&self) -> u16 {
        self.lines.last().map_or(0, |l| l.code)
    }

    /// Whether the status is 2xx.
    pub fn is_ok(&self) -> bool {
        (200..300).contains(&self.code())
    }

    /// The text of the last line (`OK`, or Tor's error message).
    pub fn message(&self) -> &str {
        self.lines.last().map_or("", |l| l.text.as_str())
    }
}

/// Assembles reply lines into whole replies.
#[derive(Debug, Default)]
pub(super) struct Assembler {
    lines: Vec<ReplyLine>,
    in_data: bool,
}

impl Assembler {
    /// Takes one line without its CRLF; returns a reply once it is whole.
    pub(super) fn push(&mut self, line: &str) -> Option<Reply> {
        if self.in_data {
            self.push_data(line);
            return None;
        }
        let Some((code, sep, text)) = split_status(line) else {
            log::warn!("tor control: skipping a line that is not a reply: {line:?}");
            return None;
        };
        self.lines.push(ReplyLine {
            code,
            text: text.to_owned(),
            data: Vec::new(),
        });
        match sep {
            '+' => {
                self.in_data = true;
                None
            }
            '-' => None,
            _ => Some(Reply {
                lines: std::mem::take(&mut self.lines),
            }),
        }
    }

    fn push_data(&mut self, line: &str) {
        if line == "." {
            self.in_data = false;
            return;
        }
        let line = line.strip_prefix('.').unwrap_or(line);
        if let Some(last) = self.lines.last_mut() {
            last.data.push(line.to_owned());
        }
    }
}

/// Splits `NNN<sep>text`; `None` if the line is not a reply line.
fn split_status(line: &str) -> Option<(u16, char, &str)> {
    let code = line.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sep = line[3..].chars().next().unwrap_or(' ');
    if !matches!(sep, ' ' | '-' | '+') {
        return None;
    }
    let text = line.get(4..).unwrap_or("");
    Some((code.parse().ok()?, sep, text))
}
