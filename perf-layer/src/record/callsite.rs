//! A callsite's identity on the span path.

use tracing_core::Metadata;

/// A callsite's key: the address of its `'static` metadata, unique per
/// callsite. Building it never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CallsiteKey(usize);

impl CallsiteKey {
    pub(crate) fn of(meta: &'static Metadata<'static>) -> Self {
        CallsiteKey(meta as *const Metadata<'static> as usize)
    }
}
