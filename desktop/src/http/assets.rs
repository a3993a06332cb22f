//! The web UI built by `build.rs` from `desktop/ui`, embedded in the binary.

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// The bytes and content type of a built file (`index.html`, `assets/…`).
pub fn get(path: &str) -> Option<(&'static [u8], &'static str)> {
    let path = path.trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(p, bytes)| (*bytes, content_type(p)))
}

/// `html` with a JSON data block (`<script type="application/json"
/// id=…>`) before `</head>`. `json` must hold no `<` (escape it as
/// `\u003c`). A data block is never run, so the page's script policy
/// stands.
pub fn with_data_block(html: &[u8], id: &str, json: &str) -> Vec<u8> {
    debug_assert!(!json.contains('<'));
    let block = format!("<script type=\"application/json\" id=\"{id}\">{json}</script>");
    let text = String::from_utf8_lossy(html);
    match text.find("</head>") {
        Some(at) => format!("{}{block}{}", &text[..at], &text[at..]).into_bytes(),
        None => html.to_vec(),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_built_ui_is_embedded() {
        let (html, ty) = super::get("/").expect("index.html is embedded");
        assert!(ty.starts_with("text/html"));
        let html = std::str::from_utf8(html).unwrap();
        // Every script and stylesheet the page loads is embedded too.
        for src in html
            .split(['"', '\''])
            .filter(|s| s.starts_with("/assets/"))
        {
            assert!(super::get(src).is_some(), "{src} is missing");
        }
        assert!(html.contains("/assets/"));
    }

    #[test]
    fn a_data_block_goes_in_the_head_as_given() {
        let html = b"<html><head><title>x</title></head><body></body></html>";
        let out = super::with_data_block(html, "first", r#"{"a":"\u003c/script>"}"#);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"<html><head><title>x</title><script type="application/json" id="first">{"a":"\u003c/script>"}</script></head><body></body></html>"#
        );
        assert_eq!(
            super::with_data_block(b"no head", "first", "{}"),
            b"no head"
        );
    }
}
