//! Connects to the sync server with the workspace token in the
//! `Authorization` header. A 401/403 is a permanent failure, so a wrong
//! token fails fast with a clear message instead of retrying forever.

use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use samod::{DialError, Dialer, Transport};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

/// Also used by the sync bench to drive many clients.
pub struct TokenDialer {
    pub url: url::Url,
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the sync server refused the token (HTTP {0}): check it, or ask for a new one")]
pub struct Refused(pub u16);

impl Dialer for TokenDialer {
    type Error = Refused;

    fn url(&self) -> url::Url {
        self.url.clone()
    }

    fn connect(&self) -> BoxFuture<'static, Result<Transport, DialError<Refused>>> {
        let (url, token) = (self.url.clone(), self.token.clone());
        Box::pin(async move {
            let mut req = url
                .as_str()
                .into_client_request()
                .map_err(DialError::transient)?;
            let value = format!("Bearer {token}")
                .parse()
                .map_err(DialError::transient)?;
            req.headers_mut().insert("Authorization", value);
            match tokio_tungstenite::connect_async(req).await {
                Ok((ws, _)) => {
                    let (sink, stream) = ws.split();
                    let stream = stream.filter_map(|m| async move {
                        match m {
                            Ok(Message::Binary(b)) => Some(Ok(b.to_vec())),
                            Ok(_) => None,
                            Err(e) => Some(Err(e)),
                        }
                    });
                    let sink = sink.with(|b: Vec<u8>| async move {
                        Ok::<_, tungstenite::Error>(Message::Binary(b.into()))
                    });
                    Ok(Transport::new(Box::pin(stream), Box::pin(sink)))
                }
                Err(tungstenite::Error::Http(r)) if matches!(r.status().as_u16(), 401 | 403) => {
                    Err(DialError::PermanentFailure(Refused(r.status().as_u16())))
                }
                Err(e) => Err(DialError::transient(e)),
            }
        })
    }
}
