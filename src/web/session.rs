//! A panel's session: how a workstation proves which station it is.
//!
//! A supervisor signs a device in once with the station's broker password (the broker says
//! whether it is right: see `stations`). The device then holds a cookie that carries the
//! station, the password and an expiry, sealed (ChaCha20-Poly1305) with a key only this server
//! has, bound to the station's name. So a session survives a restart of the server or the
//! gateway without a table of sessions, the server acts for the station with the station's own
//! account and nothing else, and a new password on the broker ends every old session.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// The cookie's name; its path is the station's own (`/panel/<station>`).
pub(crate) const COOKIE: &str = "linegate_panel";
/// Longer cookies are not ours.
const MAX_COOKIE: usize = 1024;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a session holds.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Session {
    #[serde(rename = "s")]
    pub(crate) station: String,
    /// The station's broker password, as the broker accepted it at sign-in.
    #[serde(rename = "p")]
    pub(crate) password: String,
    /// Unix seconds.
    #[serde(rename = "e")]
    pub(crate) expires: i64,
}

impl std::fmt::Debug for Session {
    // Never let the station's password reach a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("station", &self.station)
            .field("password", &"***")
            .field("expires", &self.expires)
            .finish()
    }
}

/// The server's sealing key.
pub(crate) struct Sealer {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    /// The key kept in `dir/session.key`, made there (mode 0600) when missing. When `dir`
    /// cannot hold it, a key for this run only: sessions then end with the server.
    pub(crate) fn load_or_create(dir: &Path) -> Sealer {
        let random = SystemRandom::new();
        let path = dir.join("session.key");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => Some(bytes),
            Ok(_) => {
                tracing::warn!(path = %path.display(), "the session key is not 32 bytes; making a new one");
                None
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the session key");
                None
            }
        };
        let bytes = bytes.unwrap_or_else(|| {
            let mut fresh = vec![0u8; 32];
            random.fill(&mut fresh).expect("the system's random numbers");
            if let Err(e) = write_private(&path, &fresh) {
                tracing::warn!(path = %path.display(), error = %e,
                    "cannot keep the session key: panels must sign in again after a restart");
            }
            fresh
        });
        Sealer::from_key(&bytes)
    }

    fn from_key(bytes: &[u8]) -> Sealer {
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes).expect("a 32-byte key");
        Sealer {
            key: LessSafeKey::new(key),
            random: SystemRandom::new(),
        }
    }

    /// The cookie's value for `session`.
    pub(crate) fn seal(&self, session: &Session) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).expect("the system's random numbers");
        let mut data = serde_json::to_vec(session).expect("sessions serialize");
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(session.station.as_bytes()),
                &mut data,
            )
            .expect("sealing");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        B64.encode(out)
    }

    /// The session in a cookie presented on `station`'s pages, if it is one of ours, for that
    /// station, and not expired at `now` (Unix seconds).
    pub(crate) fn open(&self, cookie: &str, station: &str, now: i64) -> Option<Session> {
        if cookie.len() > MAX_COOKIE {
            return None;
        }
        let raw = B64.decode(cookie).ok()?;
        if raw.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(station.as_bytes()), &mut sealed)
            .ok()?;
        let session: Session = serde_json::from_slice(plain).ok()?;
        (session.station == station && session.expires > now).then_some(session)
    }
}

/// Writes `bytes` to a new file only its owner can read, in place of any old one.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension("key.partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)?;
    // The rename is durable only once the directory is.
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: impl Iterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    headers
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires: i64) -> Session {
        Session {
            station: "ws-1".into(),
            password: "pässword \"1\"".into(),
            expires,
        }
    }

    #[test]
    fn a_sealed_session_opens_only_on_its_station_before_it_expires() {
        let sealer = Sealer::from_key(&[7; 32]);
        let cookie = sealer.seal(&session(1_000));
        assert!(!cookie.contains("ws-1") && !cookie.contains("word"), "{cookie}");
        assert_eq!(sealer.open(&cookie, "ws-1", 999), Some(session(1_000)));
        assert_eq!(sealer.open(&cookie, "ws-1", 1_000), None, "expired");
        assert_eq!(sealer.open(&cookie, "ws-2", 999), None, "another station's pages");
        // Another server's key, a changed byte, garbage: nothing opens.
        assert_eq!(Sealer::from_key(&[8; 32]).open(&cookie, "ws-1", 999), None);
        let mut raw = B64.decode(&cookie).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(sealer.open(&B64.encode(raw), "ws-1", 999), None);
        for junk in ["", "x", "%%%", &"A".repeat(5000)] {
            assert_eq!(sealer.open(junk, "ws-1", 0), None, "{junk}");
        }
    }

    #[test]
    fn the_key_outlives_the_server_and_only_its_owner_reads_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cookie = Sealer::load_or_create(dir.path()).seal(&session(1_000));
        let again = Sealer::load_or_create(dir.path());
        assert_eq!(again.open(&cookie, "ws-1", 0), Some(session(1_000)));
        let mode = std::fs::metadata(dir.path().join("session.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    #[test]
    fn a_cookie_is_found_among_others() {
        let headers = ["a=1; linegate_panel=abc", "b=2"];
        assert_eq!(cookie(headers.into_iter(), COOKIE), Some("abc"));
        assert_eq!(cookie(["linegate_panelx=1"].into_iter(), COOKIE), None);
    }
}
