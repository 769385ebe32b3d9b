//! The header at the start of every shared section, and the features
//! (barrier mode) negotiated in the handshake.

use std::sync::atomic::Ordering;

use super::proto::{self, SectionLayout};
use crate::ring::Fences;
use crate::sys::shm::Mapping;

/// The optional features this process offers.
pub(super) fn own_features() -> u16 {
    let barrier = if crate::sys::barrier::register() {
        proto::FEATURE_MEMBARRIER
    } else {
        0
    };
    barrier | proto::FEATURE_READINESS
}

pub(super) fn fences_for(features: u16) -> Fences {
    if features & proto::FEATURE_MEMBARRIER != 0 {
        Fences::Asymmetric
    } else {
        Fences::Symmetric
    }
}

fn header_words(layout: &SectionLayout) -> [u32; 6] {
    [
        proto::SECTION_MAGIC as u32,
        (proto::SECTION_MAGIC >> 32) as u32,
        u32::from(proto::VERSION),
        layout.c2s.capacity,
        layout.s2c.capacity,
        layout.c2s.buffer_size as u32,
    ]
}

pub(super) fn write_section_header(map: &Mapping, layout: &SectionLayout) {
    for (i, w) in header_words(layout).iter().enumerate() {
        map.atomic_u32(i * 4).store(*w, Ordering::Relaxed);
    }
}

pub(super) fn check_section_header(map: &Mapping, layout: &SectionLayout) -> bool {
    header_words(layout)
        .iter()
        .enumerate()
        .all(|(i, w)| map.atomic_u32(i * 4).load(Ordering::Relaxed) == *w)
}
