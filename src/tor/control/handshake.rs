//! Authenticating a [`ControlConnection`]: choosing a method from what
//! PROTOCOLINFO offers and what the caller gave ([`Auth`]), the SAFECOOKIE
//! challenge and its HMACs, COOKIE, HASHEDPASSWORD and NULL, and errors
//! that name the cookie file used. Apart from the commands because it is
//! the one part that handles secrets.

use super::auth::{Auth, AuthMethod, ProtocolInfo};
use super::connection::ControlConnection;
use super::error::ControlError;
use super::quoting::{find, from_hex, key_values, quote, split_tokens, to_hex};
use super::reply::Reply;
use super::{COOKIE_LEN, NONCE_LEN, SAFECOOKIE_CLIENT_KEY, SAFECOOKIE_SERVER_KEY};
use sodiumoxide::crypto::auth::hmacsha256;
use std::path::Path;

impl ControlConnection {
    /// Authenticates as `auth` says, after asking Tor what it accepts.
    pub fn authenticate(&self, auth: &Auth) -> Result<(), ControlError> {
        let info = self.protocol_info()?;
        match auth {
            Auth::Password(password) => self.auth_password_if_offered(&info, password),
            Auth::CookieFile(path) => self.auth_cookie_file(&info, path),
            Auth::Auto => self.auth_auto(&info),
        }
    }

    fn auth_password_if_offered(
        &self,
        info: &ProtocolInfo,
        password: &str,
    ) -> Result<(), ControlError> {
        if info.offers(AuthMethod::HashedPassword) || info.offers(AuthMethod::Null) {
            return self.authenticate_password(password);
        }
        Err(ControlError::NoAuthMethod {
            offered: info.methods.clone(),
            wanted: "a password",
        })
    }

    fn auth_cookie_file(&self, info: &ProtocolInfo, path: &Path) -> Result<(), ControlError> {
        let cookie = read_cookie(path)?;
        let result = if info.offers(AuthMethod::SafeCookie) {
            self.authenticate_safecookie(&cookie)
        } else if info.offers(AuthMethod::Cookie) {
            self.authenticate_cookie(&cookie)
        } else {
            return Err(ControlError::NoAuthMethod {
                offered: info.methods.clone(),
                wanted: "a cookie file",
            });
        };
        result.map_err(|e| with_cookie_path(e, path))
    }

    fn auth_auto(&self, info: &ProtocolInfo) -> Result<(), ControlError> {
        let cookie_methods = info.offers(AuthMethod::SafeCookie) || info.offers(AuthMethod::Cookie);
        match (&info.cookie_file, cookie_methods) {
            (Some(path), true) => match self.auth_cookie_file(info, path) {
                Err(ControlError::CookieFile { .. }) if info.offers(AuthMethod::Null) => {
                    self.authenticate_null()
                }
                other => other,
            },
            _ if info.offers(AuthMethod::Null) => self.authenticate_null(),
            _ => Err(ControlError::NoAuthMethod {
                offered: info.methods.clone(),
                wanted: "cookie or no authentication",
            }),
        }
    }

    /// SAFECOOKIE: AUTHCHALLENGE with a random nonce, check Tor's hash of the
    /// cookie, then AUTHENTICATE with ours.
    pub fn authenticate_safecookie(&self, cookie: &[u8]) -> Result<(), ControlError> {
        sodiumoxide::init()
            .map_err(|()| ControlError::Protocol("libsodium failed to start".to_owned()))?;
        let mut client_nonce = [0u8; NONCE_LEN];
        sodiumoxide::randombytes::randombytes_into(&mut client_nonce);
        let line = format!("AUTHCHALLENGE SAFECOOKIE {}", to_hex(&client_nonce));
        let (server_hash, server_nonce) = parse_challenge(&self.checked(&line)?)?;
        let message = [cookie, &client_nonce[..], &server_nonce[..]].concat();
        let expected = hmac_sha256(SAFECOOKIE_SERVER_KEY, &message);
        if !sodiumoxide::utils::memcmp(&expected, &server_hash) {
            return Err(ControlError::ServerHashMismatch { cookie_file: None });
        }
        let response = hmac_sha256(SAFECOOKIE_CLIENT_KEY, &message);
        self.send_auth(
            &format!("AUTHENTICATE {}", to_hex(&response)),
            AuthMethod::SafeCookie,
        )
    }

    /// COOKIE: the cookie's bytes in hex.
    pub fn authenticate_cookie(&self, cookie: &[u8]) -> Result<(), ControlError> {
        self.send_auth(
            &format!("AUTHENTICATE {}", to_hex(cookie)),
            AuthMethod::Cookie,
        )
    }

    /// HASHEDPASSWORD: the password as a quoted string.
    pub fn authenticate_password(&self, password: &str) -> Result<(), ControlError> {
        self.send_auth(
            &format!("AUTHENTICATE {}", quote(password)),
            AuthMethod::HashedPassword,
        )
    }

    /// NULL: no credentials.
    pub fn authenticate_null(&self) -> Result<(), ControlError> {
        self.send_auth("AUTHENTICATE", AuthMethod::Null)
    }

    fn send_auth(&self, line: &str, method: AuthMethod) -> Result<(), ControlError> {
        let reply = self.command(line)?;
        match reply.code() {
            250 => Ok(()),
            515 => Err(ControlError::AuthFailed {
                method,
                message: reply.message().to_owned(),
                cookie_file: None,
            }),
            code => Err(ControlError::Rejected {
                command: "AUTHENTICATE".to_owned(),
                code,
                message: reply.message().to_owned(),
            }),
        }
    }
}

fn read_cookie(path: &Path) -> Result<Vec<u8>, ControlError> {
    let cookie = std::fs::read(path).map_err(|e| ControlError::CookieFile {
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    if cookie.len() != COOKIE_LEN {
        return Err(ControlError::CookieFile {
            path: path.to_owned(),
            why: format!("it holds {} bytes, not {COOKIE_LEN}", cookie.len()),
        });
    }
    Ok(cookie)
}

fn with_cookie_path(error: ControlError, path: &Path) -> ControlError {
    match error {
        ControlError::AuthFailed {
            method, message, ..
        } => ControlError::AuthFailed {
            method,
            message,
            cookie_file: Some(path.to_owned()),
        },
        ControlError::ServerHashMismatch { .. } => ControlError::ServerHashMismatch {
            cookie_file: Some(path.to_owned()),
        },
        other => other,
    }
}

/// Reads `AUTHCHALLENGE SERVERHASH=<hex> SERVERNONCE=<hex>`.
fn parse_challenge(reply: &Reply) -> Result<(Vec<u8>, Vec<u8>), ControlError> {
    let bad = |why: &str| ControlError::Protocol(format!("AUTHCHALLENGE reply: {why}"));
    let text = reply.message();
    let rest = text
        .strip_prefix("AUTHCHALLENGE ")
        .ok_or_else(|| bad(text))?;
    let pairs = key_values(&split_tokens(rest).map_err(|e| bad(&e.to_string()))?)
        .map_err(|e| bad(&e.to_string()))?;
    let hex = |key| find(&pairs, key).and_then(from_hex);
    let hash = hex("SERVERHASH").filter(|h| h.len() == 32);
    let nonce = hex("SERVERNONCE").filter(|n| n.len() == NONCE_LEN);
    match (hash, nonce) {
        (Some(hash), Some(nonce)) => Ok((hash, nonce)),
        _ => Err(bad(text)),
    }
}

pub(super) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut state = hmacsha256::State::init(key);
    state.update(message);
    state.finalize().0
}
