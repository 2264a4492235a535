//! The built front end (the site root: `pkg/` with the js, wasm and css, and the public
//! files), served from memory, compressed and cacheable.
//!
//! The files are listed at start; each is read at its first request and kept, as is and,
//! where that is smaller, brotli- and gzip-encoded: the build's own copies (`cargo leptos
//! build --release --precompress` writes `FILE.br` and `FILE.gz`), else encoded then, once, at
//! a fast setting. Nothing is compressed per request, and a server that serves no browser (the
//! tests) reads nothing. A file whose name carries its content hash (cargo-leptos `hash-files`:
//! `pkg/graycast.<hash>.wasm`) is cached for a year as immutable; another file of `pkg/` is
//! revalidated before each use (its `ETag` gets a 304 while unchanged), since the js, wasm and
//! page of one build must go together; a public file (the favicon) is cached for a day.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::sync::OnceCell;

/// The cache policy of a content-hashed file: a new build has new names.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The cache policy of an unhashed file of the front end: kept, but revalidated before each use.
pub const REVALIDATE: &str = "no-cache";
/// The cache policy of a public file (outside `pkg/`): rarely changed, not worth a request
/// per page.
pub const PUBLIC_FILE: &str = "public, max-age=86400";
/// The cache policy of a page: the signed-in user's, revalidated before each use.
pub const PAGE: &str = "private, no-cache";

/// Brotli quality and window of the encodings made here: fast enough for a debug build's
/// tens of megabytes; a release build brings its own quality-11 copies.
const BROTLI_QUALITY: u32 = 5;
const BROTLI_WINDOW: u32 = 22;

/// The site's files by URL path (`/pkg/graycast.<hash>.wasm`, `/favicon.svg`).
#[derive(Default)]
pub struct Assets {
    files: HashMap<String, File>,
}

struct File {
    path: PathBuf,
    in_pkg: bool,
    loaded: OnceCell<Asset>,
}

struct Asset {
    content_type: HeaderValue,
    cache_control: HeaderValue,
    etag: HeaderValue,
    identity: Bytes,
    br: Option<Bytes>,
    gzip: Option<Bytes>,
    /// Whether the answer depends on `Accept-Encoding` (`Vary`).
    compressible: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Encoding {
    Br,
    Gzip,
    Identity,
}

impl Assets {
    /// Lists the files under `site_root` (none when it is missing: the start-up warns then).
    /// Blocking: run it off the async threads.
    pub fn list(site_root: &Path) -> Self {
        let mut files = HashMap::new();
        let mut dirs = vec![site_root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let Some(url) = url_path(site_root, &path) else {
                    continue;
                };
                if url.ends_with(".br") || url.ends_with(".gz") {
                    continue;
                }
                let in_pkg = url.starts_with("/pkg/");
                files.insert(
                    url,
                    File {
                        path,
                        in_pkg,
                        loaded: OnceCell::new(),
                    },
                );
            }
        }
        Self { files }
    }

    /// The answer to a GET or HEAD of one of the files, or `None` when the request is not for
    /// one (or it cannot be read: logged).
    pub async fn respond(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Option<Response<Body>> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        let file = self.files.get(path)?;
        let asset = file
            .loaded
            .get_or_try_init(|| {
                let (path, in_pkg) = (file.path.clone(), file.in_pkg);
                async move {
                    tokio::task::spawn_blocking(move || Asset::read(&path, in_pkg))
                        .await
                        .map_err(std::io::Error::other)?
                }
            })
            .await
            .inspect_err(|e| {
                tracing::warn!(path = %file.path.display(), error = %e, "could not read a front-end file");
            })
            .ok()?;
        let mut response = Response::builder()
            .header(header::CACHE_CONTROL, asset.cache_control.clone())
            .header(header::ETAG, asset.etag.clone());
        if asset.compressible {
            response = response.header(header::VARY, "accept-encoding");
        }
        if not_modified(headers, &asset.etag) {
            return response
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .ok();
        }
        let accepted = headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (encoding, body) = match preferred_encoding(accepted, asset) {
            Encoding::Br => ("br", asset.br.clone()),
            Encoding::Gzip => ("gzip", asset.gzip.clone()),
            Encoding::Identity => ("", None),
        };
        if let Some(body) = body {
            response = response.header(header::CONTENT_ENCODING, encoding);
            return response
                .header(header::CONTENT_TYPE, asset.content_type.clone())
                .body(Body::from(body))
                .ok();
        }
        response
            .header(header::CONTENT_TYPE, asset.content_type.clone())
            .body(Body::from(asset.identity.clone()))
            .ok()
    }
}

impl Asset {
    fn read(path: &Path, in_pkg: bool) -> std::io::Result<Self> {
        let identity = Bytes::from(std::fs::read(path)?);
        let mime = mime_guess::from_path(path).first_or_octet_stream();
        let compressible = compressible(&mime);
        let (br, gzip) = if compressible {
            let sibling = |suffix: &str| {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                std::fs::read(name).ok()
            };
            let br = sibling(".br").map_or_else(|| brotli(&identity), Ok)?;
            let gzip = sibling(".gz").map_or_else(|| gzip(&identity), Ok)?;
            let smaller =
                |encoded: Vec<u8>| (encoded.len() < identity.len()).then(|| Bytes::from(encoded));
            (smaller(br), smaller(gzip))
        } else {
            (None, None)
        };
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let cache_control = match (in_pkg, content_hashed(name)) {
            (true, true) => IMMUTABLE,
            (true, false) => REVALIDATE,
            (false, _) => PUBLIC_FILE,
        };
        let etag = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(&identity);
            format!("W/\"{}\"", hex::encode(&digest[..12]))
        };
        Ok(Self {
            content_type: HeaderValue::from_str(mime.as_ref())
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            cache_control: HeaderValue::from_static(cache_control),
            etag: HeaderValue::from_str(&etag).expect("hex is a valid header value"),
            identity,
            br,
            gzip,
            compressible,
        })
    }
}

/// `/pkg/graycast.css` for `<site_root>/pkg/graycast.css`.
fn url_path(site_root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(site_root).ok()?;
    let mut url = String::new();
    for part in relative.components() {
        url.push('/');
        url.push_str(part.as_os_str().to_str()?);
    }
    Some(url)
}

/// Text, scripts, WebAssembly and SVG shrink; images and fonts are compressed already.
fn compressible(mime: &mime_guess::Mime) -> bool {
    mime.type_() == mime_guess::mime::TEXT
        || matches!(
            mime.subtype().as_str(),
            "javascript" | "json" | "wasm" | "xml" | "svg"
        )
}

/// cargo-leptos names a hashed file `stem.<hash>.ext`, the hash being an MD5 digest in
/// unpadded base64url (22 characters).
fn content_hashed(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 3
        && parts[1..parts.len() - 1].iter().any(|part| {
            part.len() == 22
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Whether `If-None-Match` names this version (weak comparison, as for GET).
fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.to_str().unwrap_or("").trim_start_matches("W/");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours)
}

/// The best encoding the client accepts and the file has: the highest `q`, brotli on a tie.
fn preferred_encoding(accept_encoding: &str, asset: &Asset) -> Encoding {
    let mut any = None;
    let (mut br, mut gzip) = (None, None);
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match coding.as_str() {
            "br" => br = Some(q),
            "gzip" | "x-gzip" => gzip = Some(q),
            "*" => any = Some(q),
            _ => {}
        }
    }
    let br = br.or(any).filter(|_| asset.br.is_some()).unwrap_or(0.0);
    let gzip = gzip.or(any).filter(|_| asset.gzip.is_some()).unwrap_or(0.0);
    if br > 0.0 && br >= gzip {
        Encoding::Br
    } else if gzip > 0.0 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

fn brotli(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() / 3);
    {
        let mut writer =
            brotli::CompressorWriter::new(&mut out, 64 * 1024, BROTLI_QUALITY, BROTLI_WINDOW);
        writer.write_all(data)?;
    }
    Ok(out)
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 3),
        flate2::Compression::default(),
    );
    encoder.write_all(data)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset() -> Asset {
        Asset {
            content_type: HeaderValue::from_static("application/wasm"),
            cache_control: HeaderValue::from_static(IMMUTABLE),
            etag: HeaderValue::from_static("W/\"abc\""),
            identity: Bytes::from_static(b"0123456789"),
            br: Some(Bytes::from_static(b"b")),
            gzip: Some(Bytes::from_static(b"g")),
            compressible: true,
        }
    }

    #[test]
    fn the_best_accepted_encoding_is_chosen() {
        let a = asset();
        assert_eq!(
            preferred_encoding("gzip, deflate, br, zstd", &a),
            Encoding::Br
        );
        assert_eq!(preferred_encoding("gzip", &a), Encoding::Gzip);
        assert_eq!(preferred_encoding("br;q=0.5, gzip", &a), Encoding::Gzip);
        assert_eq!(preferred_encoding("br;q=0, *", &a), Encoding::Gzip);
        assert_eq!(preferred_encoding("*", &a), Encoding::Br);
        assert_eq!(preferred_encoding("", &a), Encoding::Identity);
        assert_eq!(preferred_encoding("identity", &a), Encoding::Identity);
        let plain = Asset {
            br: None,
            ..asset()
        };
        assert_eq!(preferred_encoding("br", &plain), Encoding::Identity);
        assert_eq!(preferred_encoding("br, gzip;q=0.1", &plain), Encoding::Gzip);
    }

    #[test]
    fn only_cargo_leptos_hashed_names_are_content_hashed() {
        assert!(content_hashed("graycast.Ab-_0123456789abcdefgh.wasm"));
        assert!(content_hashed("__wasm_split.Ab-_0123456789abcdefgh.js"));
        assert!(!content_hashed("graycast.wasm"));
        assert!(!content_hashed("favicon.svg"));
        assert!(!content_hashed("Ab-_0123456789abcdefgh.wasm"));
        assert!(!content_hashed("graycast.Ab-_0123456789abcdefg.wasm"));
    }

    #[test]
    fn a_matching_validator_is_not_modified() {
        let etag = HeaderValue::from_static("W/\"abc\"");
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static(value));
            not_modified(&headers, &etag)
        };
        assert!(with("W/\"abc\""));
        assert!(with("\"abc\""));
        assert!(with("\"x\", W/\"abc\""));
        assert!(with("*"));
        assert!(!with("\"abd\""));
        assert!(!not_modified(&HeaderMap::new(), &etag));
    }
}
