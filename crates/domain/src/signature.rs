//! The signature rightsdesk puts on, and asks of, every message between systems: the
//! raw-MIME intake hook, the SMS gateway, the `http` data sources. A POST carries
//! `X-Rightsdesk-Timestamp: <Unix seconds>` and
//! `X-Rightsdesk-Signature: sha256=<lower-case hex of HMAC-SHA256 with the shared secret
//! over "<timestamp>.<body>">`. Checking the timestamp's age is the caller's.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TIMESTAMP_HEADER: &str = "X-Rightsdesk-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Rightsdesk-Signature";

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Rightsdesk-Signature` value of `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// The MAC bytes of a `sha256=<hex>` header value, or `None` when it is not one.
pub fn parse(signature: &str) -> Option<Vec<u8>> {
    signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h.trim()).ok())
}

/// Whether `mac_bytes` (as [`parse`] gives them) sign `timestamp.body`, in constant time.
pub fn verify_bytes(secret: &[u8], timestamp: &str, body: &[u8], mac_bytes: &[u8]) -> bool {
    mac(secret, timestamp, body).verify_slice(mac_bytes).is_ok()
}

/// Whether the header value `signature` signs `timestamp.body` with `secret`.
pub fn verify(secret: &[u8], timestamp: &str, body: &[u8], signature: &str) -> bool {
    parse(signature).is_some_and(|bytes| verify_bytes(secret, timestamp, body, &bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let s = sign(b"k", "1700000000", b"{}");
        assert!(verify(b"k", "1700000000", b"{}", &s));
        assert!(!verify(b"k", "1700000001", b"{}", &s));
        assert!(!verify(b"k", "1700000000", b"{ }", &s));
        assert!(!verify(b"other", "1700000000", b"{}", &s));
        assert!(!verify(b"k", "1700000000", b"{}", "sha256=zz"));
        assert!(!verify(
            b"k",
            "1700000000",
            b"{}",
            &s.replace("sha256=", "")
        ));
    }
}
