//! AES-256-GCM as the service uses it for data at rest (the secrets an outbox row carries,
//! evidence files): a fresh random nonce for each value, and the id of the record the
//! value belongs to as associated data, so that it opens only under that record.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use uuid::Uuid;

use crate::Error;

/// Bytes of a nonce.
pub(crate) const NONCE_LEN: usize = 12;

/// `plain` sealed for record `id`: the nonce and the ciphertext.
pub(crate) fn seal(
    cipher: &Aes256Gcm,
    id: Uuid,
    plain: &[u8],
) -> Result<([u8; NONCE_LEN], Vec<u8>), Error> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: id.as_bytes(),
            },
        )
        .map_err(|_| Error::internal())?;
    Ok((nonce, sealed))
}

/// The plaintext of `sealed`, when it was sealed for record `id` under this key.
pub(crate) fn open(
    cipher: &Aes256Gcm,
    id: Uuid,
    nonce: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, Error> {
    if nonce.len() != NONCE_LEN {
        return Err(Error::internal());
    }
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: id.as_bytes(),
            },
        )
        .map_err(|_| Error::internal())
}

#[cfg(test)]
mod tests {
    use aes_gcm::KeyInit;

    use super::*;

    #[test]
    fn a_value_opens_only_under_its_record_and_key() {
        let cipher = Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap();
        let other = Aes256Gcm::new_from_slice(&[8u8; 32]).unwrap();
        let (id, elsewhere) = (Uuid::now_v7(), Uuid::now_v7());
        let (nonce, sealed) = seal(&cipher, id, b"secret").unwrap();
        assert_eq!(open(&cipher, id, &nonce, &sealed).unwrap(), b"secret");
        assert!(open(&cipher, elsewhere, &nonce, &sealed).is_err());
        assert!(open(&other, id, &nonce, &sealed).is_err());
        assert!(open(&cipher, id, &nonce[..8], &sealed).is_err());
    }
}
