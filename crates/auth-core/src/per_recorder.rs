//! [`PerRecorder`]: metric handles held per `metrics` recorder, so that a request records
//! through a handle instead of looking its series up by name and labels each time. Shared by
//! tower-auth and tower-auth-oidc (which cannot depend on each other for it).

use std::sync::OnceLock;

/// A recorder as the facade hands it out: its address, size and alignment. `None` for a
/// recorder of no size, whose address says nothing (every boxed or constant one of an
/// alignment has the same), and which goes through the facade's lookup.
#[derive(Clone, Copy, PartialEq, Eq)]
struct RecorderId {
    address: usize,
    size: usize,
    align: usize,
}

impl RecorderId {
    fn of(recorder: &dyn metrics::Recorder) -> Option<Self> {
        let size = std::mem::size_of_val(recorder);
        (size != 0).then(|| Self {
            address: std::ptr::from_ref(recorder).cast::<()>() as usize,
            size,
            align: std::mem::align_of_val(recorder),
        })
    }
}

/// How many recorders handles are kept for: the application's global one and a few local
/// ones (tests).
const SLOTS: usize = 4;

/// Metric handles that register their series with the recorder in scope.
#[doc(hidden)]
pub trait RegisterHandles {
    /// Registers every series of the set with the recorder in scope.
    fn register() -> Self;
}

/// Metric handles, one set `H` per recorder recorded into, registered (by `H::register`) the
/// first time a request is recorded with that recorder in scope (`metrics::with_recorder`:
/// the thread's local recorder, else the global one, else the facade's no-op one).
///
/// So an application may install its recorder before or after building the layer: requests
/// recorded before the installation went to the facade's no-op recorder (and are lost, as
/// with any `metrics` user), the first one after it registers the series with the new
/// recorder and every later one uses those handles. A test's local recorder
/// (`metrics::with_local_recorder`) gets its own handles the same way. Past four recorders
/// the caller falls back to the facade's per-call lookup, which is slower but records into
/// the recorder in scope; so does a recorder of no size (the facade's no-op one, or an
/// application's forwarding to statics), which cannot be told from another by its address.
/// A recorder is recognised by its address, size and alignment: a local recorder dropped and
/// replaced by another of its size at the same address while the same layer serves would
/// keep the first one's handles, so a test builds its layer inside the scope of its recorder;
/// the global recorder lives as long as the process and is never mistaken.
#[doc(hidden)]
pub struct PerRecorder<H> {
    slots: [OnceLock<(RecorderId, H)>; SLOTS],
}

impl<H> Default for PerRecorder<H> {
    fn default() -> Self {
        Self {
            slots: Default::default(),
        }
    }
}

impl<H> PerRecorder<H> {
    /// How many recorders get handles; later ones go through the facade's lookup.
    pub const SLOTS: usize = SLOTS;

    /// How many recorders hold handles.
    pub fn held(&self) -> usize {
        self.slots.iter().filter(|s| s.get().is_some()).count()
    }
}

impl<H: RegisterHandles> PerRecorder<H> {
    /// The handles for the recorder in scope, registering them on first use; `None` for a
    /// recorder of no size, or once every slot holds another recorder's.
    pub fn with_handles<T>(&self, f: impl FnOnce(Option<&H>) -> T) -> T {
        metrics::with_recorder(|recorder| {
            let Some(current) = RecorderId::of(recorder) else {
                return f(None);
            };
            for slot in &self.slots {
                let (id, handles) = slot.get_or_init(|| (current, H::register()));
                if *id == current {
                    return f(Some(handles));
                }
            }
            f(None)
        })
    }
}

impl<H> std::fmt::Debug for PerRecorder<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerRecorder")
            .field("held", &self.held())
            .finish()
    }
}
