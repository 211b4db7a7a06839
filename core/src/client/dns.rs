//! Host name resolution with an error that says what failed. The standard library folds every
//! `getaddrinfo` failure into one uncategorised I/O error with a message; resolving here keeps
//! its code, so that an unknown host (a typo in `workspace_url`: trying again meets it again)
//! is told from a resolver that is briefly unavailable (worth a retry) by type, not by text.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::ffi::CString;
use std::net::SocketAddr;

/// A failed resolution.
#[derive(Debug)]
pub struct ResolveError {
    pub host: String,
    /// The name does not resolve, and will not on a second try (EAI_NONAME, EAI_FAIL, ...);
    /// otherwise the resolver could not answer now (EAI_AGAIN, a system error).
    pub lasting: bool,
    problem: String,
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot resolve host {:?}: {}", crate::text::excerpt(&self.host, 100), self.problem)
    }
}

impl std::error::Error for ResolveError {}

/// The resolver the HTTP client uses: `getaddrinfo` on a blocking thread.
pub struct Resolver;

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = tokio::task::spawn_blocking(move || lookup(&host))
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)??;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

fn lookup(host: &str) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let failed = |lasting: bool, problem: String| Box::new(ResolveError { host: host.to_string(), lasting, problem });
    let c_host = CString::new(host).map_err(|_| failed(true, "the name holds a NUL byte".into()))?;
    let hints = libc::addrinfo {
        ai_flags: 0,
        ai_family: libc::AF_UNSPEC,
        ai_socktype: libc::SOCK_STREAM,
        ai_protocol: 0,
        ai_addrlen: 0,
        ai_addr: std::ptr::null_mut(),
        ai_canonname: std::ptr::null_mut(),
        ai_next: std::ptr::null_mut(),
    };
    let mut found: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: getaddrinfo reads the NUL-terminated host and the hints, and on success leaves a
    // list in `found` that is read below and freed once with freeaddrinfo.
    let code = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut found) };
    if code != 0 {
        // SAFETY: gai_strerror returns a static, NUL-terminated message for any code.
        let text = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(code)) }.to_string_lossy().into_owned();
        let lasting = !matches!(code, libc::EAI_AGAIN | libc::EAI_SYSTEM | libc::EAI_MEMORY);
        return Err(failed(lasting, text));
    }
    let mut addrs = Vec::new();
    let mut cursor = found;
    while !cursor.is_null() {
        // SAFETY: `cursor` walks the list getaddrinfo returned; each ai_addr holds ai_addrlen bytes.
        unsafe {
            let info = &*cursor;
            match info.ai_family {
                libc::AF_INET => {
                    let a = &*(info.ai_addr as *const libc::sockaddr_in);
                    addrs.push(SocketAddr::from((u32::from_be(a.sin_addr.s_addr).to_be_bytes(), 0)));
                }
                libc::AF_INET6 => {
                    let a = &*(info.ai_addr as *const libc::sockaddr_in6);
                    let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                    addrs.push(SocketAddr::V6(std::net::SocketAddrV6::new(ip, 0, a.sin6_flowinfo, a.sin6_scope_id)));
                }
                _ => {}
            }
            cursor = info.ai_next;
        }
    }
    // SAFETY: the list came from a successful getaddrinfo and is freed exactly once.
    unsafe { libc::freeaddrinfo(found) };
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_and_unknown_ones_fail_for_good() {
        assert!(lookup("localhost").unwrap().iter().any(|a| a.ip().is_loopback()));
        assert!(lookup("127.0.0.1").unwrap().iter().any(|a| a.ip().is_loopback()));
        // An empty name fails in getaddrinfo itself, without asking any DNS server.
        let e = lookup("").unwrap_err();
        let e = e.downcast_ref::<ResolveError>().expect("a resolve error");
        assert!(e.lasting, "{e}");
    }
}
