//! The `sh -c` grammar the lab understands: statements split at `&&`, `||`,
//! `;` and newlines outside quotes, then `if` / `elif` / `else` / `fi`
//! blocks built from them. Parsing only; `shell.rs` runs the result.

#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Op {
    Always,
    And,
    Or,
}

/// Splits `a && b || c; d` at top level (outside quotes).
pub(super) fn split_script(script: &str) -> Vec<(Op, String)> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut op = Op::Always;
    let mut quote: Option<char> = None;
    let chars: Vec<char> = script.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (None, '&') if chars.get(i + 1) == Some(&'&') => {
                parts.push((op, std::mem::take(&mut current)));
                op = Op::And;
                i += 1;
            }
            (None, '|') if chars.get(i + 1) == Some(&'|') => {
                parts.push((op, std::mem::take(&mut current)));
                op = Op::Or;
                i += 1;
            }
            (None, ';' | '\n') => {
                parts.push((op, std::mem::take(&mut current)));
                op = Op::Always;
            }
            (None, c) => current.push(c),
        }
        i += 1;
    }
    parts.push((op, current));
    parts
        .into_iter()
        .filter(|(_, p)| !p.trim().is_empty())
        .collect()
}

/// Words of one simple command, and whether stdout / stderr are redirected away.
pub(super) fn parse_command(part: &str) -> Result<(Vec<String>, bool, bool), String> {
    let words = shell_words::split(part).map_err(|e| e.to_string())?;
    let (mut kept, mut no_out, mut no_err) = (Vec::new(), false, false);
    let mut it = words.into_iter().peekable();
    while let Some(word) = it.next() {
        match word.as_str() {
            ">/dev/null" | "1>/dev/null" => no_out = true,
            "2>/dev/null" => no_err = true,
            "2>&1" => no_err = no_out,
            "&>/dev/null" => {
                no_out = true;
                no_err = true;
            }
            ">" | "1>" | "2>" => {
                let target = it.next().unwrap_or_default();
                if target == "/dev/null" {
                    if word == "2>" {
                        no_err = true
                    } else {
                        no_out = true
                    }
                }
            }
            _ => kept.push(word),
        }
    }
    Ok((kept, no_out, no_err))
}

/// A parsed shell statement.
#[derive(Debug, PartialEq)]
pub(super) enum Node {
    Command(Op, String),
    If {
        op: Op,
        branches: Vec<(Vec<Node>, Vec<Node>)>,
        otherwise: Option<Vec<Node>>,
    },
}

impl Node {
    pub(super) fn op(&self) -> Op {
        match self {
            Node::Command(op, _) | Node::If { op, .. } => *op,
        }
    }
}

/// Builds `if` blocks out of the statements `split_script` found.
pub(super) struct Parser {
    parts: Vec<(Op, String)>,
    at: usize,
}

fn first_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    (&text[..end], text[end..].trim_start())
}

impl Parser {
    pub(super) fn new(parts: Vec<(Op, String)>) -> Self {
        Parser { parts, at: 0 }
    }

    fn peek_word(&self) -> Option<&str> {
        self.parts.get(self.at).map(|(_, text)| first_word(text).0)
    }

    /// Drops the leading keyword of the current statement; the rest (if any)
    /// is a command of its own.
    fn consume_keyword(&mut self) {
        let (_, text) = &self.parts[self.at];
        let rest = first_word(text).1.to_owned();
        if rest.is_empty() {
            self.at += 1;
        } else {
            self.parts[self.at] = (Op::Always, rest);
        }
    }

    pub(super) fn list(&mut self, stop: &[&str]) -> Result<Vec<Node>, String> {
        let mut nodes = Vec::new();
        while let Some(word) = self.peek_word() {
            if stop.contains(&word) {
                return Ok(nodes);
            }
            match word {
                "if" => {
                    let op = self.parts[self.at].0;
                    self.consume_keyword();
                    nodes.push(self.if_block(op)?);
                }
                "then" | "elif" | "else" | "fi" => return Err(format!("unexpected `{word}`")),
                _ => {
                    nodes.push(Node::Command(
                        self.parts[self.at].0,
                        self.parts[self.at].1.clone(),
                    ));
                    self.at += 1;
                }
            }
        }
        if stop.is_empty() {
            Ok(nodes)
        } else {
            Err(format!("expected `{}` before the end", stop.join("` or `")))
        }
    }

    fn if_block(&mut self, op: Op) -> Result<Node, String> {
        let mut branches = Vec::new();
        loop {
            let condition = self.list(&["then"])?;
            self.consume_keyword();
            let body = self.list(&["elif", "else", "fi"])?;
            branches.push((condition, body));
            match self.peek_word() {
                Some("elif") => self.consume_keyword(),
                Some("else") => {
                    self.consume_keyword();
                    let otherwise = self.list(&["fi"])?;
                    self.consume_keyword();
                    return Ok(Node::If {
                        op,
                        branches,
                        otherwise: Some(otherwise),
                    });
                }
                _ => {
                    self.consume_keyword();
                    return Ok(Node::If {
                        op,
                        branches,
                        otherwise: None,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_split_at_top_level_operators() {
        let parts =
            split_script("command -v curl >/dev/null 2>&1 && echo curl || echo 'a || b'; true");
        let ops: Vec<Op> = parts.iter().map(|(op, _)| *op).collect();
        assert_eq!(ops, [Op::Always, Op::And, Op::Or, Op::Always]);
        assert_eq!(parts[2].1.trim(), "echo 'a || b'");
        let (words, out, err) = parse_command(&parts[0].1).unwrap();
        assert_eq!(words, ["command", "-v", "curl"]);
        assert!(out && err);
    }

    #[test]
    fn if_blocks_parse_with_elif_and_else() {
        let script = "if command -v curl >/dev/null 2>&1; then echo curl; elif command -v wget >/dev/null 2>&1; then echo wget; else echo none; fi; echo after";
        let nodes = Parser::new(split_script(script)).list(&[]).unwrap();
        assert_eq!(nodes.len(), 2);
        let Node::If {
            branches,
            otherwise,
            ..
        } = &nodes[0]
        else {
            panic!("an if block")
        };
        assert_eq!(branches.len(), 2);
        assert_eq!(
            branches[1].1,
            vec![Node::Command(Op::Always, "echo wget".into())]
        );
        assert_eq!(
            otherwise.as_deref(),
            Some(&[Node::Command(Op::Always, "echo none".into())][..])
        );
        assert!(
            Parser::new(split_script("if true; then echo x"))
                .list(&[])
                .is_err()
        );
        assert!(Parser::new(split_script("fi")).list(&[]).is_err());
    }
}
