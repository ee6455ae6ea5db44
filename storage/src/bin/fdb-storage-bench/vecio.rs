//! Readers for the vector formats of faiss / ann-benchmarks (.fvecs, .ivecs) and numpy (.npy),
//! so fdb can be compared with other engines on identical data.

use std::path::Path;

/// A row-major matrix.
pub struct Matrix<T> {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<T>,
}

impl<T> Matrix<T> {
    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

pub fn read_f32(path: &Path) -> Result<Matrix<f32>, String> {
    read(path, "<f4", |b| f32::from_le_bytes(b))
}

pub fn read_i32(path: &Path) -> Result<Matrix<i32>, String> {
    read(path, "<i4", |b| i32::from_le_bytes(b))
}

fn read<T>(path: &Path, npy_descr: &str, parse: fn([u8; 4]) -> T) -> Result<Matrix<T>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let (rows, cols, payload) = match ext {
        "npy" => npy_layout(&bytes, npy_descr).map_err(|e| format!("{}: {e}", path.display()))?,
        "fvecs" | "ivecs" => return read_vecs(&bytes, parse).map_err(|e| format!("{}: {e}", path.display())),
        _ => return Err(format!("{}: unknown extension (expected .npy, .fvecs or .ivecs)", path.display())),
    };
    let data = payload.chunks_exact(4).map(|c| parse(c.try_into().unwrap())).collect();
    Ok(Matrix { rows, cols, data })
}

/// Each row is an i32 dimension followed by that many 4-byte values.
fn read_vecs<T>(bytes: &[u8], parse: fn([u8; 4]) -> T) -> Result<Matrix<T>, String> {
    if bytes.len() < 4 {
        return Err("file is too short".into());
    }
    let cols = i32::from_le_bytes(bytes[..4].try_into().unwrap());
    if cols <= 0 {
        return Err(format!("bad row dimension {cols}"));
    }
    let cols = cols as usize;
    let stride = 4 * (cols + 1);
    if bytes.len() % stride != 0 {
        return Err(format!("size {} is not a multiple of the row size {stride}", bytes.len()));
    }
    let mut data = Vec::with_capacity(bytes.len() / stride * cols);
    for row in bytes.chunks_exact(stride) {
        if row[..4] != bytes[..4] {
            return Err("rows have different dimensions".into());
        }
        data.extend(row[4..].chunks_exact(4).map(|c| parse(c.try_into().unwrap())));
    }
    Ok(Matrix { rows: bytes.len() / stride, cols, data })
}

/// Parses a version 1/2/3 .npy header of a C-order 1-d or 2-d array of `descr`.
fn npy_layout<'a>(bytes: &'a [u8], descr: &str) -> Result<(usize, usize, &'a [u8]), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes.get(start..start + header_len).ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    if !header.contains(&format!("'descr': '{descr}'")) {
        return Err(format!("expected dtype {descr}, header is {header}"));
    }
    if header.contains("'fortran_order': True") {
        return Err("Fortran-order arrays are not supported".into());
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or("no shape in header")?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("bad shape {shape}")))
        .collect::<Result<_, _>>()?;
    let (rows, cols) = match dims[..] {
        [n] => (n, 1),
        [n, d] => (n, d),
        _ => return Err(format!("expected a 1-d or 2-d array, shape is ({shape})")),
    };
    let payload = &bytes[start + header_len..];
    if payload.len() != rows * cols * 4 {
        return Err(format!("payload of {} bytes does not match shape ({shape})", payload.len()));
    }
    Ok((rows, cols, payload))
}
