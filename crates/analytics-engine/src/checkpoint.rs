//! Saved stream states: the bytes a long-running service writes to its store so that a restart
//! resumes every series where it stopped, without learning it again.
//!
//! A state is encoded with postcard (a compact binary serde format that keeps every `f64` bit
//! for bit, NaN and infinities included, which JSON cannot). The engine wraps its detector's
//! bytes with its name and a fingerprint of its configuration, so that a state saved by another
//! engine, or by this one configured differently, is refused instead of resumed wrongly.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::EngineError;

/// Encodes a state.
pub(crate) fn encode<T: Serialize>(what: &str, state: &T) -> Result<Vec<u8>, EngineError> {
    postcard::to_allocvec(state).map_err(|e| EngineError::Internal(format!("the {what} state does not encode: {e}")))
}

/// Decodes a state saved by [`encode`]; every byte must be used.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, EngineError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| bad(what, format!("undecodable ({e})")))?;
    if !rest.is_empty() {
        return Err(bad(what, format!("{} bytes left over", rest.len())));
    }
    Ok(value)
}

/// A checkpoint error naming the part at fault.
pub(crate) fn bad(what: &str, message: String) -> EngineError {
    EngineError::BadCheckpoint { engine: what.to_owned(), message }
}

/// A stable 64-bit fingerprint of a configuration (FNV-1a of its JSON text, whose key order
/// serde_json keeps sorted), the same on every machine and build.
pub(crate) fn fingerprint(config: &serde_json::Value) -> u64 {
    config.to_string().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Serde for a byte array longer than serde's built-in 32: as a byte sequence, its length
/// checked on the way in.
pub(crate) mod byte_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let v: Vec<u8> = Vec::deserialize(d)?;
        let n = v.len();
        v.try_into().map_err(|_| serde::de::Error::custom(format!("expected {N} bytes, found {n}")))
    }
}
