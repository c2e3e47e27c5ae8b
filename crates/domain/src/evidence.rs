//! Evidence (SPEC §2): the documents that prove a requester may act — an ID document, a
//! death certificate, proof of relationship, a power of attorney, proof of
//! guardianship — and the file types accepted.

use crate::kinds::{RequestKind, string_enum};

string_enum! {
    /// What an evidence file is meant to prove.
    EvidenceKind {
        IdDocument = "id_document",
        DeathCertificate = "death_certificate",
        RelationshipProof = "relationship_proof",
        PowerOfAttorney = "power_of_attorney",
        GuardianProof = "guardian_proof",
        Other = "other",
    }
}

string_enum! {
    /// An accepted file type, recognised from the file's first bytes, never from the
    /// name or the type the client declares.
    FileType {
        Pdf = "application/pdf",
        Jpeg = "image/jpeg",
        Png = "image/png",
    }
}

impl FileType {
    /// The type of a file that starts with `head`, when it is one accepted.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(b"%PDF-") {
            Some(Self::Pdf)
        } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else {
            None
        }
    }

    /// The file-name extension used when the file is downloaded.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }
}

string_enum! {
    /// An officer's decision on one evidence file.
    Review {
        Accepted = "accepted",
        Rejected = "rejected",
    }
}

/// Whether a request can be verified only by an officer's review of documents: a
/// one-time code proves that the requester reads the mailbox or phone they gave, not
/// that they may act for a deceased person, a minor or a principal (SPEC §2, §5:
/// "proportionate to the kind"). `acting_for` is whether the requester files as a
/// guardian or an agent.
pub fn needs_document_review(kind: RequestKind, acting_for: bool) -> bool {
    kind == RequestKind::NextOfKin || acting_for
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_types_come_from_the_bytes() {
        assert_eq!(FileType::sniff(b"%PDF-1.7\n..."), Some(FileType::Pdf));
        assert_eq!(
            FileType::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Some(FileType::Jpeg)
        );
        assert_eq!(
            FileType::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(FileType::Png)
        );
        for other in [
            &b"GIF89a"[..],
            b"<html>",
            b"PK\x03\x04",
            b"",
            b"%PD",
            b"MZ\x90\0",
        ] {
            assert_eq!(FileType::sniff(other), None, "{other:?}");
        }
    }

    #[test]
    fn next_of_kin_guardians_and_agents_need_documents() {
        assert!(needs_document_review(RequestKind::NextOfKin, false));
        assert!(needs_document_review(RequestKind::Access, true));
        assert!(!needs_document_review(RequestKind::Access, false));
        assert!(!needs_document_review(RequestKind::Deletion, false));
    }
}
