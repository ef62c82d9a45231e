//! The JSON API's bearer tokens: a set of named tokens, each read-only or
//! read-write, parsed from a file (`API_TOKENS_FILE`) or made from the one
//! `API_TOKEN`.
//!
//! The set keeps a SHA-256 digest of each token, never the token itself:
//! nothing can print what it does not hold, and every comparison is of 32
//! bytes, so its time says nothing about the tokens' lengths either.

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only.
    Read,
    /// Reads and writes.
    Write,
}

impl Access {
    /// Whether a token with this access may do what `needed` asks.
    pub fn allows(self, needed: Access) -> bool {
        self == Access::Write || needed == Access::Read
    }
}

/// A token's name: 1 to 64 of `a-z`, `0-9` and `-`. It says who made a
/// change, so it is safe to log; the token is not.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenName(String);

impl TokenName {
    pub const MAX_CHARS: usize = 64;

    fn parse(raw: &str) -> Option<Self> {
        let valid = (1..=Self::MAX_CHARS).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        valid.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of the token made from `API_TOKEN`.
const DEFAULT_NAME: &str = "default";

/// The fewest characters a token in the file may have: 32 random
/// characters are far beyond guessing, and a short one is a typo or a
/// placeholder more often than a choice.
pub const MIN_TOKEN_CHARS: usize = 32;

#[derive(Clone, PartialEq, Eq)]
struct Entry {
    name: TokenName,
    access: Access,
    digest: [u8; 32],
}

/// A set of named tokens with unique names and unique tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiTokens {
    entries: Vec<Entry>,
}

impl fmt::Debug for ApiTokens {
    /// Names and access only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|e| (&e.name.0, e.access)))
            .finish()
    }
}

/// Why a tokens file was refused: where, and what is wrong, in words that
/// never quote the line (any of its fields may be a token written in the
/// wrong place).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {problem}", file.display())]
pub struct TokensFileError {
    pub file: PathBuf,
    /// 1-based; 0 for a problem with the whole file.
    pub line: usize,
    pub problem: LineProblem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    #[error("expected `<name> <read|write> <token>`, found {0} fields")]
    Fields(usize),
    #[error("the name must be 1 to 64 of a-z, 0-9 and `-`")]
    Name,
    #[error("the access must be `read` or `write`")]
    Access,
    #[error("the token must be at least {MIN_TOKEN_CHARS} characters")]
    TooShort,
    #[error("the token must be printable ASCII")]
    TokenCharacters,
    #[error("the name is already used on line {0}")]
    DuplicateName(usize),
    #[error("the token is already used on line {0}")]
    DuplicateToken(usize),
    #[error("the file holds no tokens")]
    Empty,
}

impl ApiTokens {
    /// Parses a tokens file's text: one `<name> <read|write> <token>` per
    /// line, separated by spaces or tabs; blank lines and lines starting
    /// with `#` are skipped. `file` only names the file in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Self, TokensFileError> {
        let error = |line, problem| TokensFileError {
            file: file.to_owned(),
            line,
            problem,
        };
        let mut entries: Vec<(usize, Entry)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_ascii_whitespace().collect();
            let [name, access, token] = fields[..] else {
                return Err(error(number, LineProblem::Fields(fields.len())));
            };
            let name = TokenName::parse(name).ok_or_else(|| error(number, LineProblem::Name))?;
            let access = match access {
                "read" => Access::Read,
                "write" => Access::Write,
                _ => return Err(error(number, LineProblem::Access)),
            };
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(error(number, LineProblem::TokenCharacters));
            }
            if token.len() < MIN_TOKEN_CHARS {
                return Err(error(number, LineProblem::TooShort));
            }
            let digest = digest(token.as_bytes());
            for (earlier, entry) in &entries {
                if entry.name == name {
                    return Err(error(number, LineProblem::DuplicateName(*earlier)));
                }
                if entry.digest == digest {
                    return Err(error(number, LineProblem::DuplicateToken(*earlier)));
                }
            }
            entries.push((
                number,
                Entry {
                    name,
                    access,
                    digest,
                },
            ));
        }
        // A Secret mounted with the wrong key gives an empty file; taking
        // it would lock every client out, so it is refused like a typo.
        if entries.is_empty() {
            return Err(error(0, LineProblem::Empty));
        }
        Ok(Self {
            entries: entries.into_iter().map(|(_, entry)| entry).collect(),
        })
    }

    /// `API_TOKEN`: one read-write token named `default`, of any length
    /// (it predates the file and local set-ups use short ones).
    pub fn single(token: &SecretString) -> Self {
        Self {
            entries: vec![Entry {
                name: TokenName(DEFAULT_NAME.to_owned()),
                access: Access::Write,
                digest: digest(token.expose_secret().trim().as_bytes()),
            }],
        }
    }

    /// The name and access of the token `presented`, if it is one of the
    /// set. Compares against every token, in constant time each, and
    /// picks the match without branching, so the time taken says neither
    /// whether nor which token matched.
    pub fn find(&self, presented: &str) -> Option<(&TokenName, Access)> {
        let presented = digest(presented.as_bytes());
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, entry) in self.entries.iter().enumerate() {
            let matches = entry.digest.ct_eq(&presented);
            let i = u32::try_from(i).expect("fewer than 2^32 tokens");
            index.conditional_assign(&i, matches);
            found |= matches;
        }
        bool::from(found).then(|| {
            let entry = &self.entries[index as usize];
            (&entry.name, entry.access)
        })
    }

    /// The names, in file order, for logs.
    pub fn names(&self) -> impl Iterator<Item = &TokenName> {
        self.entries.iter().map(|entry| &entry.name)
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "alice-0123456789abcdef0123456789abcdef";
    const BOT: &str = "bot-0123456789abcdef0123456789abcdef-xyz";

    fn parse(text: &str) -> Result<ApiTokens, TokensFileError> {
        ApiTokens::parse(Path::new("/run/secrets/tokens"), text)
    }

    fn problem(text: &str) -> (usize, LineProblem) {
        let error = parse(text).unwrap_err();
        (error.line, error.problem)
    }

    #[test]
    fn a_file_of_named_tokens_with_comments_and_blank_lines_parses() {
        let tokens = parse(&format!(
            "# the API's tokens\n\nalice write {ALICE}\r\n  \t\n  ci-bot\tread   {BOT}  \n# end\n"
        ))
        .unwrap();

        let (name, access) = tokens.find(ALICE).unwrap();
        assert_eq!((name.as_str(), access), ("alice", Access::Write));
        let (name, access) = tokens.find(BOT).unwrap();
        assert_eq!((name.as_str(), access), ("ci-bot", Access::Read));
        assert!(tokens.find(&ALICE[1..]).is_none());
        assert!(tokens.find(&format!("{ALICE}x")).is_none());
        assert!(tokens.find("").is_none());
        assert_eq!(
            tokens.names().map(TokenName::as_str).collect::<Vec<_>>(),
            ["alice", "ci-bot"]
        );
    }

    #[test]
    fn each_bad_line_is_named_by_its_number_and_problem() {
        let cases = [
            ("alice write".to_owned(), 1, LineProblem::Fields(2)),
            (
                format!("alice write {ALICE} extra"),
                1,
                LineProblem::Fields(4),
            ),
            (format!("# c\nAlice write {ALICE}"), 2, LineProblem::Name),
            (format!("al_ice write {ALICE}"), 1, LineProblem::Name),
            (
                format!("{} write {ALICE}", "a".repeat(65)),
                1,
                LineProblem::Name,
            ),
            (format!("alice admin {ALICE}"), 1, LineProblem::Access),
            (format!("alice WRITE {ALICE}"), 1, LineProblem::Access),
            ("alice write short".to_owned(), 1, LineProblem::TooShort),
            (
                format!("alice write {}é", &ALICE[..32]),
                1,
                LineProblem::TokenCharacters,
            ),
            (
                format!("alice write {ALICE}\n\nalice read {BOT}"),
                3,
                LineProblem::DuplicateName(1),
            ),
            (
                format!("alice write {ALICE}\nbob read {ALICE}"),
                2,
                LineProblem::DuplicateToken(1),
            ),
            ("# nothing\n\n".to_owned(), 0, LineProblem::Empty),
        ];
        for (text, line, expected) in cases {
            assert_eq!(problem(&text), (line, expected), "{text:?}");
        }
        let longest = format!("{} write {ALICE}", "a".repeat(64));
        assert!(parse(&longest).is_ok());
    }

    #[test]
    fn errors_name_the_file_and_line_and_never_quote_the_line() {
        for text in [
            ALICE.to_owned(),
            format!("alice {ALICE} write"),
            format!("{ALICE} write alice"),
            format!("alice write {ALICE}\nbob write {ALICE}"),
        ] {
            let message = parse(&text).unwrap_err().to_string();
            assert!(message.starts_with("/run/secrets/tokens:"), "{message}");
            assert!(!message.contains(ALICE), "{message}");
            assert!(!message.contains("alice"), "{message}");
        }
    }

    #[test]
    fn the_single_token_is_a_writer_named_default() {
        let tokens = ApiTokens::single(&SecretString::from(" s3cret "));
        let (name, access) = tokens.find("s3cret").unwrap();
        assert_eq!((name.as_str(), access), ("default", Access::Write));
        assert!(tokens.find("s3cre").is_none());
    }

    #[test]
    fn debug_shows_names_and_access_only() {
        let tokens = parse(&format!("alice write {ALICE}")).unwrap();
        let debug = format!("{tokens:?}");
        assert!(
            debug.contains("alice") && !debug.contains(&ALICE[6..]),
            "{debug}"
        );
    }

    #[test]
    fn write_access_allows_reads_and_read_access_only_reads() {
        assert!(Access::Write.allows(Access::Write));
        assert!(Access::Write.allows(Access::Read));
        assert!(Access::Read.allows(Access::Read));
        assert!(!Access::Read.allows(Access::Write));
    }
}
