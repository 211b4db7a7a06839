//! A page's body as it arrives: chunks from the network (or the response cache), read one at a
//! time, so that a page of any size never has to be held whole. A body short enough is also
//! recorded for the response cache while it streams by.

use super::error::{self, ApiError};
use super::{cache, Stats};
use bytes::Bytes;
use std::collections::VecDeque;

/// The most bytes of a page kept for the response cache: a larger page is streamed, not cached.
pub const CACHE_RECORD_LIMIT: usize = 8 * 1024 * 1024;

pub struct PageBody {
    /// Chunks already read (by a task that fetched the page ahead, or from the cache).
    prefix: VecDeque<Bytes>,
    /// The rest, still on the network.
    response: Option<reqwest::Response>,
    path: String,
    /// (cache key, bytes so far) while the body may go into the cache.
    recording: Option<(cache::Key, Vec<u8>)>,
}

impl PageBody {
    pub(super) fn live(response: reqwest::Response, path: &str, recording: Option<cache::Key>) -> PageBody {
        PageBody {
            prefix: VecDeque::new(),
            response: Some(response),
            path: path.to_string(),
            recording: recording.map(|k| (k, Vec::new())),
        }
    }

    pub(super) fn cached(body: Bytes, path: &str) -> PageBody {
        PageBody { prefix: VecDeque::from([body]), response: None, path: path.to_string(), recording: None }
    }

    /// The length the answer announced, if it did (a hint, never trusted with an allocation).
    pub fn announced(&self) -> Option<u64> {
        self.response.as_ref().and_then(|r| r.content_length())
    }

    /// The next chunk; `None` at the end of the body.
    pub async fn chunk(&mut self, stats: &mut Stats) -> Result<Option<Bytes>, ApiError> {
        match self.prefix.pop_front() {
            Some(chunk) => Ok(Some(chunk)),
            None => self.network_chunk(stats).await,
        }
    }

    async fn network_chunk(&mut self, stats: &mut Stats) -> Result<Option<Bytes>, ApiError> {
        let Some(response) = &mut self.response else { return Ok(None) };
        let chunk = response.chunk().await.map_err(|e| ApiError::transport(&self.path, &e))?;
        match &chunk {
            Some(c) => {
                stats.bytes += c.len() as u64;
                if let Some((_, kept)) = &mut self.recording {
                    if kept.len() + c.len() <= CACHE_RECORD_LIMIT {
                        kept.extend_from_slice(c);
                    } else {
                        self.recording = None;
                    }
                }
            }
            None => self.response = None,
        }
        Ok(chunk)
    }

    /// Reads up to `limit` bytes ahead into memory (for a page fetched before its turn), so
    /// that its answer travels while the page before it is read; they are handed out first.
    pub async fn read_ahead(&mut self, limit: usize, stats: &mut Stats) -> Result<(), ApiError> {
        let mut read = 0;
        while read < limit {
            let Some(chunk) = self.network_chunk(stats).await? else { break };
            read += chunk.len();
            self.prefix.push_back(chunk);
        }
        Ok(())
    }

    /// The whole body was read and was a well-formed page: keep it for the response cache.
    pub fn completed(self) {
        if let (Some((key, body)), None) = (self.recording, self.response) {
            cache::put(key, Bytes::from(body));
        }
    }

    /// The whole body, at most `limit` bytes (an error body, a single object).
    pub async fn collect(mut self, limit: usize, stats: &mut Stats) -> Result<Bytes, ApiError> {
        let too_large = ApiError::TooLarge { path: crate::text::excerpt(&self.path, error::PATH_SHOWN), limit };
        // Refused on the announcement alone, which is never trusted with an allocation.
        if self.response.as_ref().and_then(|r| r.content_length()).is_some_and(|n| n > limit as u64) {
            return Err(too_large);
        }
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk(stats).await? {
            if body.len() + chunk.len() > limit {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        let body = Bytes::from(body);
        if let Some((key, _)) = self.recording.take() {
            if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() {
                cache::put(key, body.clone());
            }
        }
        Ok(body)
    }
}
