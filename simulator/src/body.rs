//! The response body type: a whole body, or a body that breaks off after its first part (to
//! simulate a connection reset mid-response).

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

pub struct SimBody {
    data: Option<Bytes>,
    broken: bool,
}

impl SimBody {
    pub fn full(data: impl Into<Bytes>) -> Self {
        SimBody { data: Some(data.into()), broken: false }
    }

    /// Sends `first`, then fails, which makes the server drop the connection.
    pub fn broken_after(first: impl Into<Bytes>) -> Self {
        SimBody { data: Some(first.into()), broken: true }
    }
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if self.broken {
            self.broken = false;
            return Poll::Ready(Some(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "simulated reset"))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && !self.broken
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.data, self.broken) {
            (Some(d), false) => SizeHint::with_exact(d.len() as u64),
            (None, false) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}
