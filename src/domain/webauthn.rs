//! Reading what the relying party library does not hand out: the authenticator model
//! (AAGUID) in a registration's attestation object.

use serde_cbor_2::Value;
use uuid::Uuid;

/// The "attested credential data included" flag of the authenticator data.
const ATTESTED_CREDENTIAL_DATA: u8 = 0x40;

/// The AAGUID in an attestation object (WebAuthn §6.5.1: `authData` is the RP ID hash (32
/// bytes), the flags (1), the signature counter (4), then, with attested credential data,
/// the AAGUID (16)). `None` when the object holds none; an authenticator that hides its
/// model sends all zeros.
pub fn aaguid(attestation_object: &[u8]) -> Option<Uuid> {
    let Value::Map(map) = serde_cbor_2::from_slice::<Value>(attestation_object).ok()? else {
        return None;
    };
    let auth_data = map.iter().find_map(|(key, value)| match (key, value) {
        (Value::Text(key), Value::Bytes(bytes)) if key == "authData" => Some(bytes),
        _ => None,
    })?;
    if auth_data.get(32)? & ATTESTED_CREDENTIAL_DATA == 0 {
        return None;
    }
    let bytes: [u8; 16] = auth_data.get(37..53)?.try_into().ok()?;
    Some(Uuid::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn object(auth_data: Vec<u8>) -> Vec<u8> {
        let mut map = BTreeMap::new();
        map.insert(Value::Text("fmt".into()), Value::Text("none".into()));
        map.insert(Value::Text("attStmt".into()), Value::Map(BTreeMap::new()));
        map.insert(Value::Text("authData".into()), Value::Bytes(auth_data));
        serde_cbor_2::to_vec(&Value::Map(map)).unwrap()
    }

    #[test]
    fn reads_the_aaguid_after_hash_flags_and_counter() {
        let model = Uuid::parse_str("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4").unwrap();
        let mut auth_data = vec![7u8; 32];
        auth_data.push(0x45); // user present, user verified, attested credential data
        auth_data.extend_from_slice(&[0, 0, 0, 1]);
        auth_data.extend_from_slice(model.as_bytes());
        auth_data.extend_from_slice(&[0, 16]);
        assert_eq!(aaguid(&object(auth_data)), Some(model));
    }

    #[test]
    fn none_without_attested_credential_data_or_for_garbage() {
        let mut auth_data = vec![7u8; 32];
        auth_data.push(0x05);
        auth_data.extend_from_slice(&[0; 20]);
        assert_eq!(aaguid(&object(auth_data)), None);
        assert_eq!(aaguid(b"not cbor"), None);
        assert_eq!(aaguid(&object(vec![1, 2, 3])), None);
    }
}
