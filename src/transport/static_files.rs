//! Static files over plain HTTP: serves `web.static_dir` under the URL prefix `web.static_mount`
//! (GET and HEAD only), so the official web app can be loaded from the chat server itself and
//! then talks to it on the page's own host and port.
//!
//! Resolution is pure path work plus metadata calls (`canonicalize`, `metadata`), answered from
//! the kernel's dentry cache: a percent-decoded path whose segments are never `..`, joined to the
//! canonical root, canonicalized again and required to stay under the root, so neither `..` nor
//! a symlink can reach outside it. `/` and directory paths give `index.html`; a directory named
//! without its trailing slash is redirected to it (relative links in the page then resolve).
//! File contents are read with glommio's io_uring `BufferedFile` in 64 KiB chunks and streamed
//! to the socket, so a large file never blocks the executor. Every answer closes the
//! connection, like the other plain-HTTP answers of `transport`.
//!
//! Paths under `/v0/` are never static: that prefix belongs to the protocol endpoints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::AsyncWriteExt;
use glommio::io::BufferedFile;
use glommio::net::TcpStream;

use crate::config::WebConfig;
use crate::shard::now;
use crate::transport::http::{ctrl_body, respond, RequestHead};

/// Bytes read from a file per io_uring read and written per socket write.
const CHUNK: usize = 64 << 10;

/// A client that accepts no bytes for this long is dropped mid-file.
const WRITE_STALL: Duration = Duration::from_secs(30);

/// Whether a request path is for the static mount (static serving enabled, under the mount,
/// and not a protocol path).
pub fn mounted(web: &WebConfig, path: &str) -> bool {
    let reserved = path == "/v0" || path.starts_with("/v0/");
    let enabled = !web.static_dir.as_os_str().is_empty();
    enabled && !reserved && under_mount(&web.static_mount, path).is_some()
}

/// The part of `path` below `mount`, without its leading `/`; `Some("")` for the mount itself
/// with a trailing slash. `None` when `path` is not under the mount. The mount without its
/// trailing slash (`/app` for mount `/app/`) gives `Some` of the marker [`BARE_MOUNT`].
fn under_mount<'a>(mount: &str, path: &'a str) -> Option<&'a str> {
    let m = mount.trim_end_matches('/');
    let rest = path.strip_prefix(m)?;
    if rest.is_empty() {
        return Some(BARE_MOUNT);
    }
    rest.strip_prefix('/')
}

/// Returned by [`under_mount`] for the mount path without its trailing slash.
const BARE_MOUNT: &str = "\0";

/// What a request path resolves to.
#[derive(Debug, PartialEq, Eq)]
enum Resolved {
    /// A regular file inside the root (canonical path) and its length.
    File(PathBuf, u64),
    /// Add a trailing slash: a directory named without one, or the bare mount.
    Redirect,
    /// Missing, outside the root, not a regular file, or a refused path.
    NotFound,
}

/// Percent-decodes a URL path (`+` stays `+`). `None` for a malformed escape, a NUL byte, or a
/// result that is not UTF-8.
fn decode_path(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return None;
    }
    String::from_utf8(out).ok()
}

/// Resolves the part of a request path below the mount (`rest`, still percent-encoded) against
/// `root`, which must already be canonical.
fn resolve(root: &Path, rest: &str) -> Resolved {
    if rest == BARE_MOUNT {
        return Resolved::Redirect;
    }
    let Some(decoded) = decode_path(rest) else {
        return Resolved::NotFound;
    };
    let mut rel = PathBuf::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Resolved::NotFound,
            s if s.contains('\\') => return Resolved::NotFound,
            s => rel.push(s),
        }
    }
    let want_index = decoded.is_empty() || decoded.ends_with('/');
    let mut candidate = root.join(&rel);
    if want_index {
        candidate.push("index.html");
    }
    let Ok(canonical) = std::fs::canonicalize(&candidate) else {
        return Resolved::NotFound;
    };
    if !canonical.starts_with(root) {
        log::debug!(
            "static: {} resolves outside {}",
            candidate.display(),
            root.display()
        );
        return Resolved::NotFound;
    }
    match std::fs::metadata(&canonical) {
        Ok(m) if m.is_file() => Resolved::File(canonical, m.len()),
        Ok(m) if m.is_dir() && !want_index => Resolved::Redirect,
        _ => Resolved::NotFound,
    }
}

/// The `Content-Type` for a file name, by extension.
fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "m4a" => "audio/mp4",
        _ => "application/octet-stream",
    }
}

/// `Cache-Control` for a file: pages, manifests and the service worker are revalidated on
/// every load (they name the other files), everything else may be reused for ten minutes.
fn cache_control(path: &Path) -> &'static str {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(ext, "html" | "htm" | "webmanifest") || name == "service-worker.js" {
        "no-cache"
    } else {
        "public, max-age=600"
    }
}

/// Answers one request under the static mount and closes the connection.
pub async fn serve(stream: &mut TcpStream, head: &RequestHead, web: &WebConfig) {
    let _ = stream.set_write_timeout(Some(WRITE_STALL));
    let is_head = match head.method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let body = ctrl_body(405, "method not allowed", now());
            let out = format!(
                "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Type: application/json\r\nContent-Length: {}\r\nCache-Control: no-cache, no-store, must-revalidate\r\nConnection: close\r\n\r\n",
                body.len()
            );
            return finish(stream, out.into_bytes(), body.as_bytes()).await;
        }
    };
    let rest = under_mount(&web.static_mount, &head.path).unwrap_or("");
    let resolved = match std::fs::canonicalize(&web.static_dir) {
        Ok(root) => resolve(&root, rest),
        Err(e) => {
            log::warn!("static: web.static_dir {}: {e}", web.static_dir.display());
            Resolved::NotFound
        }
    };
    match resolved {
        Resolved::NotFound => {
            let body = ctrl_body(404, "not found", now());
            respond(stream, 404, "Not Found", "application/json", &body).await
        }
        Resolved::Redirect => {
            let mut location = format!("{}/", head.path);
            if !head.query.is_empty() {
                location.push('?');
                location.push_str(&head.query);
            }
            let out = format!(
                "HTTP/1.1 301 Moved Permanently\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            finish(stream, out.into_bytes(), &[]).await
        }
        Resolved::File(path, len) => send_file(stream, &path, len, is_head).await,
    }
}

/// Streams one file: the response head, then the contents in [`CHUNK`]s. A file that cannot be
/// opened becomes a 404; a read error or a file that shrank mid-way ends the connection early
/// (the client sees a short body against `Content-Length`).
async fn send_file(stream: &mut TcpStream, path: &Path, len: u64, is_head: bool) {
    let file = match BufferedFile::open(path).await {
        Ok(f) => f,
        Err(e) => {
            log::warn!("static: open {}: {e}", path.display());
            let body = ctrl_body(404, "not found", now());
            return respond(stream, 404, "Not Found", "application/json", &body).await;
        }
    };
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {len}\r\nCache-Control: {}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        content_type(path),
        cache_control(path),
    )
    .into_bytes();
    if !is_head {
        let mut pos = 0u64;
        while pos < len {
            let want = (len - pos).min(CHUNK as u64) as usize;
            let chunk = match file.read_at(pos, want).await {
                Ok(c) if !c.is_empty() => c,
                Ok(_) => {
                    log::warn!("static: {} shrank while being sent", path.display());
                    break;
                }
                Err(e) => {
                    log::warn!("static: read {}: {e}", path.display());
                    break;
                }
            };
            pos += chunk.len() as u64;
            // The head travels with the first chunk: one write for a small file.
            out.extend_from_slice(&chunk);
            if stream.write_all(&out).await.is_err() {
                let _ = file.close().await;
                return;
            }
            out.clear();
        }
    }
    let _ = file.close().await;
    finish(stream, out, &[]).await
}

/// Writes what is left (`head` may be empty), flushes and closes the write side.
async fn finish(stream: &mut TcpStream, mut head: Vec<u8>, body: &[u8]) {
    head.extend_from_slice(body);
    if !head.is_empty() {
        let _ = stream.write_all(&head).await;
    }
    let _ = stream.flush().await;
    let _ = stream.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(dir: &Path, mount: &str) -> WebConfig {
        WebConfig {
            static_dir: dir.to_path_buf(),
            static_mount: mount.into(),
        }
    }

    /// A site: index.html, js/app.js, sub/index.html, sub/a b.txt, and a secret next to it.
    fn site() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("site");
        std::fs::create_dir_all(root.join("js")).unwrap();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "<html>").unwrap();
        std::fs::write(root.join("js/app.js"), "x()").unwrap();
        std::fs::write(root.join("sub/index.html"), "<sub>").unwrap();
        std::fs::write(root.join("sub/a b.txt"), "ab").unwrap();
        std::fs::write(tmp.path().join("secret.txt"), "s").unwrap();
        let root = std::fs::canonicalize(root).unwrap();
        (tmp, root)
    }

    fn file(root: &Path, rel: &str) -> Resolved {
        let p = root.join(rel);
        let len = std::fs::metadata(&p).unwrap().len();
        Resolved::File(p, len)
    }

    #[test]
    fn mount_prefix_and_reserved_paths() {
        let (_t, root) = site();
        let at_root = web(&root, "/");
        assert!(mounted(&at_root, "/"));
        assert!(mounted(&at_root, "/js/app.js"));
        assert!(!mounted(&at_root, "/v0/channels/lp"));
        assert!(!mounted(&at_root, "/v0"));
        assert!(mounted(&at_root, "/v01"));
        let app = web(&root, "/app/");
        assert!(mounted(&app, "/app/"));
        assert!(mounted(&app, "/app"));
        assert!(mounted(&app, "/app/js/app.js"));
        assert!(!mounted(&app, "/apple"));
        assert!(!mounted(&app, "/"));
        assert!(!mounted(&web(Path::new(""), "/"), "/"));
        assert_eq!(under_mount("/app", "/app/js/x"), Some("js/x"));
        assert_eq!(under_mount("/app/", "/app/"), Some(""));
        assert_eq!(under_mount("/app", "/app"), Some(BARE_MOUNT));
        assert_eq!(under_mount("/", "/index.html"), Some("index.html"));
    }

    #[test]
    fn index_files_and_directory_redirects() {
        let (_t, root) = site();
        assert_eq!(resolve(&root, ""), file(&root, "index.html"));
        assert_eq!(resolve(&root, "index.html"), file(&root, "index.html"));
        assert_eq!(resolve(&root, "sub/"), file(&root, "sub/index.html"));
        assert_eq!(resolve(&root, "sub"), Resolved::Redirect);
        assert_eq!(resolve(&root, BARE_MOUNT), Resolved::Redirect);
        assert_eq!(resolve(&root, "js/"), Resolved::NotFound);
        assert_eq!(resolve(&root, "js//./app.js"), file(&root, "js/app.js"));
        assert_eq!(resolve(&root, "missing.js"), Resolved::NotFound);
    }

    #[test]
    fn percent_decoding() {
        let (_t, root) = site();
        assert_eq!(resolve(&root, "sub/a%20b.txt"), file(&root, "sub/a b.txt"));
        assert_eq!(resolve(&root, "js%2Fapp.js"), file(&root, "js/app.js"));
        assert_eq!(resolve(&root, "sub/a+b.txt"), Resolved::NotFound);
        assert_eq!(decode_path("a%2"), None);
        assert_eq!(decode_path("a%zz"), None);
        assert_eq!(decode_path("a%00"), None);
        assert_eq!(decode_path("%C3%A9"), Some("é".into()));
        assert_eq!(decode_path("%FF"), None);
    }

    #[test]
    fn traversal_is_refused() {
        let (_t, root) = site();
        for p in [
            "../secret.txt",
            "sub/../../secret.txt",
            "sub/../index.html",
            "%2e%2e/secret.txt",
            "sub/%2E%2E%2F%2E%2E%2Fsecret.txt",
            "..%5csecret.txt",
            "sub\\..\\..\\secret.txt",
            "%c0%ae%c0%ae/secret.txt",
            "%e0%80%ae%e0%80%ae/secret.txt",
            "%c0%af..%c0%afsecret.txt",
            "index.html%00.js",
            "/etc/passwd",
        ] {
            assert_eq!(resolve(&root, p), Resolved::NotFound, "{p}");
        }
    }

    #[test]
    fn symlinks_may_not_escape_the_root() {
        let (t, root) = site();
        std::os::unix::fs::symlink(t.path().join("secret.txt"), root.join("out.txt")).unwrap();
        std::os::unix::fs::symlink(t.path(), root.join("up")).unwrap();
        std::os::unix::fs::symlink(root.join("js/app.js"), root.join("in.js")).unwrap();
        assert_eq!(resolve(&root, "out.txt"), Resolved::NotFound);
        assert_eq!(resolve(&root, "up/secret.txt"), Resolved::NotFound);
        assert_eq!(resolve(&root, "up/"), Resolved::NotFound);
        assert_eq!(resolve(&root, "in.js"), file(&root, "js/app.js"));
    }

    #[test]
    fn content_types_and_caching() {
        let ct = |n: &str| content_type(Path::new(n));
        assert_eq!(ct("index.html"), "text/html; charset=utf-8");
        assert_eq!(ct("a.JS"), "text/javascript; charset=utf-8");
        assert_eq!(ct("a.mjs"), "text/javascript; charset=utf-8");
        assert_eq!(ct("manifest.json"), "application/json");
        assert_eq!(ct("app.webmanifest"), "application/manifest+json");
        assert_eq!(ct("x.woff2"), "font/woff2");
        assert_eq!(ct("ding.mp3"), "audio/mpeg");
        assert_eq!(ct("noext"), "application/octet-stream");
        assert_eq!(cache_control(Path::new("index.html")), "no-cache");
        assert_eq!(cache_control(Path::new("service-worker.js")), "no-cache");
        assert_eq!(
            cache_control(Path::new("umd/index.prod.js")),
            "public, max-age=600"
        );
    }
}
