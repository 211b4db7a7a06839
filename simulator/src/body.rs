//! The response body type: a whole body, or a body that breaks off after its first part (to
//! simulate a connection reset mid-response).

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

pub struct SimBody {
    data: Option<Bytes>,
    broken: bool,
    /// The length announced in `Content-Length`, when it is not the real one.
    claimed: Option<u64>,
}

impl SimBody {
    pub fn full(data: impl Into<Bytes>) -> Self {
        SimBody { data: Some(data.into()), broken: false, claimed: None }
    }

    /// Announces `claimed` bytes, sends `first`, then sends nothing more (the client is
    /// expected to give up on the announcement alone).
    pub fn claiming(claimed: u64, first: impl Into<Bytes>) -> Self {
        SimBody { data: Some(first.into()), broken: false, claimed: Some(claimed) }
    }

    /// Sends `first`, then fails, which makes the server drop the connection.
    pub fn broken_after(first: impl Into<Bytes>) -> Self {
        SimBody { data: Some(first.into()), broken: true, claimed: None }
    }
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if self.claimed.is_some() {
            return Poll::Pending;
        }
        if self.broken {
            self.broken = false;
            return Poll::Ready(Some(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "simulated reset"))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && !self.broken && self.claimed.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if let Some(n) = self.claimed {
            return SizeHint::with_exact(n);
        }
        match (&self.data, self.broken) {
            (Some(d), false) => SizeHint::with_exact(d.len() as u64),
            (None, false) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}
