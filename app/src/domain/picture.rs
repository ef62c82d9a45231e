//! A picture the page may show: an image of a known type, no larger than
//! [`Picture::MAX_BYTES`], whose bytes are what its content type claims.

use bytes::Bytes;

/// The image types the page shows; what browsers render everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageType {
    Jpeg,
    Png,
    Webp,
    Gif,
}

impl ImageType {
    /// The type a `Content-Type` value names (parameters and case ignored).
    pub fn from_content_type(value: &str) -> Option<ImageType> {
        let essence = value.split(';').next().unwrap_or("").trim();
        [Self::Jpeg, Self::Png, Self::Webp, Self::Gif]
            .into_iter()
            .find(|kind| essence.eq_ignore_ascii_case(kind.content_type()))
    }

    /// The type the bytes start like (their magic number).
    pub fn sniff(bytes: &[u8]) -> Option<ImageType> {
        match bytes {
            [0xFF, 0xD8, 0xFF, ..] => Some(Self::Jpeg),
            [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n', ..] => Some(Self::Png),
            [
                b'R',
                b'I',
                b'F',
                b'F',
                _,
                _,
                _,
                _,
                b'W',
                b'E',
                b'B',
                b'P',
                ..,
            ] => Some(Self::Webp),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(Self::Gif),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Gif => "image/gif",
        }
    }
}

/// Why fetched (or stored) bytes cannot be the picture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PictureError {
    #[error("larger than {} bytes", Picture::MAX_BYTES)]
    TooLarge,
    #[error("content type `{0}` is not image/jpeg, image/png, image/webp or image/gif")]
    NotAnImageType(String),
    #[error("no content type")]
    NoContentType,
    #[error("the bytes are not a {} image", .0.content_type())]
    BytesDoNotMatch(ImageType),
    #[error("the bytes are not an image of a known type")]
    UnknownBytes,
}

/// An image whose type is known from its own bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    kind: ImageType,
    bytes: Bytes,
}

impl Picture {
    /// More than a 1200 px photograph needs (Lorem Picsum's are 100–300 KiB),
    /// little enough that every replica can keep one in memory.
    pub const MAX_BYTES: usize = 5 * 1024 * 1024;

    /// An answer from the source: its declared type must be an image type
    /// and its bytes must start like that type.
    pub fn parse(content_type: Option<&str>, bytes: Bytes) -> Result<Picture, PictureError> {
        let declared = content_type.ok_or(PictureError::NoContentType)?;
        let kind = ImageType::from_content_type(declared)
            .ok_or_else(|| PictureError::NotAnImageType(declared.chars().take(64).collect()))?;
        let picture = Self::from_bytes(bytes)?;
        if picture.kind == kind {
            Ok(picture)
        } else {
            Err(PictureError::BytesDoNotMatch(kind))
        }
    }

    /// Bytes read back from the store: the type comes from the bytes alone.
    pub fn from_bytes(bytes: Bytes) -> Result<Picture, PictureError> {
        if bytes.len() > Self::MAX_BYTES {
            return Err(PictureError::TooLarge);
        }
        let kind = ImageType::sniff(&bytes).ok_or(PictureError::UnknownBytes)?;
        Ok(Picture { kind, bytes })
    }

    pub fn kind(&self) -> ImageType {
        self.kind
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF";

    #[test]
    fn an_image_whose_bytes_match_its_content_type_is_a_picture() {
        let picture = Picture::parse(Some("image/png"), Bytes::from_static(PNG)).unwrap();
        assert_eq!(picture.kind(), ImageType::Png);
        let jpeg = Picture::parse(Some("Image/JPEG; charset=binary"), Bytes::from_static(JPEG));
        assert_eq!(jpeg.unwrap().kind(), ImageType::Jpeg);
        for (bytes, kind) in [
            (&b"RIFF\x10\0\0\0WEBPVP8 "[..], ImageType::Webp),
            (b"GIF89a\x01\0", ImageType::Gif),
            (b"GIF87a\x01\0", ImageType::Gif),
        ] {
            assert_eq!(ImageType::sniff(bytes), Some(kind));
        }
    }

    #[test]
    fn a_page_or_a_mislabelled_file_is_refused() {
        let html = Bytes::from_static(b"<!doctype html><title>x</title>");
        assert_eq!(
            Picture::parse(Some("text/html; charset=utf-8"), html.clone()),
            Err(PictureError::NotAnImageType(
                "text/html; charset=utf-8".into()
            ))
        );
        assert_eq!(
            Picture::parse(Some("image/png"), html),
            Err(PictureError::UnknownBytes)
        );
        assert_eq!(
            Picture::parse(Some("image/jpeg"), Bytes::from_static(PNG)),
            Err(PictureError::BytesDoNotMatch(ImageType::Jpeg))
        );
        assert_eq!(
            Picture::parse(None, Bytes::from_static(PNG)),
            Err(PictureError::NoContentType)
        );
        assert_eq!(
            Picture::parse(Some("image/svg+xml"), Bytes::from_static(b"<svg/>")),
            Err(PictureError::NotAnImageType("image/svg+xml".into())),
            "SVG can carry script"
        );
    }

    #[test]
    fn more_than_the_limit_is_refused() {
        let mut big = PNG.to_vec();
        big.resize(Picture::MAX_BYTES + 1, 0);
        assert_eq!(
            Picture::parse(Some("image/png"), Bytes::from(big)),
            Err(PictureError::TooLarge)
        );
    }
}
