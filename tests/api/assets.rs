//! Issue 26 (point 7): the front end's files are served compressed (br, gzip) and
//! cacheable (immutable when content-hashed, else revalidated with a 304); pages are never
//! cached as immutable. The site is a small one built here, no front-end build needed.

use crate::common::{client, spawn_app_with, TestApp};
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use reqwest::StatusCode;
use std::io::{Read, Write};

const JS_HASH: &str = "jsjsjsjsjsjsjsjsjsjs-_";
const WASM_HASH: &str = "wasmwasmwasmwasmwasm01";
const CSS_HASH: &str = "csscsscsscsscsscsscs23";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A content-hashed front end as `cargo leptos build` lays it out, with `hash.txt` in it.
struct Site {
    dir: tempfile::TempDir,
    js: Vec<u8>,
    wasm: Vec<u8>,
    css: Vec<u8>,
    favicon: Vec<u8>,
}

fn site() -> Site {
    let dir = tempfile::tempdir().expect("temp dir");
    let pkg = dir.path().join("pkg");
    std::fs::create_dir(&pkg).expect("pkg dir");
    let js = "export function hydrate() { console.log('hydrated'); }\n"
        .repeat(200)
        .into_bytes();
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend((0..40_000u32).flat_map(|i| (i % 251).to_le_bytes()));
    let css = ".badge { color: #155724; }\n".repeat(300).into_bytes();
    let favicon = b"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><circle cx=\"8\" cy=\"8\" r=\"7\"/></svg>\n".repeat(5);
    std::fs::write(pkg.join(format!("graycast.{JS_HASH}.js")), &js).expect("js");
    std::fs::write(pkg.join(format!("graycast.{WASM_HASH}.wasm")), &wasm).expect("wasm");
    std::fs::write(pkg.join(format!("graycast.{CSS_HASH}.css")), &css).expect("css");
    std::fs::write(dir.path().join("favicon.svg"), &favicon).expect("favicon");
    std::fs::write(
        dir.path().join("hash.txt"),
        format!("js: {JS_HASH}\nwasm: {WASM_HASH}\ncss: {CSS_HASH}\n"),
    )
    .expect("hash file");
    Site {
        dir,
        js,
        wasm,
        css,
        favicon,
    }
}

async fn serve(site: &Site) -> TestApp {
    let root = site.dir.path().to_path_buf();
    spawn_app_with(move |c| c.site_root = root).await
}

fn decoded(encoding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "br" => brotli::Decompressor::new(body, 4096)
            .read_to_end(&mut out)
            .expect("a brotli body"),
        "gzip" => flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .expect("a gzip body"),
        other => panic!("unexpected encoding {other}"),
    };
    out
}

#[tokio::test]
async fn hashed_assets_are_compressed_and_immutable() {
    let site = site();
    let app = serve(&site).await;
    let files = [
        (
            format!("/pkg/graycast.{JS_HASH}.js"),
            &site.js,
            "javascript",
        ),
        (
            format!("/pkg/graycast.{WASM_HASH}.wasm"),
            &site.wasm,
            "application/wasm",
        ),
        (
            format!("/pkg/graycast.{CSS_HASH}.css"),
            &site.css,
            "text/css",
        ),
    ];
    for (path, original, content_type) in files {
        for encoding in ["br", "gzip"] {
            let response = client()
                .get(app.url(&path))
                .header(ACCEPT_ENCODING, encoding)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let headers = response.headers().clone();
            assert_eq!(headers[CONTENT_ENCODING], encoding, "{path}");
            assert_eq!(headers[VARY], "accept-encoding", "{path}");
            assert_eq!(headers[CACHE_CONTROL], IMMUTABLE, "{path}");
            assert!(
                headers[CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .contains(content_type),
                "{path}: {:?}",
                headers[CONTENT_TYPE]
            );
            let body = response.bytes().await.unwrap();
            assert!(
                body.len() < original.len() / 2,
                "{path} {encoding}: {} B",
                body.len()
            );
            assert_eq!(&decoded(encoding, &body), original, "{path} {encoding}");
        }
        // Brotli where both are accepted (browsers send both); as is where neither is.
        let both = client()
            .get(app.url(&path))
            .header(ACCEPT_ENCODING, "gzip, deflate, br, zstd")
            .send()
            .await
            .unwrap();
        assert_eq!(both.headers()[CONTENT_ENCODING], "br", "{path}");
        let plain = client().get(app.url(&path)).send().await.unwrap();
        assert_eq!(plain.status(), StatusCode::OK, "{path}");
        assert!(plain.headers().get(CONTENT_ENCODING).is_none(), "{path}");
        assert_eq!(plain.headers()[CACHE_CONTROL], IMMUTABLE, "{path}");
        assert_eq!(&plain.bytes().await.unwrap()[..], &original[..], "{path}");
    }
}

#[tokio::test]
async fn the_page_names_the_hashed_files_and_is_revalidated() {
    let site = site();
    let app = serve(&site).await;
    let page = app.admin.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let cache_control = page.headers()[CACHE_CONTROL].to_str().unwrap().to_string();
    assert!(cache_control.contains("no-cache"), "{cache_control}");
    assert!(cache_control.contains("private"), "{cache_control}");
    assert!(!cache_control.contains("immutable"), "{cache_control}");
    let html = page.text().await.unwrap();
    for name in [
        format!("/pkg/graycast.{JS_HASH}.js"),
        format!("/pkg/graycast.{WASM_HASH}.wasm"),
        format!("/pkg/graycast.{CSS_HASH}.css"),
    ] {
        assert!(html.contains(&name), "the page names {name}: {html}");
    }
    // The not-found page too.
    let missing = client().get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.headers()[CACHE_CONTROL], "private, no-cache");
}

#[tokio::test]
async fn unhashed_files_answer_304_while_unchanged() {
    let site = site();
    // A front end built without content hashes: its files must be checked before each use.
    std::fs::write(site.dir.path().join("pkg/graycast.js"), &site.js).unwrap();
    let app = serve(&site).await;
    let js = client()
        .get(app.url("/pkg/graycast.js"))
        .header(ACCEPT_ENCODING, "br")
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert_eq!(js.headers()[CACHE_CONTROL], "no-cache");
    let etag = js.headers()[ETAG].clone();
    let again = client()
        .get(app.url("/pkg/graycast.js"))
        .header(ACCEPT_ENCODING, "br")
        .header(IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[CACHE_CONTROL], "no-cache");
    assert!(again.bytes().await.unwrap().is_empty());

    // The favicon is kept a day, and revalidated after.
    let first = client()
        .get(app.url("/favicon.svg"))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()[CACHE_CONTROL], "public, max-age=86400");
    assert_eq!(first.headers()[CONTENT_ENCODING], "gzip");
    assert_eq!(first.headers()[CONTENT_TYPE], "image/svg+xml");
    let etag = first.headers()[ETAG].clone();
    assert_eq!(decoded("gzip", &first.bytes().await.unwrap()), site.favicon);

    let again = client()
        .get(app.url("/favicon.svg"))
        .header(ACCEPT_ENCODING, "gzip")
        .header(IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[ETAG], etag);
    assert!(again.bytes().await.unwrap().is_empty());

    let other = client()
        .get(app.url("/favicon.svg"))
        .header(IF_NONE_MATCH, "\"another\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(other.bytes().await.unwrap(), site.favicon);
}

#[tokio::test]
async fn the_builds_compressed_copies_are_served_as_they_are() {
    let site = site();
    // What `cargo leptos build --release --precompress` leaves beside each file.
    let wasm = site
        .dir
        .path()
        .join(format!("pkg/graycast.{WASM_HASH}.wasm"));
    let mut br = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut br, 4096, 11, 22);
        writer.write_all(&site.wasm).unwrap();
    }
    std::fs::write(wasm.with_extension("wasm.br"), &br).unwrap();
    let app = serve(&site).await;
    let response = client()
        .get(app.url(&format!("/pkg/graycast.{WASM_HASH}.wasm")))
        .header(ACCEPT_ENCODING, "br")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[CONTENT_ENCODING], "br");
    assert_eq!(response.bytes().await.unwrap(), br);
}
