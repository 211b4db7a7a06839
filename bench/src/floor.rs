//! The floor: downloads every page of a listing and finds each next token, nothing else (no
//! JSON parsing, no rows). Whatever a client does beyond this is overhead.
//!
//! `floor URL TOKEN ROOM PAGE_SIZE [REPEAT] [validate]`: lists ROOM REPEAT times (default 1)
//! over one keep-alive connection; prints `pages bytes seconds`. With `validate`, each page is
//! also checked to be JSON (the least a client must do with a page it cannot split by a
//! search, such as a room's whole history sent as one page).

use std::time::Instant;

/// The value of `"next_page_token":"..."`, found by a plain search (the token is opaque and
/// never contains a quote).
fn next_token(body: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"next_page_token\":\"";
    let start = body.windows(KEY.len()).rposition(|w| w == KEY)? + KEY.len();
    let len = body[start..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&body[start..start + len]).ok().filter(|t| !t.is_empty())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: floor URL TOKEN ROOM PAGE_SIZE [REPEAT]");
        std::process::exit(2);
    }
    let (base, token, room, page_size) = (&args[1], &args[2], &args[3], &args[4]);
    let repeat: usize = args.get(5).and_then(|r| r.parse().ok()).unwrap_or(1);
    let validate = args.get(6).is_some_and(|a| a == "validate");
    let client = reqwest::Client::builder().tcp_nodelay(true).build().expect("client");
    let (mut pages, mut bytes) = (0u64, 0u64);
    let started = Instant::now();
    for _ in 0..repeat {
        let mut next: Option<String> = None;
        loop {
            let mut url = format!("{base}/api/2.0/clean-rooms/{room}/runs?page_size={page_size}");
            if let Some(t) = &next {
                url.push_str("&page_token=");
                url.push_str(t);
            }
            let resp = client.get(&url).bearer_auth(token).send().await.expect("request");
            assert!(resp.status().is_success(), "HTTP {}", resp.status());
            let body = resp.bytes().await.expect("body");
            pages += 1;
            bytes += body.len() as u64;
            if validate {
                serde_json::from_slice::<serde::de::IgnoredAny>(&body).expect("the page is JSON");
            }
            next = next_token(&body).map(str::to_string);
            if next.is_none() {
                break;
            }
        }
    }
    println!("{pages} {bytes} {:.6}", started.elapsed().as_secs_f64());
}
