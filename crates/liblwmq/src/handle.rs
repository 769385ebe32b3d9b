//! The handle registry: every handle given to C is a value looked up here.
//!
//! A handle is not a pointer. It encodes a slot index, the slot's
//! generation and the kind of object:
//! `generation << 32 | index << 3 | kind`. A lookup checks all three, so a
//! null, destroyed, forged or wrong-kind handle is reported as `E_HANDLE`
//! with a message, and the library never dereferences a value that came
//! from C as a handle. Generations start at 1, so no value below 2^32 is
//! ever valid. A lookup takes a read lock and clones an `Arc`; creating and
//! destroying a handle takes the write lock. Objects are dropped after the
//! lock is released, because dropping a message can run a C callback that
//! may call back into the library.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::api::{ChannelObj, MessageObj, QueueObj, TransportObj};
use crate::error::{Error, Result, E_HANDLE};

/// The kind of a handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Channel = 1,
    SendQueue = 2,
    Transport = 3,
    Message = 4,
}

impl Kind {
    fn from_tag(tag: u64) -> Option<Kind> {
        Some(match tag {
            1 => Kind::Channel,
            2 => Kind::SendQueue,
            3 => Kind::Transport,
            4 => Kind::Message,
            _ => return None,
        })
    }
    pub(crate) fn c_name(self) -> &'static str {
        match self {
            Kind::Channel => "LMQ_CHANNEL",
            Kind::SendQueue => "LMQ_SENDQUEUE",
            Kind::Transport => "LMQ_TRANSPORT",
            Kind::Message => "LMQ_MESSAGE",
        }
    }
}

/// A live object behind a handle.
#[derive(Clone)]
pub(crate) enum Object {
    Channel(Arc<ChannelObj>),
    SendQueue(Arc<QueueObj>),
    Transport(Arc<TransportObj>),
    Message(Arc<MessageObj>),
}

impl Object {
    fn kind(&self) -> Kind {
        match self {
            Object::Channel(_) => Kind::Channel,
            Object::SendQueue(_) => Kind::SendQueue,
            Object::Transport(_) => Kind::Transport,
            Object::Message(_) => Kind::Message,
        }
    }
}

struct Slot {
    generation: u32,
    object: Option<Object>,
}

struct Registry {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

const MAX_SLOTS: usize = 1 << 29;

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    slots: Vec::new(),
    free: Vec::new(),
});

/// Registers `object`; returns its handle value.
pub(crate) fn insert(object: Object) -> Result<usize> {
    let kind = object.kind() as u64;
    let mut r = REGISTRY.write();
    let index = match r.free.pop() {
        Some(i) => i as usize,
        None => {
            if r.slots.len() >= MAX_SLOTS {
                return Err(Error::new(
                    crate::error::E_OUTOFMEMORY,
                    "too many live handles (2^29)",
                ));
            }
            r.slots.push(Slot {
                generation: 1,
                object: None,
            });
            r.slots.len() - 1
        }
    };
    let slot = &mut r.slots[index];
    slot.object = Some(object);
    let value = (u64::from(slot.generation) << 32) | ((index as u64) << 3) | kind;
    Ok(value as usize)
}

fn describe(value: usize) -> String {
    format!("{value:#x}")
}

fn check(r: &Registry, kind: Kind, value: usize) -> Result<(usize, &Object)> {
    let bad = |why: String| Err(Error::new(E_HANDLE, why));
    if value == 0 {
        return bad(format!("the {} handle is NULL", kind.c_name()));
    }
    let v = value as u64;
    let generation = (v >> 32) as u32;
    let index = ((v & 0xFFFF_FFFF) >> 3) as usize;
    let tag_kind = Kind::from_tag(v & 7);
    let slot = r.slots.get(index);
    match (tag_kind, slot) {
        (Some(k), Some(slot)) if generation != 0 && slot.generation == generation => {
            match &slot.object {
                Some(o) if o.kind() == kind => Ok((index, o)),
                Some(o) => bad(format!(
                    "handle {} is a {}, not a {} (wrong handle kind)",
                    describe(value),
                    o.kind().c_name(),
                    kind.c_name()
                )),
                None if k != kind => bad(format!(
                    "handle {} is a destroyed {}, not a {} (wrong handle kind)",
                    describe(value),
                    k.c_name(),
                    kind.c_name()
                )),
                None => bad(format!(
                    "{} handle {} was destroyed",
                    kind.c_name(),
                    describe(value)
                )),
            }
        }
        (Some(k), Some(_)) if generation != 0 => bad(format!(
            "{} handle {} was destroyed (its slot was reused)",
            k.c_name(),
            describe(value)
        )),
        _ => bad(format!(
            "{} handle {} is not a handle this library created (forged or corrupted)",
            kind.c_name(),
            describe(value)
        )),
    }
}

/// The object behind a handle of `kind`.
pub(crate) fn get(kind: Kind, value: usize) -> Result<Object> {
    let r = REGISTRY.read();
    check(&r, kind, value).map(|(_, o)| o.clone())
}

/// Unregisters a handle of `kind`; returns its object (drop it after).
pub(crate) fn remove(kind: Kind, value: usize) -> Result<Object> {
    let mut r = REGISTRY.write();
    let index = check(&r, kind, value)?.0;
    let slot = &mut r.slots[index];
    let object = slot.object.take();
    slot.generation = slot.generation.checked_add(1).unwrap_or(1);
    r.free.push(index as u32);
    object.ok_or_else(|| Error::new(E_HANDLE, "handle vanished"))
}

/// Unregisters every handle (the last `LmqTerminate`); returns the objects
/// so that the caller drops them after the lock is released.
pub(crate) fn clear() -> Vec<Object> {
    let mut r = REGISTRY.write();
    let mut out = Vec::new();
    let mut free = Vec::new();
    for (i, slot) in r.slots.iter_mut().enumerate() {
        if let Some(o) = slot.object.take() {
            out.push(o);
            slot.generation = slot.generation.checked_add(1).unwrap_or(1);
        }
        free.push(i as u32);
    }
    free.reverse();
    r.free = free;
    out
}
