//! Reading an evidence upload: `multipart/form-data` with one `file` part and a `kind`
//! field. The file is read as a stream and abandoned as soon as it passes the limit, so
//! an oversized upload never sits whole in memory.

use actix_multipart::{Field, Multipart};
use actix_web::HttpRequest;
use actix_web::web::Payload;
use futures_util::StreamExt;
use rightsdesk_core::ErrorCode;
use rightsdesk_core::evidence::Upload;
use serde_json::json;

use crate::error::ApiError;

/// The most parts a form may have, and the longest text field, in bytes.
const MAX_PARTS: usize = 8;
const MAX_TEXT_BYTES: usize = 1024;

fn invalid(problem: &str) -> ApiError {
    ApiError(
        rightsdesk_core::Error::new(
            ErrorCode::InvalidUpload,
            "the body must be multipart/form-data with a `file` part and a `kind` field",
        )
        .with_details(json!({ "problem": problem })),
    )
}

/// Reads the form; files over `max_bytes` are refused with `evidence_too_large`.
pub async fn read(req: &HttpRequest, payload: Payload, max_bytes: u64) -> Result<Upload, ApiError> {
    let is_form = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !is_form {
        return Err(invalid("the Content-Type is not multipart/form-data"));
    }
    let mut form = Multipart::new(req.headers(), payload);
    let mut upload = Upload {
        kind: None,
        file_name: None,
        bytes: Vec::new(),
    };
    let mut has_file = false;
    let mut parts = 0;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| invalid(&e.to_string()))?;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(invalid("too many parts"));
        }
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" if has_file => return Err(invalid("only one `file` part per upload")),
            "file" => {
                has_file = true;
                upload.file_name = field
                    .content_disposition()
                    .and_then(|d| d.get_filename())
                    .map(str::to_owned);
                upload.bytes = collect(&mut field, max_bytes).await?;
            }
            "kind" => {
                let bytes = collect(&mut field, MAX_TEXT_BYTES as u64)
                    .await
                    .map_err(|_| invalid("the `kind` field is too long"))?;
                let text =
                    String::from_utf8(bytes).map_err(|_| invalid("`kind` is not UTF-8 text"))?;
                upload.kind = Some(text);
            }
            other => {
                return Err(invalid(&format!(
                    "unknown part {other:?}: expected `file` and `kind`"
                )));
            }
        }
    }
    if !has_file {
        return Err(invalid("the `file` part is missing"));
    }
    if upload.bytes.is_empty() {
        return Err(invalid("the file is empty"));
    }
    Ok(upload)
}

/// The bytes of one part, at most `max` of them.
async fn collect(field: &mut Field, max: u64) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|e| invalid(&e.to_string()))?;
        if (bytes.len() + chunk.len()) as u64 > max {
            return Err(ApiError(rightsdesk_core::evidence::too_large(max)));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
