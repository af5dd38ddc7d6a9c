//! An S3-compatible bucket as backup storage, through `object_store`
//! (reqwest on rustls with aws-lc-rs, the one TLS stack). The backup code
//! is synchronous (pg_dump's pipe, the age streams, child processes), so
//! each bucket owns a small runtime of its own — one worker thread, which
//! uploads parts in the background while the caller's thread produces the
//! next — and every call blocks on it. Callers run on plain threads (the
//! CLI, or `serve`'s blocking pool), never inside an async task.
//!
//! An object is uploaded as a multipart upload of parts of [`PART_SIZE`],
//! at most [`PARTS_IN_FLIGHT`] of them at once, so memory holds a few
//! parts, never the object: S3 shows an object under its key only once
//! the upload is completed, and an upload that fails or is dropped is
//! aborted (its parts deleted). A killed process leaves an incomplete
//! upload, which no listing of objects shows; a bucket lifecycle rule
//! (`AbortIncompleteMultipartUpload`) reclaims its parts.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ClientOptions, ObjectStoreExt as _, RetryConfig, WriteMultipart};

use super::BackupError;

/// A part of a multipart upload: with S3's 10,000 parts, objects up to
/// 160 GiB.
pub const PART_SIZE: usize = 16 << 20;

/// Parts uploading at once while the next one fills.
pub const PARTS_IN_FLIGHT: usize = 2;

/// Where and as whom to reach a bucket. The credentials come from the
/// environment's vault and are never shown (`Debug` leaves them out).
#[derive(Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// Slash-separated, no slash at either end; empty for the bucket's root.
    pub prefix: String,
    /// An S3-compatible server's base URL; none for AWS.
    pub endpoint: Option<String>,
    pub region: String,
    /// Whether an `http://` endpoint is allowed (the config says so explicitly).
    pub allow_http: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("allow_http", &self.allow_http)
            .finish_non_exhaustive()
    }
}

/// A bucket (and prefix) with its client and the runtime it runs on.
pub(crate) struct Bucket {
    store: AmazonS3,
    runtime: tokio::runtime::Runtime,
    bucket: String,
    prefix: String,
    /// The endpoint as messages name it.
    endpoint: String,
    /// What must never appear in a message: the credentials.
    hidden: [String; 2],
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Bucket {
    pub(crate) fn connect(s: S3Settings) -> Result<Self, BackupError> {
        let endpoint = s
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", s.region));
        let fail = |reason: String| BackupError::S3 {
            what: "set up the client of",
            location: format!("s3://{}", s.bucket),
            endpoint: endpoint.clone(),
            reason,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rollway-s3")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start its runtime: {e}")))?;
        // Bounded retries: an unreachable server fails a backup in about a
        // minute rather than object_store's default three.
        let retry = RetryConfig {
            max_retries: 4,
            retry_timeout: Duration::from_secs(60),
            ..RetryConfig::default()
        };
        let client = ClientOptions::new()
            .with_allow_http(s.allow_http)
            .with_connect_timeout(Duration::from_secs(10))
            // A part of 16 MiB at 100 kB/s still fits.
            .with_timeout(Duration::from_secs(300));
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&s.bucket)
            .with_region(&s.region)
            .with_access_key_id(&s.access_key_id)
            .with_secret_access_key(&s.secret_access_key)
            .with_allow_http(s.allow_http)
            .with_retry(retry)
            .with_client_options(client);
        if let Some(e) = &s.endpoint {
            builder = builder.with_endpoint(e).with_virtual_hosted_style_request(false);
        }
        let hidden = [s.access_key_id.clone(), s.secret_access_key.clone()];
        let store = builder.build().map_err(|e| fail(redact(&e.to_string(), &hidden)))?;
        Ok(Self {
            store,
            runtime,
            bucket: s.bucket,
            prefix: s.prefix,
            endpoint,
            hidden,
        })
    }

    /// `s3://BUCKET/PREFIX`, as the storage is named.
    pub(crate) fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    fn key(&self, name: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(name)
        } else {
            Key::from(format!("{}/{name}", self.prefix))
        }
    }

    /// `s3://BUCKET/KEY`: the recorded location of object `name`.
    pub(crate) fn location(&self, name: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(name))
    }

    /// An object_store error as a sentence without the credentials, with
    /// what to do when the server refused them.
    fn reason(&self, e: &object_store::Error) -> String {
        let text = short_xml(&redact(&e.to_string(), &self.hidden));
        let refused = matches!(
            e,
            object_store::Error::Unauthenticated { .. } | object_store::Error::PermissionDenied { .. }
        ) || [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
            "403 Forbidden",
        ]
        .iter()
        .any(|w| text.contains(w));
        if refused {
            format!(
                "{text}; the server refused the credentials: check the variables named by s3_access_key_secret and s3_secret_key_secret, and that they may use the bucket"
            )
        } else {
            text
        }
    }

    fn error(&self, what: &'static str, name: &str, e: &object_store::Error) -> BackupError {
        BackupError::S3 {
            what,
            location: self.location(name),
            endpoint: self.endpoint.clone(),
            reason: self.reason(e),
        }
    }

    /// Starts the multipart upload of object `name`.
    pub(crate) fn upload(self: &Arc<Self>, name: &str) -> Result<Upload, BackupError> {
        let key = self.key(name);
        let upload = self
            .runtime
            .block_on(self.store.put_multipart(&key))
            .map_err(|e| self.error("start uploading", name, &e))?;
        Ok(Upload {
            bucket: self.clone(),
            name: name.to_owned(),
            writer: Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE)),
        })
    }

    /// The object's bytes as a stream read in the caller's thread; none
    /// when there is no such object.
    pub(crate) fn open(self: &Arc<Self>, name: &str) -> Result<Option<Download>, BackupError> {
        match self.runtime.block_on(self.store.get(&self.key(name))) {
            Ok(got) => Ok(Some(Download {
                bucket: self.clone(),
                stream: got.into_stream(),
                chunk: Bytes::new(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("read", name, &e)),
        }
    }

    pub(crate) fn exists(&self, name: &str) -> Result<bool, BackupError> {
        match self.runtime.block_on(self.store.head(&self.key(name))) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error("look up", name, &e)),
        }
    }

    /// Deletes object `name`; one already gone is not an error.
    pub(crate) fn remove(&self, name: &str) -> Result<(), BackupError> {
        match self.runtime.block_on(self.store.delete(&self.key(name))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("delete", name, &e)),
        }
    }

    /// An error of writing or reading object `name`'s stream (whose
    /// `io::Error` already says what the server answered).
    pub(crate) fn stream_error(&self, what: &'static str, name: &str, source: &io::Error) -> BackupError {
        BackupError::S3 {
            what,
            location: self.location(name),
            endpoint: self.endpoint.clone(),
            reason: redact(&source.to_string(), &self.hidden),
        }
    }
}

/// An S3 error document at the end of `text` cut to its code and message
/// (`… 403 Forbidden: InvalidAccessKeyId: The AWS Access Key Id …`).
fn short_xml(text: &str) -> String {
    let Some(start) = text.find("<?xml") else {
        return text.to_owned();
    };
    let tag = |name: &str| -> Option<&str> {
        let open = format!("<{name}>");
        let from = text[start..].find(&open)? + start + open.len();
        let to = text[from..].find(&format!("</{name}>"))? + from;
        Some(&text[from..to])
    };
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("{}{code}: {message}", &text[..start]),
        (Some(code), None) => format!("{}{code}", &text[..start]),
        _ => text.to_owned(),
    }
}

/// `text` with every credential replaced.
fn redact(text: &str, hidden: &[String]) -> String {
    hidden
        .iter()
        .filter(|h| !h.is_empty())
        .fold(text.to_owned(), |t, h| t.replace(h.as_str(), "[credential]"))
}

/// A multipart upload being written; aborted on drop unless committed.
pub(crate) struct Upload {
    bucket: Arc<Bucket>,
    name: String,
    writer: Option<WriteMultipart>,
}

impl Upload {
    /// Uploads the last part and completes the upload: only now does the
    /// object appear under its key. A failure aborts the upload.
    pub(crate) fn commit(mut self) -> Result<String, BackupError> {
        let b = self.bucket.clone();
        let writer = self.writer.take().ok_or_else(|| BackupError::S3 {
            what: "complete the upload of",
            location: b.location(&self.name),
            endpoint: b.endpoint.clone(),
            reason: "the upload is gone".into(),
        })?;
        b.runtime
            .block_on(writer.finish())
            .map_err(|e| b.error("complete the upload of", &self.name, &e))?;
        Ok(b.location(&self.name))
    }
}

impl Write for Upload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let b = self.bucket.clone();
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| io::Error::other("the upload is gone"))?;
        // Back pressure: no more than PARTS_IN_FLIGHT parts uploading (and
        // a part uploading in the background surfaces its error here).
        b.runtime
            .block_on(writer.wait_for_capacity(PARTS_IN_FLIGHT))
            .map_err(|e| io::Error::other(b.reason(&e)))?;
        // A full part starts uploading on the bucket's runtime.
        let _entered = b.runtime.enter();
        writer.write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            // Best effort: the parts go; an incomplete upload is never an object.
            let _ = self.bucket.runtime.block_on(writer.abort());
        }
    }
}

/// An object's bytes read as they arrive.
pub(crate) struct Download {
    bucket: Arc<Bucket>,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.bucket.runtime.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(b)) => self.chunk = b,
                Some(Err(e)) => return Err(io::Error::other(self.bucket.reason(&e))),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_document_is_cut_to_its_code_and_message() {
        let check = |text: &str, expected: &str| assert_eq!(short_xml(text), expected);
        check(
            "403 Forbidden: <?xml version=\"1.0\"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>No.</Message><RequestId>x</RequestId></Error>",
            "403 Forbidden: SignatureDoesNotMatch: No.",
        );
        check(
            "403 Forbidden: <?xml?><Error><Code>AccessDenied</Code></Error>",
            "403 Forbidden: AccessDenied",
        );
        check("connection refused", "connection refused");
        check("500: <?xml?><Other/>", "500: <?xml?><Other/>");
    }

    #[test]
    fn credentials_never_show() {
        let hidden = ["AKIDEXAMPLE".to_owned(), "s3cr3t/key+x".to_owned()];
        assert_eq!(
            redact("key AKIDEXAMPLE and s3cr3t/key+x refused", &hidden),
            "key [credential] and [credential] refused"
        );
        let s = S3Settings {
            bucket: "b".into(),
            prefix: String::new(),
            endpoint: None,
            region: "us-east-1".into(),
            allow_http: false,
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "s3cr3t/key+x".into(),
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("AKIDEXAMPLE") && !shown.contains("s3cr3t"), "{shown}");
    }
}
