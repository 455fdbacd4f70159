//! Tickets: the server's signed permission for one host to fetch chunks of one step attempt
//! from its peers, until an expiry time. Ed25519 with the server's key (ring); agents hold the
//! public key and check every request against it.
//!
//! Canonical signed bytes (48 bytes, all integers big-endian):
//! `b"shoal-ticket-v1\0"` (16 bytes) ‖ `step_id` (i64) ‖ `attempt` (u32) ‖ `requester`
//! (i64) ‖ `expires_at` (i64, unix ms) ‖ 4 zero bytes (reserved). JSON field order and
//! formatting never matter; the signature is over these bytes only.
//!
//! Signing is for the server; this module is shared so both ends agree on the bytes.

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// Domain separation: a signature over anything else never verifies as a ticket.
pub const DOMAIN: &[u8; 16] = b"shoal-ticket-v1\0";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub step_id: i64,
    pub attempt: u32,
    /// The host allowed to fetch.
    pub requester: i64,
    /// Unix milliseconds.
    pub expires_at: i64,
    #[serde(with = "bytes_hex")]
    pub sig: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TicketError {
    #[error("ticket signature is not valid")]
    BadSignature,
    #[error("ticket expired at {expires_at} (now {now_ms})")]
    Expired { expires_at: i64, now_ms: i64 },
    #[error("ticket is for host {ticket} but the requester is host {actual}")]
    WrongRequester { ticket: i64, actual: i64 },
    #[error("invalid Ed25519 key: {0}")]
    BadKey(String),
}

impl Ticket {
    /// A ticket signed with `key`.
    pub fn signed(
        step_id: i64,
        attempt: u32,
        requester: i64,
        expires_at: i64,
        key: &Ed25519KeyPair,
    ) -> Ticket {
        let mut ticket = Ticket {
            step_id,
            attempt,
            requester,
            expires_at,
            sig: Vec::new(),
        };
        ticket.sign(key);
        ticket
    }

    /// Signs (or re-signs) the ticket with `key`.
    pub fn sign(&mut self, key: &Ed25519KeyPair) {
        self.sig = key.sign(&self.signed_bytes()).as_ref().to_vec();
    }

    /// The canonical bytes the signature covers (see the module header).
    pub fn signed_bytes(&self) -> [u8; 48] {
        let mut out = [0u8; 48];
        out[..16].copy_from_slice(DOMAIN);
        out[16..24].copy_from_slice(&self.step_id.to_be_bytes());
        out[24..28].copy_from_slice(&self.attempt.to_be_bytes());
        out[28..36].copy_from_slice(&self.requester.to_be_bytes());
        out[36..44].copy_from_slice(&self.expires_at.to_be_bytes());
        out
    }

    /// Checks the signature against `public_key` (32 raw bytes), that the ticket was issued to
    /// `requester`, and that it has not expired at `now_ms`. The signature is checked first,
    /// so a forged ticket is always `BadSignature`.
    pub fn verify(
        &self,
        public_key: &[u8],
        requester: i64,
        now_ms: i64,
    ) -> Result<(), TicketError> {
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(&self.signed_bytes(), &self.sig)
            .map_err(|_| TicketError::BadSignature)?;
        if self.requester != requester {
            return Err(TicketError::WrongRequester {
                ticket: self.requester,
                actual: requester,
            });
        }
        if now_ms >= self.expires_at {
            return Err(TicketError::Expired {
                expires_at: self.expires_at,
                now_ms,
            });
        }
        Ok(())
    }
}

/// A new Ed25519 key as a PKCS#8 v2 document (what the server stores).
pub fn generate_pkcs8() -> Result<Vec<u8>, TicketError> {
    let rng = ring::rand::SystemRandom::new();
    Ed25519KeyPair::generate_pkcs8(&rng)
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|e| TicketError::BadKey(e.to_string()))
}

/// The key pair in a PKCS#8 document.
pub fn key_pair_from_pkcs8(pkcs8: &[u8]) -> Result<Ed25519KeyPair, TicketError> {
    Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| TicketError::BadKey(e.to_string()))
}

/// The 32-byte public key agents verify with.
pub fn public_key(key: &Ed25519KeyPair) -> Vec<u8> {
    key.public_key().as_ref().to_vec()
}

/// Serde for bytes as lowercase hex.
mod bytes_hex {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        hex::decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    // Pins the ticket contract: a signed ticket verifies for its requester until it expires,
    // any changed field or another key breaks the signature, the wire form round-trips, and
    // the canonical bytes are exactly the documented layout.
    use super::*;

    fn key() -> Ed25519KeyPair {
        key_pair_from_pkcs8(&generate_pkcs8().expect("generate")).expect("parse")
    }

    #[test]
    fn verifies_for_its_requester_until_expiry() {
        let key = key();
        let pk = public_key(&key);
        let t = Ticket::signed(7, 2, 42, 10_000, &key);
        assert_eq!(t.verify(&pk, 42, 9_999), Ok(()));
        assert_eq!(
            t.verify(&pk, 42, 10_000),
            Err(TicketError::Expired {
                expires_at: 10_000,
                now_ms: 10_000
            })
        );
        assert_eq!(
            t.verify(&pk, 43, 0),
            Err(TicketError::WrongRequester {
                ticket: 42,
                actual: 43
            })
        );
    }

    #[test]
    fn tampering_or_another_key_breaks_the_signature() {
        let key = key();
        let pk = public_key(&key);
        let t = Ticket::signed(7, 2, 42, 10_000, &key);
        let tampered: [fn(&mut Ticket); 5] = [
            |t| t.step_id += 1,
            |t| t.attempt += 1,
            |t| t.requester += 1,
            |t| t.expires_at += 1,
            |t| t.sig[0] ^= 1,
        ];
        for change in tampered {
            let mut bad = t.clone();
            change(&mut bad);
            assert_eq!(
                bad.verify(&pk, bad.requester, 0),
                Err(TicketError::BadSignature)
            );
        }
        let other = public_key(&self::key());
        assert_eq!(t.verify(&other, 42, 0), Err(TicketError::BadSignature));
        assert_eq!(t.verify(&[0u8; 5], 42, 0), Err(TicketError::BadSignature));
        assert!(matches!(
            key_pair_from_pkcs8(b"junk"),
            Err(TicketError::BadKey(_))
        ));
    }

    #[test]
    fn wire_form_and_canonical_bytes() {
        let t = Ticket::signed(-1, 3, 5, 1_700_000_000_000, &key());
        let json = serde_json::to_string(&t).expect("json");
        assert!(json.contains(&hex::encode(&t.sig)), "{json}");
        assert_eq!(serde_json::from_str::<Ticket>(&json).expect("parse"), t);
        let bytes = t.signed_bytes();
        assert_eq!(&bytes[..16], b"shoal-ticket-v1\0");
        assert_eq!(bytes[16..24], [0xff; 8]);
        assert_eq!(bytes[24..28], [0, 0, 0, 3]);
        assert_eq!(bytes[28..36], [0, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(bytes[36..44], 1_700_000_000_000i64.to_be_bytes());
        assert_eq!(bytes[44..], [0; 4]);
    }
}
