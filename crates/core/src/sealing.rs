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

/// The at-rest keys, by id: the one that seals new values now, and every one that may
/// have sealed an older value (newest first), to open it.
#[derive(Clone)]
pub(crate) struct CipherRing {
    sealing: (String, Aes256Gcm),
    all: Vec<(String, Aes256Gcm)>,
}

impl CipherRing {
    pub(crate) fn new(sealing: (String, Aes256Gcm), all: Vec<(String, Aes256Gcm)>) -> Self {
        Self { sealing, all }
    }

    /// One key, for tests.
    #[cfg(test)]
    pub(crate) fn single(id: &str, cipher: Aes256Gcm) -> Self {
        Self::new(
            (id.to_owned(), cipher.clone()),
            vec![(id.to_owned(), cipher)],
        )
    }

    /// The id and cipher that seal now.
    pub(crate) fn sealing(&self) -> (&str, &Aes256Gcm) {
        (&self.sealing.0, &self.sealing.1)
    }

    fn by_id(&self, id: &str) -> Option<&Aes256Gcm> {
        self.all.iter().find(|(k, _)| k == id).map(|(_, c)| c)
    }

    /// Seals `plain` for record `id` under the sealing key: its id, the nonce and the
    /// ciphertext.
    pub(crate) fn seal(
        &self,
        id: Uuid,
        plain: &[u8],
    ) -> Result<(String, [u8; NONCE_LEN], Vec<u8>), Error> {
        let (key_id, cipher) = self.sealing();
        let (nonce, sealed) = seal(cipher, id, plain)?;
        Ok((key_id.to_owned(), nonce, sealed))
    }

    /// Opens a value sealed for record `id`: under the key `key_id` names when given,
    /// else under each key in turn, newest first (authentication tells the right one).
    pub(crate) fn open(
        &self,
        key_id: Option<&str>,
        id: Uuid,
        nonce: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, Error> {
        match key_id {
            Some(key_id) => {
                let cipher = self.by_id(key_id).ok_or_else(|| {
                    tracing::error!(
                        key_id,
                        "a value sealed with a key this instance does not hold"
                    );
                    Error::internal()
                })?;
                open(cipher, id, nonce, sealed)
            }
            None => self
                .all
                .iter()
                .find_map(|(_, cipher)| open(cipher, id, nonce, sealed).ok())
                .ok_or_else(Error::internal),
        }
    }
}

/// What a sealed file starts with: version 2 names its key (16 hex digits) next;
/// version 1, written before keys rotated, does not, and is opened by trying each key.
const FILE_MAGIC: &[u8; 8] = b"RDSEAL2\n";
const FILE_MAGIC_V1: &[u8; 8] = b"RDSEAL1\n";
/// Bytes of the key id in a version 2 header.
const KEY_ID: usize = 16;
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
/// segments, or a file moved to another record, do not open. Layout: `RDSEAL2\n`, the
/// sealing key's id (16 hex digits), a random 7-byte nonce prefix, then the sealed segments (each 16 bytes longer than its
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
    pub(crate) fn new(ring: &CipherRing, id: Uuid, mut inner: R) -> io::Result<Self> {
        let (key_id, cipher) = ring.sealing();
        if key_id.len() != KEY_ID {
            return Err(io::Error::other("a key id is 16 hex digits"));
        }
        let mut nonce = [0u8; STREAM_NONCE];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = FILE_MAGIC.to_vec();
        out.extend_from_slice(key_id.as_bytes());
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
    pub(crate) fn new(ring: &CipherRing, id: Uuid, mut inner: R) -> io::Result<Self> {
        let mut magic = [0u8; 8];
        if read_full(&mut inner, &mut magic)? != magic.len() {
            return Err(unsealable());
        }
        let named = if &magic == FILE_MAGIC {
            let mut key_id = [0u8; KEY_ID];
            if read_full(&mut inner, &mut key_id)? != KEY_ID {
                return Err(unsealable());
            }
            let key_id = std::str::from_utf8(&key_id).map_err(|_| unsealable())?;
            Some(ring.by_id(key_id).ok_or_else(unsealable)?.clone())
        } else if &magic == FILE_MAGIC_V1 {
            None
        } else {
            return Err(unsealable());
        };
        let mut nonce = [0u8; STREAM_NONCE];
        if read_full(&mut inner, &mut nonce)? != STREAM_NONCE {
            return Err(unsealable());
        }
        let next = read_segment(&mut inner, SEGMENT + TAG)?;
        let mut reader = Self {
            inner,
            cipher: None,
            aad: *id.as_bytes(),
            next,
            out: Vec::new(),
            pos: 0,
        };
        match named {
            Some(cipher) => {
                reader.cipher = Some(DecryptorBE32::from_aead(cipher, (&nonce).into()));
            }
            None => reader.open_first_by_trial(ring, &nonce)?,
        }
        Ok(reader)
    }

    /// A version 1 file: opens its first segment under each key in turn, and goes on
    /// with the one it opens under.
    fn open_first_by_trial(
        &mut self,
        ring: &CipherRing,
        nonce: &[u8; STREAM_NONCE],
    ) -> io::Result<()> {
        let current = std::mem::take(&mut self.next);
        let following = read_segment(&mut self.inner, SEGMENT + TAG)?;
        for (_, cipher) in &ring.all {
            let mut decryptor = DecryptorBE32::from_aead(cipher.clone(), nonce.into());
            let payload = Payload {
                msg: &current,
                aad: &self.aad,
            };
            let opened = if following.is_empty() {
                decryptor.decrypt_last(payload).map(|plain| (plain, None))
            } else {
                decryptor
                    .decrypt_next(payload)
                    .map(|plain| (plain, Some(decryptor)))
            };
            if let Ok((plain, decryptor)) = opened {
                self.out = plain;
                self.pos = 0;
                self.cipher = decryptor;
                self.next = following;
                return Ok(());
            }
        }
        Err(unsealable())
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

    fn key(byte: u8) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&[byte; 32]).unwrap()
    }

    fn ring(byte: u8) -> CipherRing {
        CipherRing::single(&format!("{byte:016x}"), key(byte))
    }

    fn sealed(ring: &CipherRing, id: Uuid, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        SealingReader::new(ring, id, plain)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn opened(ring: &CipherRing, id: Uuid, sealed: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        OpeningReader::new(ring, id, sealed)?.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Bytes of a version 2 header: magic, key id, nonce prefix.
    const HEAD: usize = 8 + KEY_ID + STREAM_NONCE;

    #[test]
    fn a_file_opens_whole_and_only_whole() {
        let ring = ring(7);
        let id = Uuid::now_v7();
        for len in [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 17] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let file = sealed(&ring, id, &plain);
            assert_eq!(file.len(), HEAD + len + TAG * len.div_ceil(SEGMENT).max(1));
            assert_eq!(opened(&ring, id, &file).unwrap(), plain, "{len} bytes");
            assert!(opened(&ring, Uuid::now_v7(), &file).is_err());
            if len > SEGMENT {
                // Cut after a whole segment: the end is missing.
                assert!(opened(&ring, id, &file[..HEAD + SEGMENT + TAG]).is_err());
            }
            let mut changed = file.clone();
            let last = changed.len() - 1;
            changed[last] ^= 1;
            assert!(opened(&ring, id, &changed).is_err());
        }
    }

    #[test]
    fn after_a_rotation_new_files_name_the_new_key_and_old_ones_still_open() {
        let id = Uuid::now_v7();
        let plain: Vec<u8> = (0..SEGMENT + 5).map(|i| (i % 13) as u8).collect();
        let before = sealed(&ring(1), id, &plain);
        let rotated = CipherRing::new(
            ("0000000000000002".to_owned(), key(2)),
            vec![
                ("0000000000000002".to_owned(), key(2)),
                (format!("{:016x}", 1), key(1)),
            ],
        );
        let after = sealed(&rotated, id, &plain);
        assert_eq!(&after[8..8 + KEY_ID], b"0000000000000002");
        assert_eq!(opened(&rotated, id, &before).unwrap(), plain);
        assert_eq!(opened(&rotated, id, &after).unwrap(), plain);
        // A ring without the new key cannot open what it sealed.
        assert!(opened(&ring(1), id, &after).is_err());
        // Values: by their key's id, or by trying each.
        let (key_id, nonce, value) = ring(1).seal(id, b"secret").unwrap();
        assert_eq!(
            rotated.open(Some(&key_id), id, &nonce, &value).unwrap(),
            b"secret"
        );
        assert_eq!(rotated.open(None, id, &nonce, &value).unwrap(), b"secret");
        assert!(
            rotated
                .open(Some("ffffffffffffffff"), id, &nonce, &value)
                .is_err()
        );
    }

    #[test]
    fn a_file_sealed_before_keys_rotated_opens_under_whichever_key_sealed_it() {
        // Version 1: no key id; written by the service before this change.
        let id = Uuid::now_v7();
        for len in [3, SEGMENT + 9] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 7) as u8).collect();
            let v2 = sealed(&ring(1), id, &plain);
            let mut v1 = FILE_MAGIC_V1.to_vec();
            v1.extend_from_slice(&v2[8 + KEY_ID..]);
            let rotated = CipherRing::new(
                ("0000000000000002".to_owned(), key(2)),
                vec![
                    ("0000000000000002".to_owned(), key(2)),
                    (format!("{:016x}", 1), key(1)),
                ],
            );
            assert_eq!(opened(&rotated, id, &v1).unwrap(), plain, "{len} bytes");
            assert!(opened(&ring(3), id, &v1).is_err());
        }
    }
}
