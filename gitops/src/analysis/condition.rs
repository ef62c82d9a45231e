//! The part of Argo Rollouts' condition language (expr-lang) that Docket's
//! AnalysisTemplates use, evaluated the same way.
//!
//! Grammar (precedence low to high):
//! ```text
//! or      := and ("||" and)*
//! and     := unary ("&&" unary)*
//! unary   := "!" unary | compare
//! compare := term (("==" | "!=" | "<" | "<=" | ">" | ">=") term)?
//! term    := number | "true" | "false" | "result" ("[" integer "]")?
//!          | ("len" | "isNaN") "(" or ")" | "(" or ")"
//! ```
//! `result` is the Prometheus provider's value: the list of the vector's
//! sample values. `||` and `&&` short-circuit, which is what makes
//! `len(result) > 0 && result[0] < 1` safe (and false) on an empty result;
//! an index out of range is an error, as in Argo Rollouts. Anything outside this
//! subset is a parse error, so a template using more fails loudly here
//! instead of being judged wrongly.

use anyhow::{Context, bail};

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    Bool(bool),
    Result,
    Index(usize),
    Len(Box<Expr>),
    IsNaN(Box<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(Box<Expr>, Op, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Number(f64),
    Bool(bool),
    List(Vec<f64>),
}

impl Expr {
    pub fn parse(text: &str) -> anyhow::Result<Expr> {
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, at: 0 };
        let expr = parser.or()?;
        if parser.at != parser.tokens.len() {
            bail!("unexpected `{}` in `{text}`", parser.tokens[parser.at]);
        }
        Ok(expr)
    }

    /// Evaluates to a boolean with `result` bound to the query's values.
    pub fn holds(&self, result: &[f64]) -> anyhow::Result<bool> {
        match self.eval(result)? {
            Value::Bool(b) => Ok(b),
            other => bail!("the condition evaluates to {other:?}, not a boolean"),
        }
    }

    fn eval(&self, result: &[f64]) -> anyhow::Result<Value> {
        let number = |e: &Expr| match e.eval(result)? {
            Value::Number(n) => Ok(n),
            other => bail!("expected a number, got {other:?}"),
        };
        let boolean = |e: &Expr| e.holds(result);
        Ok(match self {
            Expr::Number(n) => Value::Number(*n),
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Result => Value::List(result.to_vec()),
            Expr::Index(i) => {
                Value::Number(*result.get(*i).with_context(|| {
                    format!("result[{i}] is out of range (len {})", result.len())
                })?)
            }
            Expr::Len(inner) => match inner.eval(result)? {
                Value::List(list) => Value::Number(list.len() as f64),
                other => bail!("len() of {other:?}"),
            },
            Expr::IsNaN(inner) => Value::Bool(number(inner)?.is_nan()),
            Expr::Not(inner) => Value::Bool(!boolean(inner)?),
            Expr::And(a, b) => Value::Bool(boolean(a)? && boolean(b)?),
            Expr::Or(a, b) => Value::Bool(boolean(a)? || boolean(b)?),
            Expr::Compare(a, op, b) => {
                let (a, b) = (number(a)?, number(b)?);
                Value::Bool(match op {
                    Op::Eq => a == b,
                    Op::Ne => a != b,
                    Op::Lt => a < b,
                    Op::Le => a <= b,
                    Op::Gt => a > b,
                    Op::Ge => a >= b,
                })
            }
        })
    }
}

fn tokenize(text: &str) -> anyhow::Result<Vec<String>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["||", "&&", "==", "!=", "<=", ">="].contains(&two.as_str()) {
                tokens.push(two);
                i += 2;
            } else if "()[]!<>".contains(c) {
                tokens.push(c.to_string());
                i += 1;
            } else {
                bail!("unsupported character `{c}` in `{text}`");
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<String>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn next(&mut self) -> anyhow::Result<String> {
        let token = self
            .tokens
            .get(self.at)
            .cloned()
            .context("the condition ends too early")?;
        self.at += 1;
        Ok(token)
    }

    fn expect(&mut self, wanted: &str) -> anyhow::Result<()> {
        let token = self.next()?;
        if token != wanted {
            bail!("expected `{wanted}`, found `{token}`");
        }
        Ok(())
    }

    fn or(&mut self) -> anyhow::Result<Expr> {
        self.left_associative("||", Self::and, Expr::Or)
    }

    fn and(&mut self) -> anyhow::Result<Expr> {
        self.left_associative("&&", Self::unary, Expr::And)
    }

    /// `operand (op operand)*`, grouped from the left.
    fn left_associative(
        &mut self,
        op: &str,
        operand: fn(&mut Self) -> anyhow::Result<Expr>,
        join: fn(Box<Expr>, Box<Expr>) -> Expr,
    ) -> anyhow::Result<Expr> {
        let mut left = operand(self)?;
        while self.peek() == Some(op) {
            self.at += 1;
            left = join(Box::new(left), Box::new(operand(self)?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> anyhow::Result<Expr> {
        if self.peek() == Some("!") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.compare()
    }

    fn compare(&mut self) -> anyhow::Result<Expr> {
        let left = self.term()?;
        let op = match self.peek() {
            Some("==") => Op::Eq,
            Some("!=") => Op::Ne,
            Some("<") => Op::Lt,
            Some("<=") => Op::Le,
            Some(">") => Op::Gt,
            Some(">=") => Op::Ge,
            _ => return Ok(left),
        };
        self.at += 1;
        Ok(Expr::Compare(Box::new(left), op, Box::new(self.term()?)))
    }

    fn term(&mut self) -> anyhow::Result<Expr> {
        let token = self.next()?;
        match token.as_str() {
            "(" => {
                let inner = self.or()?;
                self.expect(")")?;
                Ok(inner)
            }
            "true" => Ok(Expr::Bool(true)),
            "false" => Ok(Expr::Bool(false)),
            "result" => {
                if self.peek() == Some("[") {
                    self.at += 1;
                    let index = self.next()?;
                    let index = index
                        .parse::<usize>()
                        .with_context(|| format!("result[{index}]: only whole-number indices"))?;
                    self.expect("]")?;
                    Ok(Expr::Index(index))
                } else {
                    Ok(Expr::Result)
                }
            }
            "len" | "isNaN" => {
                self.expect("(")?;
                let inner = Box::new(self.or()?);
                self.expect(")")?;
                Ok(if token == "len" {
                    Expr::Len(inner)
                } else {
                    Expr::IsNaN(inner)
                })
            }
            number if number.starts_with(|c: char| c.is_ascii_digit() || c == '.') => {
                Ok(Expr::Number(
                    number
                        .parse()
                        .with_context(|| format!("bad number `{number}`"))?,
                ))
            }
            other => bail!("`{other}` is outside the supported condition language"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUCCESS: &str = "len(result) > 0 && !isNaN(result[0]) && result[0] <= 0.05";
    const FAILURE: &str = "len(result) > 0 && !isNaN(result[0]) && result[0] > 0.05";

    fn holds(condition: &str, result: &[f64]) -> bool {
        Expr::parse(condition).unwrap().holds(result).unwrap()
    }

    #[test]
    fn the_templates_conditions_decide_as_argo_rollouts_would() {
        // No evidence meets neither condition: Inconclusive.
        assert!(!holds(SUCCESS, &[]) && !holds(FAILURE, &[]));
        assert!(!holds(SUCCESS, &[f64::NAN]) && !holds(FAILURE, &[f64::NAN]));
        assert!(holds(SUCCESS, &[0.05]) && !holds(FAILURE, &[0.05]));
        assert!(!holds(SUCCESS, &[0.3]) && holds(FAILURE, &[0.3]));
    }

    #[test]
    fn short_circuit_keeps_an_empty_result_from_being_indexed() {
        assert!(Expr::parse("result[0] < 1").unwrap().holds(&[]).is_err());
        assert!(holds("len(result) == 0 || result[0] < 1", &[]));
        assert!(!holds("len(result) > 0 && result[0] < 1", &[]));
    }

    #[test]
    fn precedence_and_parentheses() {
        assert!(holds("true || false && false", &[]));
        assert!(!holds("(true || false) && false", &[]));
        assert!(holds("!(result[0] >= 2) && result[1] != 2", &[1.0, 3.0]));
    }

    #[test]
    fn anything_outside_the_subset_is_refused() {
        for unsupported in [
            "result[0] + 1 > 2",
            "all(result, {# > 1})",
            "result[0] > 0.5 ?",
            "max(result) > 1",
        ] {
            assert!(Expr::parse(unsupported).is_err(), "{unsupported}");
        }
    }
}
