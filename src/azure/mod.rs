//! Talking to Microsoft: token provider, one HTTP pipeline, Graph and ARM paging.
