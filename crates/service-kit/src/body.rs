//! Reading an HTTP answer's body no further than a limit, whatever its
//! `Content-Length` says (or whether it says anything): what a service
//! fetches from elsewhere must not decide how much memory it takes.

use bytes::{Bytes, BytesMut};

/// Why a body was not read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading the body: {0}")]
    Read(#[from] reqwest::Error),
}

/// The body of `response`, at most `limit` bytes: refused at once when
/// `Content-Length` is larger, and as soon as the chunks read pass it.
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
