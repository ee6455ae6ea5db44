//! Byte encodings: bincode 2 for records, big-endian ids for keys, raw little-endian f32 for
//! schema-1 vectors.

use crate::error::{Result, StoreError};
use serde::{de::DeserializeOwned, Serialize};

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// The most memory one record may claim while it decodes. bincode allocates a length it reads
/// before it reads what the length counts, so without a limit one damaged length prefix (a
/// record read back from a failing disk) aborts the process on a failed allocation of petabytes.
/// Records are far smaller; the limit does not change the encoding.
const DECODE_LIMIT: usize = 64 << 20;

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding into a Vec only fails for types serde cannot express; ours are plain structs.
    bincode::serde::encode_to_vec(value, config()).expect("bincode encodes plain records")
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config().with_limit::<DECODE_LIMIT>())
        .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
    if used != bytes.len() {
        return Err(StoreError::Corrupt(format!("{what}: {} trailing bytes", bytes.len() - used)));
    }
    Ok(value)
}

pub(crate) fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

pub(crate) fn key_id(key: &[u8], what: &str) -> Result<u64> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what}: key of {} bytes, expected 8", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Key of the (person, face) pair index: person id then face id, so a prefix scan lists a person's faces.
pub(crate) fn pair_key(person: u64, face: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&person.to_be_bytes());
    k[8..].copy_from_slice(&face.to_be_bytes());
    k
}

/// (person, face) of a `pair_key`.
pub(crate) fn key_pair(key: &[u8], what: &str) -> Result<(u64, u64)> {
    if key.len() != 16 {
        return Err(StoreError::Corrupt(format!("{what}: key of {} bytes, expected 16", key.len())));
    }
    Ok((key_id(&key[..8], what)?, key_id(&key[8..], what)?))
}

pub(crate) fn bytes_to_f32s(bytes: &[u8], what: &str) -> Result<Vec<f32>> {
    if bytes.len() % 4 != 0 {
        return Err(StoreError::Corrupt(format!("{what}: vector of {} bytes is not a multiple of 4", bytes.len())));
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Returns the unit vector of `v`, or an error for empty, non-finite or zero vectors.
pub(crate) fn normalized(v: &[f32]) -> Result<Vec<f32>> {
    if v.is_empty() {
        return Err(StoreError::InvalidEmbedding("the embedding is empty".into()));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(StoreError::InvalidEmbedding("the embedding holds NaN or infinite values".into()));
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        return Err(StoreError::InvalidEmbedding("the embedding is the zero vector".into()));
    }
    Ok(v.iter().map(|x| x / norm).collect())
}

/// A vector a store wrote, checked to be one (finite, unit length to float precision) and
/// kept bit for bit: normalising it again could move its last bits.
pub(crate) fn checked_unit(v: &[f32]) -> Result<Vec<f32>> {
    normalized(v)?; // empty, non-finite and zero vectors are refused as in any add
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if (norm - 1.0).abs() > 1e-3 {
        return Err(StoreError::InvalidEmbedding(format!("a stored embedding should have length 1, this one has {norm}")));
    }
    Ok(v.to_vec())
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_length_prefix_is_an_error_not_an_allocation() {
        let bytes = encode(&("model".to_string(), 7u64));
        assert_eq!(decode::<(String, u64)>(&bytes, "pair").unwrap(), ("model".to_string(), 7));
        // The string's length (a varint byte, 5) made 2^61 by bincode's u64 marker (253).
        let mut damaged = vec![253];
        damaged.extend_from_slice(&(1u64 << 61).to_le_bytes());
        damaged.extend_from_slice(&bytes[1..]);
        let why = decode::<(String, u64)>(&damaged, "pair").unwrap_err().to_string();
        assert!(why.contains("pair") && why.to_lowercase().contains("limit"), "{why}");
    }
}
