//! Postgres varlena values laid out in a Rust buffer, to be copied into Postgres memory as
//! they are. A value starts at an 8-byte aligned offset of its buffer, and the buffer's rows
//! are copied to MAXALIGNed allocations, so alignment within a value (jsonb's containers and
//! numerics are aligned to 4 bytes from the value's start) survives the copy.

#[cfg(not(target_endian = "little"))]
compile_error!("the varlena headers written here are little-endian ones");

/// The largest varlena: the 4-byte header keeps 30 bits of length.
const MAX_VARLENA: usize = 0x3FFF_FFFF;

/// The 4-byte header (`SET_VARSIZE`) of a value of `len` bytes, header included.
pub fn header(len: usize) -> Option<[u8; 4]> {
    (len <= MAX_VARLENA).then(|| ((len as u32) << 2).to_le_bytes())
}

/// Pads `out` with zeros until its length is a multiple of `align` counted from `base`.
pub fn align_to(out: &mut Vec<u8>, base: usize, align: usize) {
    let over = (out.len() - base) % align;
    if over != 0 {
        out.resize(out.len() + align - over, 0);
    }
}

/// Starts a varlena at the next 8-byte aligned offset of `out`; returns where it starts.
pub fn begin_varlena(out: &mut Vec<u8>) -> usize {
    align_to(out, 0, 8);
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    start
}

/// Writes the header of the varlena begun at `start`; `false` if it is too long for one.
pub fn end_varlena(out: &mut [u8], start: usize) -> bool {
    match header(out.len() - start) {
        Some(h) => {
            out[start..start + 4].copy_from_slice(&h);
            true
        }
        None => false,
    }
}

/// Appends a text (or json) value holding `s`; its start, or `None` if too long.
pub fn push_text(out: &mut Vec<u8>, s: &str) -> Option<usize> {
    let start = begin_varlena(out);
    out.extend_from_slice(s.as_bytes());
    if end_varlena(out, start) {
        Some(start)
    } else {
        out.truncate(start);
        None
    }
}
