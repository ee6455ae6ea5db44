//! Reader for legacy (pre-1.6, non-zip) `torch.save` files holding a state dict of f32 tensors,
//! such as facenet-pytorch's `{pnet,rnet,onet}.pt`.
//!
//! Layout: a pickle with the magic number, a pickle with the protocol version, a pickle with
//! system info, the state-dict pickle (tensors refer to storages by persistent id), a pickle
//! listing the storage keys, then each storage in that order as a u64 element count followed by
//! its raw little-endian elements. Only the pickle opcodes these files use are implemented;
//! anything else is reported as malformed rather than guessed at.

use super::{ConvertError, NamedTensor};
use std::collections::HashMap;

const MAGIC_NUMBER: i128 = 0x1950a86a20f9469cfc6c;
const PROTOCOL_VERSION: i128 = 1001;

/// Reads every tensor of the state dict, in file order, with its key unchanged.
pub fn read_state_dict(bytes: &[u8]) -> Result<Vec<NamedTensor>, ConvertError> {
    let mut input = Input { bytes, pos: 0 };
    let magic = unpickle(&mut input)?;
    if !matches!(magic, Value::Int(MAGIC_NUMBER)) {
        return Err(malformed("not a legacy torch.save file (magic number mismatch)"));
    }
    let protocol = unpickle(&mut input)?;
    if !matches!(protocol, Value::Int(PROTOCOL_VERSION)) {
        return Err(malformed(format!("unsupported torch.save protocol {protocol:?}")));
    }
    check_sys_info(&unpickle(&mut input)?)?;
    let state_dict = unpickle(&mut input)?;
    let storage_keys = unpickle(&mut input)?;
    let storages = read_storages(&mut input, &storage_keys)?;

    let Value::Dict(entries) = state_dict else {
        return Err(malformed("the saved object is not a state dict"));
    };
    entries
        .into_iter()
        .map(|(key, value)| {
            let Value::Str(name) = key else {
                return Err(malformed(format!("state-dict key {key:?} is not a string")));
            };
            let Value::Tensor(tensor) = value else {
                return Err(malformed(format!("state-dict entry {name} is not a tensor")));
            };
            let storage = storages
                .get(&tensor.storage_key)
                .ok_or_else(|| malformed(format!("{name}: storage {} missing", tensor.storage_key)))?;
            let data = gather(&tensor, storage).map_err(|e| malformed(format!("{name}: {e}")))?;
            Ok(NamedTensor::new(name, tensor.size, data))
        })
        .collect()
}

fn malformed(msg: impl Into<String>) -> ConvertError {
    ConvertError::Malformed(msg.into())
}

/// Storages are raw bytes: only little-endian files can be read as-is.
fn check_sys_info(info: &Value) -> Result<(), ConvertError> {
    let Value::Dict(entries) = info else {
        return Err(malformed("system info is not a dict"));
    };
    let little_endian = entries
        .iter()
        .find(|(k, _)| matches!(k, Value::Str(s) if s == "little_endian"))
        .map(|(_, v)| v);
    match little_endian {
        Some(Value::Bool(true)) => Ok(()),
        _ => Err(malformed("file was not written little-endian")),
    }
}

fn read_storages(input: &mut Input, keys: &Value) -> Result<HashMap<String, Vec<f32>>, ConvertError> {
    let Value::List(keys) = keys else {
        return Err(malformed("storage key list is not a list"));
    };
    let mut storages = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err(malformed("storage key is not a string"));
        };
        let count = u64::from_le_bytes(input.take(8)?.try_into().expect("8 bytes")) as usize;
        let raw = input.take(count.checked_mul(4).ok_or_else(|| malformed("storage size overflows"))?)?;
        let data = raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        storages.insert(key.clone(), data);
    }
    Ok(storages)
}

/// Copies a (possibly strided) view out of its storage into a dense row-major buffer.
fn gather(t: &TensorRef, storage: &[f32]) -> Result<Vec<f32>, String> {
    if t.size.len() != t.stride.len() {
        return Err("size and stride have different ranks".into());
    }
    let numel: usize = t.size.iter().product();
    if numel == 0 {
        return Ok(Vec::new());
    }
    let last = t.offset + t.size.iter().zip(&t.stride).map(|(n, s)| (n - 1) * s).sum::<usize>();
    if last >= storage.len() {
        return Err(format!("view reaches element {last} of a storage of {}", storage.len()));
    }
    let mut out = Vec::with_capacity(numel);
    let mut index = vec![0usize; t.size.len()];
    for _ in 0..numel {
        let at = t.offset + index.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
        out.push(storage[at]);
        // Odometer increment, last dimension fastest.
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.size[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(out)
}

#[derive(Debug, Clone)]
struct TensorRef {
    storage_key: String,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

#[derive(Debug, Clone)]
enum Value {
    None,
    Bool(bool),
    Int(i128),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Dicts and OrderedDicts alike, in insertion order.
    Dict(Vec<(Value, Value)>),
    Global { module: String, name: String },
    /// A storage as named by a persistent id: (key, element type).
    Storage { key: String, dtype: String },
    Tensor(TensorRef),
}

struct Input<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ConvertError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| malformed(format!("truncated at byte {}", self.pos)))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, ConvertError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ConvertError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32, ConvertError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn line(&mut self) -> Result<String, ConvertError> {
        let rest = &self.bytes[self.pos..];
        let len = rest.iter().position(|&b| b == b'\n').ok_or_else(|| malformed("unterminated text line"))?;
        let text = std::str::from_utf8(&rest[..len]).map_err(|_| malformed("text line is not UTF-8"))?;
        self.pos += len + 1;
        Ok(text.to_owned())
    }
    fn utf8(&mut self, n: usize) -> Result<String, ConvertError> {
        let raw = self.take(n)?;
        String::from_utf8(raw.to_vec()).map_err(|_| malformed("string is not UTF-8"))
    }
}

/// The pickle virtual machine: a value stack, a stack of mark positions and the memo.
/// The memo stores copies, which is enough because these files never mutate a memoised
/// container after fetching it back.
#[derive(Default)]
struct Machine {
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl Machine {
    fn pop(&mut self) -> Result<Value, ConvertError> {
        self.stack.pop().ok_or_else(|| malformed("pickle stack underflow"))
    }
    fn pop_to_mark(&mut self) -> Result<Vec<Value>, ConvertError> {
        let mark = self.marks.pop().ok_or_else(|| malformed("pickle MARK missing"))?;
        if mark > self.stack.len() {
            return Err(malformed("pickle MARK beyond stack"));
        }
        Ok(self.stack.split_off(mark))
    }
    fn top(&mut self) -> Result<&mut Value, ConvertError> {
        self.stack.last_mut().ok_or_else(|| malformed("pickle stack underflow"))
    }
    fn tuple_of(&mut self, n: usize) -> Result<(), ConvertError> {
        if self.stack.len() < n {
            return Err(malformed("pickle stack underflow"));
        }
        let items = self.stack.split_off(self.stack.len() - n);
        self.stack.push(Value::Tuple(items));
        Ok(())
    }
    fn memo_put(&mut self, key: u32) -> Result<(), ConvertError> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }
    fn memo_get(&mut self, key: u32) -> Result<(), ConvertError> {
        let v = self.memo.get(&key).cloned().ok_or_else(|| malformed(format!("memo {key} unset")))?;
        self.stack.push(v);
        Ok(())
    }
}

fn unpickle(input: &mut Input) -> Result<Value, ConvertError> {
    let mut m = Machine::default();
    loop {
        let at = input.pos;
        let op = input.u8()?;
        match op {
            0x80 => {
                input.u8()?; // PROTO: version byte, nothing to do
            }
            b'.' => return m.pop(), // STOP
            b'(' => m.marks.push(m.stack.len()),
            b'N' => m.stack.push(Value::None),
            0x88 => m.stack.push(Value::Bool(true)),
            0x89 => m.stack.push(Value::Bool(false)),
            b'K' => {
                let v = input.u8()?;
                m.stack.push(Value::Int(v as i128))
            }
            b'M' => {
                let v = input.u16()?;
                m.stack.push(Value::Int(v as i128))
            }
            b'J' => {
                let v = input.u32()? as i32;
                m.stack.push(Value::Int(v as i128))
            }
            0x8a => {
                // LONG1: little-endian two's complement of n bytes
                let n = input.u8()? as usize;
                if n > 16 {
                    return Err(malformed("integer too large"));
                }
                let raw = input.take(n)?;
                let mut buf = if raw.last().is_some_and(|b| b & 0x80 != 0) { [0xffu8; 16] } else { [0u8; 16] };
                buf[..n].copy_from_slice(raw);
                m.stack.push(Value::Int(i128::from_le_bytes(buf)));
            }
            b'X' => {
                let n = input.u32()? as usize;
                let s = input.utf8(n)?;
                m.stack.push(Value::Str(s))
            }
            0x8c => {
                let n = input.u8()? as usize;
                let s = input.utf8(n)?;
                m.stack.push(Value::Str(s))
            }
            b'}' => m.stack.push(Value::Dict(Vec::new())),
            b']' => m.stack.push(Value::List(Vec::new())),
            b')' => m.stack.push(Value::Tuple(Vec::new())),
            b't' => {
                let items = m.pop_to_mark()?;
                m.stack.push(Value::Tuple(items))
            }
            0x85 => m.tuple_of(1)?,
            0x86 => m.tuple_of(2)?,
            0x87 => m.tuple_of(3)?,
            b'q' => {
                let k = input.u8()? as u32;
                m.memo_put(k)?
            }
            b'r' => {
                let k = input.u32()?;
                m.memo_put(k)?
            }
            b'h' => {
                let k = input.u8()? as u32;
                m.memo_get(k)?
            }
            b'j' => {
                let k = input.u32()?;
                m.memo_get(k)?
            }
            b's' => {
                let v = m.pop()?;
                let k = m.pop()?;
                dict_insert(m.top()?, vec![k, v])?
            }
            b'u' => {
                let items = m.pop_to_mark()?;
                dict_insert(m.top()?, items)?
            }
            b'a' => {
                let v = m.pop()?;
                list_extend(m.top()?, vec![v])?
            }
            b'e' => {
                let items = m.pop_to_mark()?;
                list_extend(m.top()?, items)?
            }
            b'c' => {
                let module = input.line()?;
                let name = input.line()?;
                m.stack.push(Value::Global { module, name })
            }
            b'R' => {
                let args = m.pop()?;
                let callable = m.pop()?;
                m.stack.push(reduce(callable, args)?)
            }
            b'b' => {
                // BUILD sets an object's state. The only objects built here are OrderedDicts,
                // whose state is torch's `_metadata` attribute: irrelevant to the weights.
                let _state = m.pop()?;
                if !matches!(m.top()?, Value::Dict(_)) {
                    return Err(malformed("BUILD on something other than a dict"));
                }
            }
            b'Q' => {
                let pid = m.pop()?;
                m.stack.push(persistent_load(pid)?)
            }
            other => {
                return Err(malformed(format!("unsupported pickle opcode 0x{other:02x} at byte {at}")));
            }
        }
    }
}

fn dict_insert(target: &mut Value, flat: Vec<Value>) -> Result<(), ConvertError> {
    let Value::Dict(entries) = target else {
        return Err(malformed("SETITEM on something other than a dict"));
    };
    if flat.len() % 2 != 0 {
        return Err(malformed("SETITEMS with an odd number of items"));
    }
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        entries.push((k, v));
    }
    Ok(())
}

fn list_extend(target: &mut Value, items: Vec<Value>) -> Result<(), ConvertError> {
    let Value::List(list) = target else {
        return Err(malformed("APPEND on something other than a list"));
    };
    list.extend(items);
    Ok(())
}

/// Persistent ids name storages: ('storage', <torch XStorage>, key, location, size[, view]).
fn persistent_load(pid: Value) -> Result<Value, ConvertError> {
    let Value::Tuple(parts) = pid else {
        return Err(malformed("persistent id is not a tuple"));
    };
    match parts.as_slice() {
        [Value::Str(kind), Value::Global { name, .. }, Value::Str(key), ..] if kind == "storage" => {
            Ok(Value::Storage { key: key.clone(), dtype: name.clone() })
        }
        _ => Err(malformed(format!("unsupported persistent id {parts:?}"))),
    }
}

fn reduce(callable: Value, args: Value) -> Result<Value, ConvertError> {
    let Value::Global { module, name } = &callable else {
        return Err(malformed("REDUCE on a non-global"));
    };
    let Value::Tuple(args) = args else {
        return Err(malformed("REDUCE arguments are not a tuple"));
    };
    match (module.as_str(), name.as_str()) {
        ("collections", "OrderedDict") if args.is_empty() => Ok(Value::Dict(Vec::new())),
        ("torch._utils", "_rebuild_tensor_v2") => rebuild_tensor(args),
        _ => Err(malformed(format!("unsupported callable {module}.{name}"))),
    }
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks)`.
fn rebuild_tensor(args: Vec<Value>) -> Result<Value, ConvertError> {
    let [Value::Storage { key, dtype }, Value::Int(offset), Value::Tuple(size), Value::Tuple(stride), ..] =
        args.as_slice()
    else {
        return Err(malformed("unexpected _rebuild_tensor_v2 arguments"));
    };
    if dtype != "FloatStorage" {
        return Err(malformed(format!("storage type {dtype} is not supported (only f32)")));
    }
    let dims = |vals: &[Value]| -> Result<Vec<usize>, ConvertError> {
        vals.iter()
            .map(|v| match v {
                Value::Int(i) if *i >= 0 => usize::try_from(*i).map_err(|_| malformed("dimension too large")),
                _ => Err(malformed("tensor size/stride is not a non-negative integer")),
            })
            .collect()
    };
    Ok(Value::Tensor(TensorRef {
        storage_key: key.clone(),
        offset: usize::try_from(*offset).map_err(|_| malformed("negative storage offset"))?,
        size: dims(size)?,
        stride: dims(stride)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(offset: usize, size: Vec<usize>, stride: Vec<usize>) -> TensorRef {
        TensorRef { storage_key: "k".into(), offset, size, stride }
    }

    #[test]
    fn gather_follows_offset_and_strides() {
        let storage: Vec<f32> = (0..12).map(|v| v as f32).collect();
        // A transposed 3x2 view of the 2x3 block starting at element 2: rows of [2,3,4] / [5,6,7].
        let t = view(2, vec![3, 2], vec![1, 3]);
        assert_eq!(gather(&t, &storage).unwrap(), vec![2., 5., 3., 6., 4., 7.]);
    }

    #[test]
    fn gather_rejects_views_past_the_storage() {
        let storage = vec![0f32; 4];
        assert!(gather(&view(1, vec![2, 2], vec![2, 1]), &storage).is_err());
    }

    #[test]
    fn rejects_non_torch_bytes_and_truncation() {
        assert!(read_state_dict(b"").is_err());
        assert!(read_state_dict(b"\x80\x02K\x05.").is_err());
        let err = read_state_dict(b"\x80\x02\x8a").unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn long1_decodes_the_torch_magic_number() {
        let mut bytes = vec![0x80, 2, 0x8a, 10];
        bytes.extend_from_slice(&MAGIC_NUMBER.to_le_bytes()[..10]);
        bytes.push(b'.');
        let v = unpickle(&mut Input { bytes: &bytes, pos: 0 }).unwrap();
        assert!(matches!(v, Value::Int(MAGIC_NUMBER)));
    }
}
