//! A client for the admin API on the Unix socket.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use crate::api::ApiError;

/// What went wrong talking to the server. Each kind has its own exit code,
/// so scripts can tell "moat is down" from "no such app".
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("moat is not running (no server at {}); start it with `moat serve`, or point --data-dir/--socket at the right place", .socket.display())]
    NotRunning { socket: PathBuf },
    #[error("permission denied on {}: the admin socket is only open to the user moat runs as; run this command as that user", .socket.display())]
    PermissionDenied { socket: PathBuf },
    #[error("{0}")]
    NotFound(String),
    #[error("the server refused the request: {0}")]
    Refused(String),
    #[error("talking to moat over {}: {message}", .socket.display())]
    Protocol { socket: PathBuf, message: String },
}

impl ClientError {
    /// The CLI's exit code for this error (documented in the README).
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::NotRunning { .. } => 3,
            ClientError::PermissionDenied { .. } => 4,
            ClientError::NotFound(_) => 5,
            ClientError::Refused(_) | ClientError::Protocol { .. } => 1,
        }
    }
}

pub struct AdminClient {
    socket: PathBuf,
}

impl AdminClient {
    pub fn unix(socket: impl Into<PathBuf>) -> Self {
        AdminClient {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET path`, decoded as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let protocol = |message: String| ClientError::Protocol {
            socket: self.socket.clone(),
            message,
        };
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied => ClientError::PermissionDenied {
                    socket: self.socket.clone(),
                },
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    ClientError::NotRunning {
                        socket: self.socket.clone(),
                    }
                }
                _ => protocol(e.to_string()),
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| protocol(e.to_string()))?;
        tokio::spawn(conn);
        let req = http::Request::get(path)
            .header(http::header::HOST, "moat")
            .body(Empty::<Bytes>::new())
            .map_err(|e| protocol(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| protocol(e.to_string()))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| protocol(e.to_string()))?
            .to_bytes();
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| protocol(format!("unexpected answer: {e}")));
        }
        let message = serde_json::from_slice::<ApiError>(&body)
            .map(|e| e.error)
            .unwrap_or_else(|_| format!("{status}: {}", String::from_utf8_lossy(&body)));
        Err(if status == http::StatusCode::NOT_FOUND {
            ClientError::NotFound(message)
        } else {
            ClientError::Refused(message)
        })
    }
}
