//! AES-256-GCM as the service uses it for data at rest (the secrets an outbox row carries,
//! evidence files): a fresh random nonce for each value, and the id of the record the
//! value belongs to as associated data, so that it opens only under that record.

use std::io::{self, Read};

use aes_gcm::aead::stream::{DecryptorBE32, EncryptorBE32};
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

/// What a sealed file starts with.
const FILE_MAGIC: &[u8; 8] = b"RDSEAL1\n";
/// Plaintext bytes per segment of a sealed file.
const SEGMENT: usize = 64 * 1024;
/// Bytes of the tag each segment carries.
const TAG: usize = 16;
/// Bytes of a sealed file's nonce prefix (STREAM-BE32 keeps 5 of GCM's 12 for its
/// segment counter and last-segment flag).
const STREAM_NONCE: usize = 7;

/// The sealed form of a file, as a reader: STREAM (`aead::stream`: a big-endian 32-bit
/// segment counter and a last-segment flag in the nonce) over AES-256-GCM, in segments of
/// 64 KiB, with the record's id as associated data, so reordered, dropped or truncated
/// segments, or a file moved to another record, do not open. Layout: `RDSEAL1\n`, a
/// random 7-byte nonce prefix, then the sealed segments (each 16 bytes longer than its
/// plaintext; the last may be shorter). Memory: three segments, whatever the file's size.
pub(crate) struct SealingReader<R> {
    inner: R,
    cipher: Option<EncryptorBE32<Aes256Gcm>>,
    aad: [u8; 16],
    /// The next plaintext segment, read ahead to know whether the current one is the last.
    next: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
}

impl<R: Read> SealingReader<R> {
    pub(crate) fn new(cipher: &Aes256Gcm, id: Uuid, mut inner: R) -> io::Result<Self> {
        let mut nonce = [0u8; STREAM_NONCE];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = FILE_MAGIC.to_vec();
        out.extend_from_slice(&nonce);
        let next = read_segment(&mut inner, SEGMENT)?;
        Ok(Self {
            inner,
            cipher: Some(EncryptorBE32::from_aead(cipher.clone(), (&nonce).into())),
            aad: *id.as_bytes(),
            next,
            out,
            pos: 0,
        })
    }

    /// Seals the next segment into `out`; false at the end.
    fn fill(&mut self) -> io::Result<bool> {
        let Some(mut encryptor) = self.cipher.take() else {
            return Ok(false);
        };
        let current = std::mem::take(&mut self.next);
        let following = read_segment(&mut self.inner, SEGMENT)?;
        let payload = Payload {
            msg: &current,
            aad: &self.aad,
        };
        self.out = if following.is_empty() {
            encryptor.encrypt_last(payload)
        } else {
            let sealed = encryptor.encrypt_next(payload);
            self.cipher = Some(encryptor);
            sealed
        }
        .map_err(|_| io::Error::other("sealing failed"))?;
        self.next = following;
        self.pos = 0;
        Ok(true)
    }
}

impl<R: Read> Read for SealingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            if !self.fill()? {
                return Ok(0);
            }
        }
        Ok(drain(&self.out, &mut self.pos, buf))
    }
}

/// Copies what `buf` takes of `out` from `pos` on, and moves `pos` past it.
fn drain(out: &[u8], pos: &mut usize, buf: &mut [u8]) -> usize {
    let n = buf.len().min(out.len() - *pos);
    buf[..n].copy_from_slice(&out[*pos..*pos + n]);
    *pos += n;
    n
}

/// The plaintext of a file sealed by [`SealingReader`] for record `id`, as a reader. A
/// segment that does not open (another key or record, a changed, reordered or missing
/// segment) is an `InvalidData` error.
pub(crate) struct OpeningReader<R> {
    inner: R,
    cipher: Option<DecryptorBE32<Aes256Gcm>>,
    aad: [u8; 16],
    next: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
}

impl<R: Read> OpeningReader<R> {
    pub(crate) fn new(cipher: &Aes256Gcm, id: Uuid, mut inner: R) -> io::Result<Self> {
        let mut head = [0u8; FILE_MAGIC.len() + STREAM_NONCE];
        if read_full(&mut inner, &mut head)? != head.len() || &head[..8] != FILE_MAGIC {
            return Err(unsealable());
        }
        let nonce: [u8; STREAM_NONCE] = head[8..].try_into().map_err(|_| unsealable())?;
        let next = read_segment(&mut inner, SEGMENT + TAG)?;
        Ok(Self {
            inner,
            cipher: Some(DecryptorBE32::from_aead(cipher.clone(), (&nonce).into())),
            aad: *id.as_bytes(),
            next,
            out: Vec::new(),
            pos: 0,
        })
    }

    fn fill(&mut self) -> io::Result<bool> {
        let Some(mut decryptor) = self.cipher.take() else {
            return Ok(false);
        };
        let current = std::mem::take(&mut self.next);
        let following = read_segment(&mut self.inner, SEGMENT + TAG)?;
        let payload = Payload {
            msg: &current,
            aad: &self.aad,
        };
        self.out = if following.is_empty() {
            decryptor.decrypt_last(payload)
        } else {
            let plain = decryptor.decrypt_next(payload);
            self.cipher = Some(decryptor);
            plain
        }
        .map_err(|_| unsealable())?;
        self.next = following;
        self.pos = 0;
        Ok(true)
    }
}

impl<R: Read> Read for OpeningReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            if !self.fill()? {
                return Ok(0);
            }
        }
        Ok(drain(&self.out, &mut self.pos, buf))
    }
}

fn unsealable() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "the sealed file does not open")
}

/// Up to `len` bytes: fewer only at the end of `r`.
fn read_segment(r: &mut impl Read, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let n = read_full(r, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
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

    fn sealed(cipher: &Aes256Gcm, id: Uuid, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        SealingReader::new(cipher, id, plain)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn opened(cipher: &Aes256Gcm, id: Uuid, sealed: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        OpeningReader::new(cipher, id, sealed)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn a_file_opens_whole_and_only_whole() {
        let cipher = Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap();
        let id = Uuid::now_v7();
        for len in [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 17] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let file = sealed(&cipher, id, &plain);
            assert_eq!(file.len(), 15 + len + TAG * len.div_ceil(SEGMENT).max(1));
            assert_eq!(opened(&cipher, id, &file).unwrap(), plain, "{len} bytes");
            assert!(opened(&cipher, Uuid::now_v7(), &file).is_err());
            if len > SEGMENT {
                // Cut after a whole segment: the end is missing.
                assert!(opened(&cipher, id, &file[..15 + SEGMENT + TAG]).is_err());
            }
            let mut changed = file.clone();
            let last = changed.len() - 1;
            changed[last] ^= 1;
            assert!(opened(&cipher, id, &changed).is_err());
        }
    }
}
